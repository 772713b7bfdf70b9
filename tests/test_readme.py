"""The README stands alone and says what the code does: no file outside the repository, every
file it names exists, and its configuration table is exactly the settings class."""

from __future__ import annotations

import re
from pathlib import Path

from core.config import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_the_readme_points_at_nothing_outside_the_repository() -> None:
    for needle in ("../", "DESIGN", "TESTING.md", "STYLE.md", "shared/"):
        assert needle not in README, needle


def test_every_file_the_readme_names_exists() -> None:
    named = set(re.findall(r"`((?:docs|examples|bench|deploy|evals|tests|\.ci)/[^`\s]*)`", README))
    assert named, "the README names no repository files: the pattern is wrong"
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert missing == []


def test_the_configuration_table_is_the_settings_class() -> None:
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = {
        name
        for line in section.splitlines()
        if line.startswith("| `")
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1])
    }
    settings = {name.upper() for name in Settings.model_fields}
    assert documented == settings
