"""A small fake of Grafana's HTTP API, for tests (Grafana cannot be installed here).

It answers the paths InfraAI uses with the shapes Grafana 10/11 sends:

* `GET /api/health` → `{"commit", "database": "ok", "version"}` without authentication (503
  with `"database": "failing"` when the database is down);
* `GET /api/search?query=&type=&limit=` → a list of hits (`id`, `uid`, `title`, `uri`,
  `url`, `slug`, `type` `dash-db`/`dash-folder`, `tags`, `isStarred`, `sortMeta`, and
  `folderId`/`folderUid`/`folderTitle`/`folderUrl` when the dashboard is in a folder),
  title matched case-insensitively, sorted by title;
* `GET /api/dashboards/uid/<uid>` → `{"meta": {…, "slug", "url", "folderTitle"},
  "dashboard": {…, "panels": [… rows with collapsed panels inside …]}}`, 404
  `{"message": "Dashboard not found"}`;
* `GET /render/d-solo/<uid>/<slug>?panelId=&width=&height=` → `image/png` of exactly the size
  asked for, or, with no image renderer (`renderer=False`), Grafana's stock "plugin not
  installed" picture (its own size) — with status 200, as Grafana answers;
* every API path but health wants `Authorization: Bearer <token>`: none or a wrong one is
  401 `{"message": "Invalid API key"}`; `forbid(uid)` makes a dashboard 403
  `{"message": "Access denied to this dashboard"}`; `fail_next(status)` answers the next
  requests with that status (a proxy's 502, a crash's 500).

Every request is recorded (`requests`) with its Authorization header, so a test can assert
the token went where it should and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.threaded import serve_in_thread

TOKEN = "glsa_fakeServiceAccountToken_0123456789abcdef"
VERSION = "10.4.2"
PLACEHOLDER_SIZE = (770, 220)  # rendering_plugin_not_installed.png: not what was asked for


def png(width: int, height: int, rgb: tuple[int, int, int] = (30, 120, 200)) -> bytes:
    """A real PNG (8-bit RGB, one colour) of this size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height, 9))
        + chunk(b"IEND", b"")
    )


def _slug(title: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in title.lower()).split())


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    authorization: str | None


