"""Grafana: find dashboards, link to them and their panels, and render a panel as a PNG.

Reads only, over Grafana's HTTP API with a service-account token (`Authorization: Bearer`):
`/api/search` (dashboards by title), `/api/dashboards/uid/<uid>` (a dashboard's panels),
`/render/d-solo/<uid>/<slug>` (one panel as an image) and `/api/health`.

Two things shape this module:

* **The token is a secret.** It goes in one header and nowhere else: no message, link or
  `repr` here contains it, and a GRAFANA_URL written as `https://user:pass@host` has its
  credentials taken out of every link and message (they are sent as basic auth instead).
* **Grafana without its image renderer still answers 200 with a PNG**: a picture saying
  "rendering plugin not installed" (or "rendering failed", "too many renders") served instead
  of the panel. The panel render is the size that was asked for; those stock pictures are not,
  so an image of the wrong size is reported as "no renderer" and callers fall back to the link.

Synchronous (httpx): callers run it on a thread. Imports nothing of InfraAI's.
"""

from __future__ import annotations

import re
import struct
import urllib.parse
from dataclasses import dataclass
from typing import Any

import httpx

from adapters.urls import without_credentials

REASONS = frozenset(
    {
        "unauthorized",
        "forbidden",
        "not_found",
        "unreachable",
        "timeout",
        "server",
        "bad_response",
        "too_large",
    }
)
DEFAULT_TIMEOUT = 10.0
RENDER_TIMEOUT = 60.0  # a headless browser drawing a panel takes seconds
RENDER_WIDTH, RENDER_HEIGHT = 1000, 500
SEARCH_LIMIT = 100
MAX_RESPONSE_BYTES = 20 * 1024 * 1024  # a big dashboard's JSON is a few MB; a render less
_PNG = b"\x89PNG\r\n\x1a\n"
_UID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


class GrafanaError(Exception):
    """A failed call: `reason` is one of REASONS, `transient` when trying again later could
    succeed (unreachable, timeout, 5xx). The message is one line and never holds the token."""

    def __init__(
        self, reason: str, message: str, *, transient: bool = False, status: int | None = None
    ) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown GrafanaError reason {reason!r}")
        message = " ".join(message.split())
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.transient = transient
        self.status = status


class GrafanaNotConfigured(Exception):
    """GRAFANA_URL is unset or not an http(s) URL."""


@dataclass(frozen=True)
class GrafanaOutcome:
    """What a read returned (the shape every adapter's outcome has; reads send no request)."""

    summary: str
    request: str | None = None
    data: Any = None
    dry_run: bool = False


def _png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, or None if `data` is not a PNG."""
    if not data.startswith(_PNG) or len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows flattened: a collapsed row keeps its panels inside it, and
    dashboards from before Grafana 5 keep them under `rows[].panels`."""
    found: list[dict[str, Any]] = []

    def walk(items: Any) -> None:
        for item in items or []:
            if not isinstance(item, dict):
                continue
            if item.get("type") == "row":
                walk(item.get("panels"))
                continue
            found.append(item)
            walk(item.get("panels"))  # library panels and old nested ones

    walk(dashboard.get("panels"))
    for row in dashboard.get("rows") or []:
        if isinstance(row, dict):
            walk(row.get("panels"))
    return found


