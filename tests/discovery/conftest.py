"""Fixtures of the discovery tests."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest


@pytest.fixture
def popen_spy(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every process started through `subprocess.Popen` during the test (real ones still)."""
    started: list[list[str]] = []
    real = subprocess.Popen

    class Recorder(real):  # type: ignore[misc,valid-type]
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            started.append(list(args) if not isinstance(args, str) else [args])
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", Recorder)
    return started
