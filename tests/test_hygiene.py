"""The suite leaves nothing behind and takes nothing from the shell it runs in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from redis import Redis

ROOT = Path(__file__).resolve().parent.parent


def test_a_session_removes_its_redis_keys() -> None:
    script = (
        "from redis import Redis\n"
        "from tests.redis_db import claim_redis_url\n"
        "url = claim_redis_url()\n"
        "Redis.from_url(url).set('rq:job:left-behind', '1')\n"
        "print(url)\n"
    )
    try:
        Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping()
    except Exception as exc:
        pytest.skip(f"Redis is not answering on 127.0.0.1:6379 ({exc})")
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip()
    assert Redis.from_url(url).exists("rq:job:left-behind") == 0


def test_settings_from_the_shell_do_not_reach_the_tests(tmp_path: Path) -> None:
    # An operator's shell (a kubeconfig, a vCenter, InfraAI's own settings) must not change
    # what the tests see: here a vCenter would turn "not configured" into a failing login.
    env = {
        **os.environ,
        "VSPHERE_HOST": "127.0.0.9",
        "VSPHERE_USER": "administrator",
        "KUBECONFIG": str(tmp_path / "missing-kubeconfig"),
        "INFRAAI_DRY_RUN": "true",
        "INFRAAI_CHANNEL": "C0ELSEWHERE",
        "ALERTS_TOKEN": "from-the-shell",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/bot/test_alerts_webhook.py",
            "-k",
            "sqlite and (health_ready or example_alert)",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "2 passed" in result.stdout
