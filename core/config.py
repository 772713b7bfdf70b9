"""InfraAI's configuration: the environment table of the README as one settings class.

One class so that every process (bot, worker, CLI) reads the same names with the same
defaults, and a bad value stops start-up with one line naming the variable instead of
surfacing later as a confusing fault deep inside a request.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

if TYPE_CHECKING:
    from core.api_tokens import ApiToken

SUPPORTED_DATABASE_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")


class ConfigError(Exception):
    """A setting has a value InfraAI cannot start with; the message is one line."""


class Settings(BaseSettings):
    """Every environment variable InfraAI reads (the README's configuration table)."""

    # An empty variable (`DATABASE_URL=`) means unset, as in most tools, not an empty value.
    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", env_ignore_empty=True
    )

    database_url: str = "sqlite+aiosqlite:///./infraai.db"
    redis_url: str | None = None

    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"

    infraai_channel: str | None = None
    infraai_approvers: Annotated[tuple[str, ...], NoDecode] = ()
    infraai_host: str = "127.0.0.1"
    infraai_port: int = Field(default=8080, ge=1, le=65535)
    alerts_token: str | None = None
    # Hashed tokens of the HTTP API (`core.api_tokens`); unset: loopback callers only.
    infraai_api_tokens: str | None = None
    infraai_policies: Path | None = None
    proposal_ttl_seconds: int = Field(default=3600, ge=60)
    infraai_dry_run: bool = False

    ollama_base_url: str = "http://localhost:11434"
    ollama_model: str = "llama3.1"
    # Always sent: Ollama silently cuts a longer prompt, system prompt first.
    ollama_num_ctx: int = Field(default=8192, ge=1024, le=1_048_576)
    ollama_timeout_seconds: float = Field(default=120.0, gt=0, le=3600)

    prometheus_url: str | None = None
    grafana_url: str | None = None
    grafana_token: str | None = None

    kubeconfig: str | None = None
    vsphere_host: str | None = None
    vsphere_user: str | None = None
    vsphere_password: str | None = None
    vsphere_insecure: bool = False

    # Guard rails and timeouts for execution.
    infraai_max_replicas: int = Field(default=20, ge=1, le=1000)
    infraai_action_timeout_seconds: float = Field(default=120.0, gt=0, le=3600)
    infraai_job_attempts: int = Field(default=3, ge=1, le=10)

    scan_allowed_cidrs: Annotated[
        tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...], NoDecode
    ] = (ipaddress.ip_network("127.0.0.0/8"),)
    # Addresses one scan may cover (a /24 is 256): a typo'd /8 must not become a week of nmap.
    scan_max_addresses: int = Field(default=256, ge=1, le=65536)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        scheme, sep, rest = value.partition("://")
        # Operators paste plain URLs; the driver is ours to choose.
        scheme = {
            "postgresql": "postgresql+asyncpg",
            "postgres": "postgresql+asyncpg",
            "sqlite": "sqlite+aiosqlite",
        }.get(scheme, scheme)
        value = f"{scheme}{sep}{rest}"
        if scheme not in SUPPORTED_DATABASE_SCHEMES:
            raise ValueError(
                f"unsupported scheme {scheme!r}; use one of {', '.join(SUPPORTED_DATABASE_SCHEMES)}"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value or None

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        # slack_sdk joins method names onto the base URL; without the slash it drops "api".
        return value if value.endswith("/") else value + "/"

    @field_validator("infraai_approvers", mode="before")
    @classmethod
    def _split_approvers(cls, value: object) -> object:
        if isinstance(value, str):
            ids = tuple(part.strip() for part in value.split(",") if part.strip())
            bad = [i for i in ids if i[:1] not in ("U", "W", "S")]
            if bad:
                raise ValueError(f"expected Slack user (U…) or user-group (S…) IDs, got {bad[0]!r}")
            return ids
        return value

    @field_validator("scan_allowed_cidrs", mode="before")
    @classmethod
    def _split_cidrs(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(
                ipaddress.ip_network(part.strip(), strict=False)
                for part in value.split(",")
                if part.strip()
            )
        return value

    @field_validator("infraai_api_tokens")
    @classmethod
    def _api_tokens(cls, value: str | None) -> str | None:
        from core.api_tokens import parse_tokens

        if value is not None and not parse_tokens(value):
            return None  # only separators: as good as unset
        return value

    @field_validator("infraai_policies")
    @classmethod
    def _policies_exist(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @property
    def api_tokens(self) -> tuple[ApiToken, ...]:
        """The API's tokens, parsed (the validator has already refused a bad value)."""
        from core.api_tokens import parse_tokens

        return parse_tokens(self.infraai_api_tokens or "")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings() -> Settings:
    """Read the environment; raise ConfigError with one line naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        variable = str(first["loc"][0]).upper() if first["loc"] else "environment"
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{variable}: {message}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
