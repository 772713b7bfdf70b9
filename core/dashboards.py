"""Finding Grafana dashboards and panels for people: `/infraai dashboards [search] [panel P]`.

One command, narrowed step by step, so nobody needs to know a uid:

* `dashboards` / `dashboards <search>`: the dashboards whose title matches, with links;
* when the search names exactly one dashboard (one match, or one whose title is exactly the
  search), its panels are listed too, with a link to each;
* `dashboards <search> panel <id|title>`: that panel as a PNG when Grafana has its image
  renderer, else the panel's link and why there is no picture.

The adapter is synchronous: every call runs on the adapter threads, never on the event loop.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from core.execution.integrations import Integrations

SHOWN = 20  # dashboards listed; more: "narrow the search"
SEARCH_LIMIT = 100


@dataclass(frozen=True)
class DashboardLink:
    uid: str
    title: str
    folder: str
    url: str


@dataclass(frozen=True)
class PanelLink:
    id: int
    title: str
    url: str


@dataclass(frozen=True)
class PanelImage:
    png: bytes
    filename: str  # e.g. grafana-node-full-panel-2.png


@dataclass(frozen=True)
class Found:
    """What a lookup found: a list, one dashboard with its panels, one panel (and picture)."""

    search: str
    dashboards: list[DashboardLink]
    more: int = 0  # matches not listed
    board: DashboardLink | None = None
    panels: list[PanelLink] = field(default_factory=list)
    panel: PanelLink | None = None
    image: PanelImage | None = None
    note: str = ""  # why there is no picture, say


class DashboardNotFound(Exception):
    """The person asked for something that is not there (or cannot have it now); the
    message says what is."""


# Renders take Grafana's headless browser up to a minute, on the adapter threads that
# in-process actions use too: two at once at most (scans have their own two), a third is
# refused at once rather than queued behind them.
RENDERS_AT_ONCE = 2
_renders = threading.BoundedSemaphore(RENDERS_AT_ONCE)


def split_panel(args: list[str]) -> tuple[str, str | None]:
    """(search, panel selector or None) from the command's words: `… panel <id|title>`."""
    lowered = [a.lower() for a in args]
    if "panel" not in lowered:
        return " ".join(args), None
    at = len(lowered) - 1 - lowered[::-1].index("panel")
    return " ".join(args[:at]), " ".join(args[at + 1 :])


def _the_one(search: str, hits: list[dict[str, Any]]) -> dict[str, Any] | None:
    if len(hits) == 1:
        return hits[0]
    exact = [h for h in hits if h["title"].lower() == search.lower() or h["uid"] == search]
    return exact[0] if len(exact) == 1 else None


def _pick_panel(panels: list[PanelLink], selector: str) -> PanelLink:
    wanted = selector.strip().lstrip("#")
    if wanted.isdigit():
        for panel in panels:
            if panel.id == int(wanted):
                return panel
    exact = [p for p in panels if p.title.lower() == selector.lower()]
    partial = [p for p in panels if selector.lower() in p.title.lower()]
    for candidates in (exact, partial):
        if len(candidates) == 1:
            return candidates[0]
    if len(partial) > 1:
        names = ", ".join(f"{p.id} {p.title}" for p in partial[:10])
        raise DashboardNotFound(f"{len(partial)} panels match {selector!r} ({names}): give its id.")
    raise DashboardNotFound(
        f"No panel {selector!r}: the panels are listed by `dashboards <search>`."
    )


def _filename(uid: str, panel_id: int) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"grafana-{uid}-panel-{panel_id}") + ".png"


async def look_up(integrations: Integrations, search: str, panel: str | None = None) -> Found:
    """Raises NotConfigured, IntegrationError (Grafana's answer) or DashboardNotFound (the ask)."""
    grafana = await integrations.run(integrations.grafana)
    with integrations.faults():
        found = await integrations.run(grafana.search_dashboards, search, SEARCH_LIMIT)
    hits: list[dict[str, Any]] = list(found.data or [])
    links = [DashboardLink(h["uid"], h["title"], h["folder"], h["url"]) for h in hits]
    one = _the_one(search, hits) if search else None
    if one is None:
        if panel is not None:
            if not hits:
                raise DashboardNotFound(f"No dashboard matches {search!r}.")
            raise DashboardNotFound(
                f"{len(hits)} dashboards match {search!r}: name one for its panel "
                f"({', '.join(h['title'] for h in hits[:5])}{', …' if len(hits) > 5 else ''})."
            )
        return Found(search, links[:SHOWN], max(0, len(links) - SHOWN))
    with integrations.faults():
        board = (await integrations.run(grafana.dashboard, one["uid"])).data
    link = DashboardLink(board["uid"], board["title"], board["folder"], board["url"])
    panels = [PanelLink(p["id"], p["title"], p["url"]) for p in board["panels"]]
    if panel is None:
        return Found(search, [link], board=link, panels=panels)
    chosen = _pick_panel(panels, panel)
    if not _renders.acquire(blocking=False):
        raise DashboardNotFound(
            f"{RENDERS_AT_ONCE} panel pictures are being drawn; ask again in a moment "
            f"(the panel's link: {chosen.url})"
        )
    try:
        with integrations.faults():
            rendered = await integrations.run(
                grafana.render_panel, board["uid"], chosen.id, slug=board.get("slug", "")
            )
    finally:
        _renders.release()
    if rendered.data is None:
        return Found(search, [link], board=link, panel=chosen, note=rendered.summary)
    image = PanelImage(rendered.data, _filename(board["uid"], chosen.id))
    return Found(search, [link], board=link, panel=chosen, image=image)
