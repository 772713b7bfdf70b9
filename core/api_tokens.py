"""Tokens of the HTTP API: who holds each one and what it may do, stored only as hashes.

`INFRAAI_API_TOKENS` lists one entry per token, separated by `;` or newlines:

    ci-pipeline read,policies:write sha256:<hex>; dashboards read sha256:<hex>

owner (named in the audit trail of every write it makes), comma-separated scopes, and the
SHA-256 of the token. Only hashes are configured, so a leaked environment or manifest does
not leak a credential; the tokens themselves are long random strings (`infraai api-token`
makes one), for which a plain SHA-256 is as good as a slow password hash. A presented token
is compared with every entry in constant time, so timing says nothing about which entry
nearly matched.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

SCOPES = ("read", "policies:write", "chat")
TOKEN_PREFIX = "iai_"
_OWNER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")


@dataclass(frozen=True)
class ApiToken:
    """One configured token: its owner, its scopes, the SHA-256 of its secret."""

    owner: str
    scopes: frozenset[str]
    digest: bytes

    def entry(self) -> str:
        """The entry as `INFRAAI_API_TOKENS` writes it."""
        scopes = ",".join(s for s in SCOPES if s in self.scopes)
        return f"{self.owner} {scopes} sha256:{self.digest.hex()}"


def digest_of(token: str | bytes) -> bytes:
    raw = token.encode("utf-8", "surrogateescape") if isinstance(token, str) else token
    return hashlib.sha256(raw).digest()


def parse_scopes(text: str) -> frozenset[str]:
    scopes = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(scopes - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}; scopes are {', '.join(SCOPES)}")
    if not scopes:
        raise ValueError(f"no scope given; scopes are {', '.join(SCOPES)}")
    return scopes


@functools.lru_cache(maxsize=8)
def parse_tokens(text: str) -> tuple[ApiToken, ...]:
    """Every entry of `text`, or ValueError naming the first bad one (without its hash).
    Remembered: every API request asks the settings for the tokens."""
    tokens: list[ApiToken] = []
    owners: set[str] = set()
    for number, raw in enumerate(re.split(r"[;\n]", text), start=1):
        entry = raw.strip()
        if not entry:
            continue
        parts = entry.split()
        if len(parts) != 3:
            raise ValueError(f"entry {number}: expected 'OWNER SCOPES sha256:HEX'")
        owner, scopes, digest = parts
        if not _OWNER.match(owner):
            raise ValueError(f"entry {number}: owner must be letters, digits, '.', '_', '@', '-'")
        if owner in owners:
            raise ValueError(f"entry {number}: owner {owner!r} is listed twice")
        match = _DIGEST.match(digest.lower())
        if match is None:
            raise ValueError(f"entry {number}: the hash must be sha256: and 64 hex digits")
        try:
            parsed_scopes = parse_scopes(scopes)
        except ValueError as exc:
            raise ValueError(f"entry {number}: {exc}") from None
        owners.add(owner)
        tokens.append(ApiToken(owner, parsed_scopes, bytes.fromhex(match.group(1))))
    return tuple(tokens)


def find_token(tokens: tuple[ApiToken, ...], presented: bytes) -> ApiToken | None:
    """The entry whose hash `presented` has; every entry is compared, in constant time."""
    digest = digest_of(presented)
    found: ApiToken | None = None
    for token in tokens:
        if hmac.compare_digest(digest, token.digest):
            found = token
    return found


def new_token(owner: str, scopes: frozenset[str]) -> tuple[str, ApiToken]:
    """A fresh random token and its entry (the token is shown once and never stored)."""
    if not _OWNER.match(owner):
        raise ValueError("owner must be letters, digits, '.', '_', '@', '-' (at most 64)")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return secret, ApiToken(owner, scopes, digest_of(secret))
