"""URLs as operators write them: `https://user:pass@host/path`.

Shared by the HTTP adapters (Prometheus, Grafana): the URL is shown in messages, status
lines and logs, so it is kept without its credentials, which travel only in the
Authorization header.
"""

from __future__ import annotations

import urllib.parse


def without_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """(the URL without `user:pass@`, the credentials if it had any)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    auth = (urllib.parse.unquote(parts.username or ""), urllib.parse.unquote(parts.password or ""))
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)), auth
