"""The `infraai` command line: policy round trips, dry-run tests, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from core.db.schema import upgrade
from tests.helpers import EXAMPLES

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(params=["sqlite", "postgresql"])
def cli_db(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
        upgrade(url)
    else:
        url = request.getfixturevalue("pg_url")
        import asyncio

        from tests.conftest import truncate_all

        asyncio.run(truncate_all(url))
    for name in list(os.environ):
        if name.startswith(("INFRAAI_", "SLACK_", "ALERTS_", "REDIS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABASE_URL", url)
    return url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_apply_export_apply_is_a_no_op(cli_db, capsys, tmp_path) -> None:
    code, out, _ = run(capsys, "policy", "apply", str(EXAMPLES / "policies.yaml"))
    assert code == 0 and out.strip() == "3 created, 0 updated, 0 unchanged"
    code, exported, _ = run(capsys, "policy", "export")
    assert code == 0 and "restart-crashlooping-pod" in exported
    path = tmp_path / "exported.yaml"
    path.write_text(exported)
    code, out, _ = run(capsys, "policy", "apply", str(path))
    assert out.strip() == "0 created, 0 updated, 3 unchanged"
    code, again, _ = run(capsys, "policy", "export")
    assert again == exported


def test_list_show_disable_enable_delete(cli_db, capsys) -> None:
    run(capsys, "policy", "apply", str(EXAMPLES / "policies.yaml"))
    code, out, _ = run(capsys, "policy", "list")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["NAME", "PRIO", "ENABLED"]
    assert [line.split()[0] for line in lines[1:]] == [
        "restart-crashlooping-pod",
        "restart-deployment-on-high-latency",
        "reset-hung-vm",
    ]
    code, out, _ = run(capsys, "policy", "show", "reset-hung-vm")
    assert code == 0 and "vsphere.reset_vm" in out
    assert run(capsys, "policy", "disable", "reset-hung-vm")[1].strip() == "reset-hung-vm disabled"
    assert "already disabled" in run(capsys, "policy", "disable", "reset-hung-vm")[1]
    assert run(capsys, "policy", "enable", "reset-hung-vm")[0] == 0
    assert run(capsys, "policy", "delete", "reset-hung-vm")[1].strip() == "deleted reset-hung-vm"
    code, _, err = run(capsys, "policy", "show", "reset-hung-vm")
    assert code == 2 and err.strip() == "infraai: no policy named 'reset-hung-vm'"


def test_a_bad_file_is_refused_whole_and_nothing_changes(cli_db, capsys, tmp_path) -> None:
    run(capsys, "policy", "apply", str(EXAMPLES / "policies.yaml"))
    _, before, _ = run(capsys, "policy", "export")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (EXAMPLES / "policies.yaml").read_text().replace("priority: 10", "priority: 11")
        + "  - name: broken\n    matchers: ['alertname=\"X\"']\n    action: k8s.explode\n"
    )
    code, out, err = run(capsys, "policy", "apply", str(bad))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("infraai: policy 'broken': action: unknown action 'k8s.explode'")
    assert run(capsys, "policy", "export")[1] == before


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("policies: [", "yaml: not valid YAML"),
        ("rules: []", "the file must hold a top-level `policies:` list"),
        (
            "policies:\n  - name: x\n    matchers: ['a=~\"(\"']\n    action: k8s.restart_pod\n",
            "policy 'x': matchers:",
        ),
        (
            "policies:\n  - name: x\n    matchers: ['a=\"b\"']\n    action: k8s.restart_pod\n"
            "    params: {namespace: prod}\n",
            "policy 'x': params.pod: Field required",
        ),
    ],
)
def test_policy_errors_name_the_policy_and_field(cli_db, capsys, tmp_path, yaml_text, expected):
    path = tmp_path / "p.yaml"
    path.write_text(yaml_text)
    code, _, err = run(capsys, "policy", "apply", str(path))
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1


def test_policy_test_is_a_dry_run(cli_db, capsys) -> None:
    run(capsys, "policy", "apply", str(EXAMPLES / "policies.yaml"))
    code, out, _ = run(
        capsys,
        "policy",
        "test",
        "alertname=KubePodCrashLooping",
        "namespace=prod",
        "pod=api-1",
        "severity=critical",
    )
    assert code == 0
    assert "matches policy restart-crashlooping-pod" in out
    assert 'would propose: k8s.restart_pod {"namespace": "prod", "pod": "api-1"}' in out
    code, out, _ = run(capsys, "policy", "test", "--file", str(EXAMPLES / "alert.json"), "--json")
    [report] = json.loads(out)
    assert report["matches"][0]["params"] == {"namespace": "prod", "pod": "api-7d4b9c6f8-x2k9q"}
    code, out, _ = run(capsys, "policy", "test", "alertname=Nothing")
    assert "no policy matches" in out
    code, out, _ = run(
        capsys, "policy", "test", "alertname=KubePodCrashLooping", "severity=warning"
    )
    assert "would record an error, no proposal" in out and "the alert has no" in out
    code, out, _ = run(capsys, "proposals", "--json")
    assert json.loads(out) == []  # the dry run recorded nothing


def test_policy_test_against_a_file_not_yet_applied(cli_db, capsys) -> None:
    code, out, _ = run(
        capsys,
        "policy",
        "test",
        "--policies",
        str(EXAMPLES / "policies.yaml"),
        "alertname=VMHung",
        "vm=web-01",
    )
    assert code == 0 and 'vsphere.reset_vm {"vm": "web-01"}' in out
    assert run(capsys, "policy", "list")[1].strip() == "(none)"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["proposals", "--status", "bogus"], "unknown status 'bogus'"),
        (["policy", "test", "novalue"], "label 'novalue': expected name=value"),
        (["policy", "test"], "give labels as name=value pairs, or --file webhook.json"),
        (["policy", "apply", "/nonexistent.yaml"], "cannot read /nonexistent.yaml"),
    ],
)
def test_bad_input_is_one_line_exit_2(cli_db, capsys, argv, message) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_an_unmigrated_database_is_refused_with_a_hint(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/new.db")
    for argv in (["proposals"], ["policy", "list"]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and "run `infraai migrate`" in err
    assert run(capsys, "migrate")[0] == 0
    assert run(capsys, "proposals")[0] == 0


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DATABASE_URL", "mysql://x", "DATABASE_URL: unsupported scheme 'mysql'"),
        ("INFRAAI_PORT", "abc", "INFRAAI_PORT: Input should be a valid integer"),
        ("INFRAAI_APPROVERS", "alice", "INFRAAI_APPROVERS: expected Slack user"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL: must start with redis://"),
        ("INFRAAI_POLICIES", "/nonexistent.yaml", "INFRAAI_POLICIES: no such file"),
    ],
)
def test_bad_settings_stop_start_up_in_one_line(variable, value, message) -> None:
    env = {**os.environ, variable: value}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert message in result.stderr and "Traceback" not in result.stderr


def test_serve_refuses_an_out_of_date_schema(tmp_path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/old.db"}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "run `infraai migrate`" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("variable", ["DATABASE_URL", "INFRAAI_PORT", "REDIS_URL", "ALERTS_TOKEN"])
def test_an_empty_variable_is_unset(variable, monkeypatch) -> None:
    from core.config import Settings, load_settings

    monkeypatch.setenv(variable, "")
    assert getattr(load_settings(), variable.lower()) == Settings.model_fields[
        variable.lower()
    ].get_default(call_default_factory=True)


INTEGRATION_LIBRARIES = (
    "kubernetes",
    "pyVmomi",
    "langchain_core",
    "langgraph",
    "matplotlib",
    "nmap",
    "httpx",  # Grafana's client (issue 9), Ollama's too
)
PROBE = """
import sys
from bot.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("MODULES", " ".join(sorted(m for m in sys.modules if "." not in m)))
"""


def _modules_after(argv: list[str], env: dict[str, str]) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], env=env, capture_output=True, text=True, timeout=60
    )
    line = next(x for x in result.stdout.splitlines() if x.startswith("MODULES "))
    return set(line.split()[1:])


def test_help_imports_nothing_heavy() -> None:
    loaded = _modules_after(["--help"], dict(os.environ))
    heavy = {"sqlalchemy", "pydantic", "alembic", "aiohttp", "slack_bolt", "jinja2"}
    assert loaded.isdisjoint(heavy | set(INTEGRATION_LIBRARIES)), loaded & heavy


@pytest.mark.parametrize(
    "argv",
    [["proposals"], ["policy", "test", "alertname=KubePodCrashLooping", "pod=a"], ["jobs"]],
    ids=["proposals", "policy test", "jobs"],
)
def test_commands_import_no_integration_library(argv, tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    upgrade(url)
    loaded = _modules_after(argv, {**os.environ, "DATABASE_URL": url})
    assert loaded.isdisjoint(INTEGRATION_LIBRARIES), loaded & set(INTEGRATION_LIBRARIES)


def test_a_policy_file_that_is_not_utf8_is_one_line(cli_db, capsys, tmp_path) -> None:
    path = tmp_path / "policies.yaml"
    path.write_bytes(b"policies:\n  - name: \xed\xa0\x80\n")
    code, _out, err = run(capsys, "policy", "apply", str(path))
    assert code == 2
    assert err.strip().splitlines() == [err.strip()] and "UTF-8" in err


def test_a_refused_serve_leaves_no_database_file(tmp_path) -> None:
    database = tmp_path / "never-migrated.db"
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve"], env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and "infraai migrate" in result.stderr
    assert not database.exists()


def test_a_database_role_that_does_not_exist_is_a_bad_setting(pg_url) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(pg_url).set(username="no_such_role_for_infraai")
    env = {**os.environ, "DATABASE_URL": url.render_as_string(hide_password=False)}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "proposals"], env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("infraai: DATABASE_URL: ")
    assert "no_such_role_for_infraai" in result.stderr
