"""How many inputs the property tests generated per surface, and how many got a 5xx.

The closing summary of a run prints it (tests/conftest.py), so "0 5xx out of N" is a figure
a reader can check rather than a claim.
"""

from __future__ import annotations

from collections import Counter

GENERATED: Counter[str] = Counter()
SERVER_ERRORS: Counter[str] = Counter()


def tally(surface: str, status: int) -> None:
    GENERATED[surface] += 1
    if status >= 500:
        SERVER_ERRORS[surface] += 1


def summary() -> list[str]:
    return [
        f"{surface}: {count} generated inputs, {SERVER_ERRORS[surface]} answered 5xx"
        for surface, count in sorted(GENERATED.items())
    ]