class GrafanaAdapter:
    """One Grafana (one organisation: the token's)."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        render_timeout: float = RENDER_TIMEOUT,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise GrafanaNotConfigured("GRAFANA_URL must be http(s)://…")
        self.url, basic = without_credentials(url.rstrip("/"))
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(
            base_url=self.url,
            headers=headers,
            auth=basic if basic and not token else None,
            timeout=timeout,
            follow_redirects=False,
        )
        self.render_timeout = render_timeout
        self._authenticated = bool(token or basic)

    def __repr__(self) -> str:
        return f"GrafanaAdapter({self.url!r})"

    # ---- links -------------------------------------------------------------------------

    def link(self, path: str) -> str:
        """An absolute link for a path Grafana returned (`/d/uid/slug`, or with its sub path
        when Grafana serves under one: `/grafana/d/uid/slug`)."""
        if path.startswith(("http://", "https://")):
            return path
        base = urllib.parse.urlsplit(self.url)
        sub = base.path.rstrip("/")
        if sub and (path == sub or path.startswith(sub + "/")):
            return urllib.parse.urlunsplit((base.scheme, base.netloc, path, "", ""))
        return self.url + "/" + path.lstrip("/")

    @staticmethod
    def panel_link(dashboard_link: str, panel_id: int) -> str:
        return f"{dashboard_link}?viewPanel={panel_id}"

    # ---- calls ---------------------------------------------------------------------------

    def _get(self, path: str, *, what: str, **kwargs: Any) -> httpx.Response:
        try:
            # Streamed with a cap: a dashboard's JSON or a render is held in memory whole,
            # and a misconfigured URL can point at anything.
            with self._client.stream("GET", path, **kwargs) as streamed:
                body = bytearray()
                for chunk in streamed.iter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise GrafanaError(
                            "too_large",
                            f"Grafana's answer for {what} is over "
                            f"{MAX_RESPONSE_BYTES // (1024 * 1024)} MiB",
                        )
                response = httpx.Response(
                    streamed.status_code, headers=streamed.headers, content=bytes(body)
                )
        except httpx.TimeoutException:
            raise GrafanaError(
                "timeout", f"Grafana at {self.url} did not answer in time", transient=True
            ) from None
        except httpx.HTTPError as exc:
            raise GrafanaError(
                "unreachable",
                f"Grafana at {self.url} is unreachable ({type(exc).__name__})",
                transient=True,
            ) from None
        status = response.status_code
        if status < 400:
            if status >= 300:  # a login page or a proxy in front: not the API
                raise GrafanaError(
                    "bad_response",
                    f"Grafana at {self.url} redirected {what} ({status}): is GRAFANA_URL "
                    "Grafana's own address?",
                    status=status,
                )
            return response
        if status == 401:
            refused = "refused the token" if self._authenticated else "needs a token"
            raise GrafanaError(
                "unauthorized",
                f"Grafana {refused} (401): check GRAFANA_TOKEN",
                status=status,
            )
        if status == 403:
            raise GrafanaError(
                "forbidden",
                f"Grafana's token may not read {what} (403): give its service account "
                "the Viewer role",
                status=status,
            )
        if status == 404:
            raise GrafanaError("not_found", f"Grafana has no {what} (404)", status=status)
        if status >= 500:
            raise GrafanaError(
                "server",
                f"Grafana answered {status} for {what}: try again later",
                transient=True,
                status=status,
            )
        raise GrafanaError("bad_response", f"Grafana answered {status} for {what}", status=status)

    def _json(self, path: str, *, what: str, **kwargs: Any) -> Any:
        response = self._get(path, what=what, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise GrafanaError(
                "bad_response",
                f"Grafana at {self.url} answered {what} with something that is not JSON: is "
                "GRAFANA_URL Grafana's own address?",
            ) from None

    def search_dashboards(self, query: str = "", limit: int = SEARCH_LIMIT) -> GrafanaOutcome:
        """Dashboards whose title contains `query` (all when empty), in Grafana's order
        (alphabetical), each with an absolute link."""
        params: dict[str, Any] = {"type": "dash-db", "limit": max(1, min(limit, 5000))}
        if query:
            params["query"] = query
        found = self._json("/api/search", what="dashboard search", params=params)
        if not isinstance(found, list):
            raise GrafanaError("bad_response", "Grafana's /api/search did not return a list")
        dashboards = [
            {
                "uid": str(item.get("uid", "")),
                "title": str(item.get("title", "")),
                "folder": str(item.get("folderTitle") or "General"),
                "tags": [str(t) for t in item.get("tags") or []],
                "url": self.link(str(item.get("url", ""))),
            }
            for item in found
            if isinstance(item, dict) and item.get("type", "dash-db") == "dash-db"
        ]
        where = f" matching {query!r}" if query else ""
        return GrafanaOutcome(f"{len(dashboards)} dashboard(s){where}", data=dashboards)

    def dashboard(self, uid: str) -> GrafanaOutcome:
        """One dashboard's title, link and panels (id, title, type, link to the panel)."""
        if not _UID.match(uid):
            raise GrafanaError("not_found", f"{uid!r} is not a dashboard uid")
        body = self._json(f"/api/dashboards/uid/{uid}", what=f"dashboard with uid {uid}")
        if not isinstance(body, dict) or not isinstance(body.get("dashboard"), dict):
            raise GrafanaError("bad_response", f"Grafana's dashboard {uid} has no dashboard")
        meta: dict[str, Any] = body["meta"] if isinstance(body.get("meta"), dict) else {}
        board = body["dashboard"]
        title = str(board.get("title", uid))
        link = self.link(str(meta.get("url") or f"/d/{uid}"))
        panels = [
            {
                "id": int(panel["id"]),
                "title": str(panel.get("title") or f"panel {panel['id']}"),
                "type": str(panel.get("type", "")),
                "url": self.panel_link(link, int(panel["id"])),
            }
            for panel in _panels(board)
            if isinstance(panel.get("id"), int)
        ]
        data = {
            "uid": uid,
            "title": title,
            "slug": str(meta.get("slug") or ""),
            "folder": str(meta.get("folderTitle") or "General"),
            "url": link,
            "panels": panels,
        }
        return GrafanaOutcome(f"dashboard {title}: {len(panels)} panel(s)", data=data)

    def render_panel(
        self,
        uid: str,
        panel_id: int,
        *,
        slug: str = "",
        width: int = RENDER_WIDTH,
        height: int = RENDER_HEIGHT,
        time_from: str = "now-6h",
        time_to: str = "now",
    ) -> GrafanaOutcome:
        """The panel as a PNG (`data`: bytes), or `data` None when Grafana has no image
        renderer (it then serves a stock picture; see the module docstring)."""
        if not _UID.match(uid):
            raise GrafanaError("not_found", f"{uid!r} is not a dashboard uid")
        params = {
            "panelId": panel_id,
            "width": width,
            "height": height,
            "from": time_from,
            "to": time_to,
        }
        what = f"panel {panel_id} of dashboard {uid}"
        response = self._get(
            f"/render/d-solo/{uid}/{slug or '_'}",
            what=what,
            params=params,
            headers={"Accept": "image/png"},
            timeout=self.render_timeout,
        )
        image = response.content
        size = _png_size(image)
        if size is None:
            raise GrafanaError("bad_response", f"Grafana's render of {what} is not a PNG")
        got_width, got_height = size
        scale = got_width // width if width else 0
        if scale < 1 or got_width != scale * width or got_height != scale * height:
            return GrafanaOutcome(
                f"Grafana could not render {what}: its image renderer is not installed (or failed)",
                data=None,
            )
        return GrafanaOutcome(f"{what}, {got_width}×{got_height}", data=image)

    def health(self) -> tuple[bool, str]:
        """`/api/health` (the server and its database), then one search with the token, so
        a revoked token shows here rather than at someone's first question."""
        try:
            body = self._json("/api/health", what="health endpoint")
            version = body.get("version", "?") if isinstance(body, dict) else "?"
            database = body.get("database", "?") if isinstance(body, dict) else "?"
            if database != "ok":
                return False, f"Grafana {version} at {self.url}: database {database}"
            self._json("/api/search", what="dashboard search", params={"limit": 1})
        except GrafanaError as exc:
            return False, exc.message
        except Exception as exc:  # the port says never raises
            return False, f"Grafana at {self.url}: {type(exc).__name__}"
        return True, f"Grafana {version} at {self.url}"

    def close(self) -> None:
        self._client.close()