@dataclass
class FakeGrafana:
    token: str = TOKEN
    renderer: bool = True
    database_ok: bool = True
    sub_path: str = ""  # Grafana served under e.g. /grafana (root_url with serve_from_sub_path)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    folders: dict[str, str] = field(default_factory=dict)  # uid → title
    forbidden: set[str] = field(default_factory=set)
    requests: list[Seen] = field(default_factory=list)
    _failures: list[int] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    url: str = ""

    # ---- seeding -----------------------------------------------------------------------

    def add_dashboard(
        self,
        uid: str,
        title: str,
        panels: list[tuple[int, str]] | None = None,
        *,
        folder: str | None = None,
        tags: list[str] | None = None,
        collapsed_row: list[tuple[int, str]] | None = None,
    ) -> None:
        """A dashboard with panels (id, title); `collapsed_row` panels sit inside a
        collapsed row, as Grafana stores them."""
        folder_uid = None
        if folder is not None:
            folder_uid = "f-" + _slug(folder)
            self.folders[folder_uid] = folder
        body_panels: list[dict[str, Any]] = [
            {
                "id": pid,
                "type": "timeseries",
                "title": ptitle,
                "gridPos": {"h": 8, "w": 12, "x": 0, "y": 8 * i},
                "datasource": {"type": "prometheus", "uid": "prom"},
                "targets": [{"expr": "up", "refId": "A"}],
            }
            for i, (pid, ptitle) in enumerate(panels or [])
        ]
        if collapsed_row:
            body_panels.append(
                {
                    "id": 1000 + len(body_panels),
                    "type": "row",
                    "title": "More",
                    "collapsed": True,
                    "gridPos": {"h": 1, "w": 24, "x": 0, "y": 100},
                    "panels": [
                        {"id": pid, "type": "stat", "title": ptitle, "gridPos": {}}
                        for pid, ptitle in collapsed_row
                    ],
                }
            )
        self.dashboards[uid] = {
            "id": len(self.dashboards) + 1,
            "uid": uid,
            "title": title,
            "tags": tags or [],
            "timezone": "browser",
            "schemaVersion": 39,
            "version": 3,
            "panels": body_panels,
            "_folder_uid": folder_uid,
        }

    def forbid(self, uid: str) -> None:
        self.forbidden.add(uid)

    def fail_next(self, status: int, times: int = 1) -> None:
        self._failures.extend([status] * times)

    # ---- serving -----------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._route)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}{self.sub_path}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def run_in_thread(self) -> contextlib.AbstractContextManager[str]:
        """Serve from a thread's own loop: the adapter is synchronous."""
        return serve_in_thread(self.start, self.stop, "fake-grafana")

    def authorizations(self) -> set[str | None]:
        return {seen.authorization for seen in self.requests}

    # ---- HTTP ----------------------------------------------------------------------------

    @staticmethod
    def _error(status: int, message: str) -> web.Response:
        return web.json_response({"message": message, "traceID": ""}, status=status)

    async def _route(self, request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0)
        self.requests.append(
            Seen(
                request.method,
                request.path,
                dict(request.query),
                request.headers.get("Authorization"),
            )
        )
        path = request.path
        if self.sub_path:
            if not path.startswith(self.sub_path + "/"):
                return web.Response(status=404, text="404 page not found")
            path = path[len(self.sub_path) :]
        if self._failures:
            status = self._failures.pop(0)
            return web.Response(
                status=status,
                text="<html><body>Bad Gateway</body></html>",
                content_type="text/html",
            )
        if request.method != "GET":
            return self._error(405, "Method Not Allowed")
        if path == "/api/health":
            body = {
                "commit": "0123abcd",
                "database": "ok" if self.database_ok else "failing",
                "version": VERSION,
            }
            return web.json_response(body, status=200 if self.database_ok else 503)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._error(401, "Invalid API key")
        if path == "/api/search":
            return self._search(request)
        if path.startswith("/api/dashboards/uid/"):
            return self._dashboard(path.removeprefix("/api/dashboards/uid/"))
        if path.startswith("/render/d-solo/"):
            return self._render(request)
        return self._error(404, "Not found")

    def _hit(self, board: dict[str, Any]) -> dict[str, Any]:
        slug = _slug(board["title"])
        hit: dict[str, Any] = {
            "id": board["id"],
            "uid": board["uid"],
            "title": board["title"],
            "uri": f"db/{slug}",
            "url": f"{self.sub_path}/d/{board['uid']}/{slug}",
            "slug": "",
            "type": "dash-db",
            "tags": board["tags"],
            "isStarred": False,
            "sortMeta": 0,
        }
        folder_uid = board["_folder_uid"]
        if folder_uid:
            folder_slug = _slug(self.folders[folder_uid])
            hit |= {
                "folderId": 100 + sorted(self.folders).index(folder_uid),
                "folderUid": folder_uid,
                "folderTitle": self.folders[folder_uid],
                "folderUrl": f"{self.sub_path}/dashboards/f/{folder_uid}/{folder_slug}",
            }
        return hit

    def _search(self, request: web.Request) -> web.Response:
        query = request.query.get("query", "").lower()
        kind = request.query.get("type")
        limit = int(request.query.get("limit", "1000"))
        hits: list[dict[str, Any]] = []
        if kind in (None, "dash-folder"):
            for uid, title in self.folders.items():
                if query in title.lower():
                    hits.append(
                        {
                            "id": 100 + sorted(self.folders).index(uid),
                            "uid": uid,
                            "title": title,
                            "uri": f"db/{_slug(title)}",
                            "url": f"{self.sub_path}/dashboards/f/{uid}/{_slug(title)}",
                            "slug": "",
                            "type": "dash-folder",
                            "tags": [],
                            "isStarred": False,
                            "sortMeta": 0,
                        }
                    )
        if kind in (None, "dash-db"):
            for board in self.dashboards.values():
                if query in board["title"].lower() and board["uid"] not in self.forbidden:
                    hits.append(self._hit(board))
        hits.sort(key=lambda h: (h["type"] != "dash-folder", h["title"].lower()))
        return web.json_response(hits[:limit])

    def _dashboard(self, uid: str) -> web.Response:
        board = self.dashboards.get(uid)
        if board is None:
            return self._error(404, "Dashboard not found")
        if uid in self.forbidden:
            return self._error(403, "Access denied to this dashboard")
        slug = _slug(board["title"])
        folder_uid = board["_folder_uid"]
        meta = {
            "type": "db",
            "canSave": False,
            "canEdit": False,
            "canAdmin": False,
            "canStar": True,
            "canDelete": False,
            "slug": slug,
            "url": f"{self.sub_path}/d/{uid}/{slug}",
            "expires": "0001-01-01T00:00:00Z",
            "created": "2026-11-01T10:00:00Z",
            "updated": "2026-11-20T10:00:00Z",
            "updatedBy": "admin",
            "createdBy": "admin",
            "version": board["version"],
            "hasAcl": False,
            "isFolder": False,
            "folderId": 0,
            "folderUid": folder_uid or "",
            "folderTitle": self.folders.get(folder_uid or "", "General"),
            "folderUrl": "",
            "provisioned": False,
            "provisionedExternalId": "",
        }
        dashboard = {k: v for k, v in board.items() if not k.startswith("_")}
        return web.json_response({"meta": meta, "dashboard": dashboard})

    def _render(self, request: web.Request) -> web.Response:
        if not self.renderer:
            return web.Response(
                body=png(*PLACEHOLDER_SIZE, rgb=(40, 40, 40)), content_type="image/png"
            )
        width = int(request.query.get("width", "800"))
        height = int(request.query.get("height", "400"))
        return web.Response(body=png(width, height), content_type="image/png")
