"""The image's build inputs: requirements.lock pins every runtime dependency (and no dev
tool) at a version pyproject.toml admits, with hashes; the Dockerfile installs the lock in a
layer of its own before any source is copied; the healthcheck is the per-role script."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = PIN.match(line)
        if match:
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def test_the_lock_pins_every_runtime_dependency_within_pyproject_ranges() -> None:
    pins = locked()
    project = pyproject()["project"]
    assert isinstance(project, dict)
    stale = []
    for text in project["dependencies"]:
        requirement = Requirement(text)
        version = pins.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            stale.append(f"{requirement} (locked: {version})")
    assert not stale, f"requirements.lock is stale, run `make lock`: {stale}"


def required_by() -> dict[str, set[str]]:
    """Locked package → what pulled it in, from pip-compile's `# via` annotations."""
    vias: dict[str, set[str]] = {}
    current = ""
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = PIN.match(line)
        if match:
            current = canonicalize_name(match[1])
            vias[current] = set()
            continue
        note = line.strip().removeprefix("#").strip().removeprefix("via").strip()
        if current and line.lstrip().startswith("#") and note:
            vias[current].add(
                note if note.endswith("(pyproject.toml)") else canonicalize_name(note)
            )
    return vias


def test_the_lock_holds_nothing_pyproject_no_longer_asks_for() -> None:
    """A dependency dropped from pyproject.toml must leave the image too (`make lock`)."""
    project = pyproject()["project"]
    assert isinstance(project, dict)
    direct = {canonicalize_name(Requirement(t).name) for t in project["dependencies"]}
    vias = required_by()
    needed = set(direct)
    while True:
        more = {name for name, by in vias.items() if by & needed} - needed
        if not more:
            break
        needed |= more
    assert set(vias) - needed == set(), "requirements.lock is stale, run `make lock`"


def test_the_lock_holds_no_dev_tool() -> None:
    project = pyproject()["project"]
    assert isinstance(project, dict)
    dev = {canonicalize_name(Requirement(t).name) for t in project["optional-dependencies"]["dev"]}
    assert dev.isdisjoint(locked()), "dev tools belong in .[dev], not in the image"


def test_every_locked_package_carries_a_hash() -> None:
    """`pip install --require-hashes` in the Dockerfile refuses a pin without one."""
    text = (ROOT / "requirements.lock").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n\n", 1)[-1])
    unhashed = [e.split()[0] for e in entries if PIN.match(e) and "--hash=sha256:" not in e]
    assert locked() and not unhashed


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dependencies_are_a_layer_of_their_own_before_the_source() -> None:
    steps = instructions()
    build = steps[: next(i for i, s in enumerate(steps[1:], 1) if s[0] == "FROM")]
    copy_lock = build.index(("COPY", "requirements.lock ./"))
    install_lock = next(i for i, (op, args) in enumerate(build) if "-r requirements.lock" in args)
    first_source = next(
        i
        for i, (op, args) in enumerate(build)
        if op == "COPY" and re.search(r"\b(bot|core)\b", args)
    )
    install_source = next(i for i, (op, args) in enumerate(build) if "--no-deps ." in args)
    assert copy_lock < install_lock < first_source < install_source
    assert "--require-hashes" in build[install_lock][1]


def test_the_healthcheck_is_the_per_role_script_not_a_fixed_port() -> None:
    steps = instructions()
    [(_, check)] = [s for s in steps if s[0] == "HEALTHCHECK"]
    assert check.endswith('CMD ["docker-healthcheck"]')
    assert "8080" not in check
    assert (
        "COPY",
        "--chmod=0755 deploy/docker/healthcheck.py /usr/local/bin/docker-healthcheck",
    ) in steps
    assert ("USER", "10001:10001") in steps  # the uid the Kubernetes manifests run as
