"""The aiohttp application: /alerts, /healthz, /readyz, /metrics, /api/v1 (and Slack's
/slack/events)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.http.alerts import MAX_BODY, METRICS, RUNTIME, post_alerts
from bot.http.metrics import Metrics
from core.runtime import Runtime


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready only when what this process needs answers: the database, and Redis if set.

    Cheap under any load: the database and Redis checks are shared by concurrent probes, the
    integrations' health is the background monitor's last result. Anyone who can reach this
    reads it, so details name no driver, host or database (those are in the bot's log).
    """
    runtime = request.app[RUNTIME]
    checks: dict[str, dict[str, object]] = {}
    ok, detail = await runtime.database_ok()
    checks["database"] = {"ok": ok, "detail": detail}
    for name, probe in runtime.readiness_probes.items():
        probe_ok, probe_detail = await probe()
        checks[name] = {"ok": probe_ok, "detail": probe_detail}
    ready = all(bool(c["ok"]) for c in checks.values())
    # Detail only: a missing vCenter must not take the webhook out of the load balancer.
    integrations = {
        h.name: {"state": h.state, "detail": h.public_detail()}
        for h in await runtime.integration_health()
    }
    return web.json_response(
        {
            "status": "ready" if ready else "unavailable",
            "checks": checks,
            "integrations": integrations,
        },
        status=200 if ready else 503,
    )


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(runtime: Runtime) -> web.Application:
    # request.read() stops at client_max_size; the handler turns that into a 413 with a reason.
    app = web.Application(client_max_size=MAX_BODY)
    app[RUNTIME] = runtime
    app[METRICS] = Metrics()
    app.router.add_post("/alerts", post_alerts)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    from bot.http.api import add_api

    add_api(app, runtime)
    return app
