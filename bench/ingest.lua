-- wrk script for bench/ingest.py: Alertmanager-like deliveries of 10 alerts each.
--
-- Per alert slot: 80 % a re-delivery of a firing alert already sent, 15 % a new fingerprint
-- (70 % of them a crash-looping pod, which a policy turns into a proposal; the rest alerts no
-- policy matches), 5 % a known firing alert resolving. The same mix as the Python senders.
-- Arguments (after --): a run id (fingerprints are unique per run), the bearer token, the
-- number of connections. All connections share this thread's alerts, so an alert is only
-- repeated or resolved once 10 × connections requests have followed the one that introduced
-- it: Alertmanager sends one group's notifications in order, and a resolution overtaking
-- its alert's first delivery would be a different test.
-- done() prints one JSON line (prefixed "WRK-RESULT ") that bench/ingest.py reads.

local run, token = "run", "token"
local firing = {}        -- alerts sent and not resolved: { fp, body, sent = request number }
local counter = 0
local sent = 0
local settle = 80
local thread_id = 0
local threads = {}

local PER_PAYLOAD = 10
local NEW_SHARE, NEW_CRASHLOOP_SHARE, RESOLVE_SHARE = 0.15, 0.7, 0.05
local OTHER = { "HostHighCpuLoad", "HostOutOfMemory", "NodeFilesystemAlmostFull",
  "KubeDeploymentReplicasMismatch", "KubeJobFailed", "TargetDown",
  "PostgresqlTooManyConnections", "BlackboxProbeFailed" }

function setup(thread)
  thread_id = thread_id + 1
  thread:set("thread_id", thread_id)
  table.insert(threads, thread)
end

function init(args)
  run = args[1] or run
  token = args[2] or token
  settle = 10 * (tonumber(args[3]) or 8)
  math.randomseed(os.time() + (thread_id or 0))
end

local function new_alert()
  counter = counter + 1
  local name = string.format("%s-t%d-%d", run, thread_id or 0, counter)
  -- Unique across runs and threads (a random one repeats when two runs start in the same
  -- second with the same seed, and the database then merges two alerts into one row).
  local fp = string.format("%s-t%d-%x", run, thread_id or 0, counter)
  local body
  if math.random() < NEW_CRASHLOOP_SHARE then
    body = string.format(
      '"labels":{"alertname":"KubePodCrashLooping","namespace":"prod","pod":"api-%s",'
      .. '"container":"api","severity":"critical","env":"prod","job":"kube-state-metrics"},'
      .. '"annotations":{"summary":"Pod prod/api-%s is crash looping",'
      .. '"description":"Pod is restarting 2.1 times / 10 minutes.",'
      .. '"runbook_url":"https://runbooks.example.com/KubePodCrashLooping"}', name, name)
  else
    local alertname = OTHER[math.random(#OTHER)]
    body = string.format(
      '"labels":{"alertname":"%s","namespace":"prod","instance":"node-%s:9100",'
      .. '"severity":"warning","env":"prod","team":"team-07","job":"node"},'
      .. '"annotations":{"summary":"%s on node-%s",'
      .. '"description":"Value is above the threshold for 5 minutes."}',
      alertname, name, alertname, name)
  end
  return { fp = fp, body = body }
end

local function render(alert, status)
  local ends = status == "firing" and "0001-01-01T00:00:00Z" or "2026-11-29T09:00:00Z"
  return string.format(
    '{"status":"%s",%s,"startsAt":"2026-11-29T08:00:00Z","endsAt":"%s",'
    .. '"generatorURL":"http://prometheus:9090/graph?g0.expr=up&g0.tab=1","fingerprint":"%s"}',
    status, alert.body, ends, alert.fp)
end

function request()
  local parts = {}
  local used = {}
  sent = sent + 1
  -- The pool is in sending order: the settled alerts are a prefix of it.
  local known = 0
  while known < #firing and firing[known + 1].sent <= sent - settle do
    known = known + 1
  end
  for i = 1, PER_PAYLOAD do
    local roll = math.random()
    local alert, status = nil, "firing"
    if roll >= NEW_SHARE and known > 0 then
      local index = math.random(known)
      if not used[index] then
        used[index] = true
        alert = firing[index]
        if roll < NEW_SHARE + RESOLVE_SHARE then
          status = "resolved"
        end
      end
    end
    if alert == nil then
      alert = new_alert()
      alert.sent = sent
      table.insert(firing, alert)
    end
    parts[i] = render(alert, status)
    if status == "resolved" then
      alert.resolved = true
    end
  end
  -- Resolved alerts leave the pool once rendered (never twice in one payload).
  local kept = {}
  for _, alert in ipairs(firing) do
    if not alert.resolved then table.insert(kept, alert) end
  end
  firing = kept
  local body = '{"version":"4","groupKey":"{}:{sender=\\"' .. run .. '\\"}","truncatedAlerts":0,'
    .. '"status":"firing","receiver":"infraai","groupLabels":{},"commonLabels":{"env":"prod"},'
    .. '"commonAnnotations":{},"externalURL":"http://alertmanager:9093","alerts":['
    .. table.concat(parts, ",") .. ']}'
  return wrk.format("POST", "/alerts", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }, body)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'WRK-RESULT {"requests":%d,"duration_us":%d,"non_2xx":%d,"connect":%d,"read":%d,'
    .. '"write":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, errors.status, errors.connect, errors.read,
    errors.write, errors.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
