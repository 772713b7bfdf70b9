"""The offline validators tests/deploy runs, each skipped with how to install it when absent
(CI installs them all, and fails on any skip)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# binary → the Debian package that provides it
PACKAGES = {
    "docker-compose": "docker-compose",
    "promtool": "prometheus",
    "amtool": "prometheus-alertmanager",
}


def run_tool(binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(
            f"needs {binary}: apt-get install -y --no-install-recommends {PACKAGES[binary]}"
        )
    return subprocess.run(
        [path, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
