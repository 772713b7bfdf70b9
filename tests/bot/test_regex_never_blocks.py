"""A policy regex cannot hang the bot: matching is RE2 (linear time), as in Alertmanager.

Run against `infraai serve` in its own process: with a backtracking engine the match holds
the interpreter, so only another process can notice (and the test ends instead of hanging).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import aiohttp

from core.db.schema import upgrade
from tests.helpers import alert, payload
from tests.peers.prometheus_stack import free_port

POLICY = """
policies:
  - name: catastrophic-regex
    matchers: ['instance=~"(a+)+$"']
    action: k8s.restart_pod
    params: {namespace: prod, pod: "{{ labels.pod }}"}
"""


async def test_healthz_answers_while_a_hostile_label_meets_a_backtracking_regex(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/infraai.db"
    await asyncio.to_thread(upgrade, url)
    (tmp_path / "policies.yaml").write_text(POLICY)
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("INFRAAI_", "SLACK_", "ALERTS_", "REDIS_", "VSPHERE_", "KUBE"))
    }
    env |= {
        "DATABASE_URL": url,
        "INFRAAI_PORT": str(port),
        "INFRAAI_POLICIES": str(tmp_path / "policies.yaml"),
    }
    log_path = tmp_path / "serve.log"
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "serve",
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log_path.open("w"),
    )
    base = f"http://127.0.0.1:{port}"
    hostile = payload(alert({"alertname": "X", "instance": "a" * 10_000 + "b", "pod": "p"}))
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
            for _ in range(200):
                try:
                    if (await http.get(f"{base}/healthz")).status == 200:
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            posted = asyncio.create_task(http.post(f"{base}/alerts", data=json.dumps(hostile)))
            for _ in range(5):  # the bot keeps answering while the alert is evaluated
                assert (await http.get(f"{base}/healthz")).status == 200
            response = await posted
            assert response.status == 200, log_path.read_text()[-2000:]
            assert await response.json() == {"received": 1, "proposals": 0}
    finally:
        server.kill()
        await server.wait()
