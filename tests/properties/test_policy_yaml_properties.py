"""Property tests of policy YAML through `infraai policy apply`: whatever the file, exit 0
(applied) or 2 with one line (refused, nothing changed) — never a traceback or a half apply."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.cli import main
from core.db.schema import upgrade
from tests.helpers import EXAMPLES
from tests.properties.strategies import any_text, json_values
from tests.properties.tally import tally

EXAMPLE = yaml.safe_load((EXAMPLES / "policies.yaml").read_text())
FIELDS = sorted({key for item in EXAMPLE["policies"] for key in item})
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    url = f"sqlite+aiosqlite:///{tmp_path}/policies.db"
    upgrade(url)
    monkeypatch.setenv("DATABASE_URL", url)
    return tmp_path


def _apply(folder: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = folder / "policies.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        code = main(["policy", "apply", str(path)])
    except SystemExit as exc:
        code = int(exc.code or 0)
    _out, err = capsys.readouterr()
    return code, err


def _export(capsys: pytest.CaptureFixture[str]) -> str:
    main(["policy", "export"])
    return capsys.readouterr().out


def _check(surface: str, folder: Path, text: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = _export(capsys)
    code, err = _apply(folder, text, capsys)
    # Exit codes as HTTP would say it: 0 applied, 2 refused with a reason, anything else a crash.
    tally(surface, {0: 200, 2: 400}.get(code, 500))
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("infraai: "), err
        assert _export(capsys) == before, "a refused file changed the policies"


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 2), st.sampled_from(FIELDS), json_values), max_size=3))
def test_mutated_policy_files(
    database: Path, capsys: pytest.CaptureFixture[str], edits: list[tuple[int, str, Any]]
) -> None:
    document = {"policies": [dict(item) for item in EXAMPLE["policies"]]}
    for index, field, value in edits:
        document["policies"][index][field] = value
    text = yaml.safe_dump(document, allow_unicode=True)
    _check("policy YAML: mutated", database, text, capsys)


@SETTINGS
@given(
    st.one_of(
        any_text.map(lambda t: "policies:\n  - name: " + t),
        any_text.map(lambda t: "policies: " + t),
        st.text(max_size=200),
    )
)
def test_arbitrary_policy_text(
    database: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    _check("policy YAML: arbitrary text", database, text, capsys)
