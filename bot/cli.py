"""The `infraai` command line. Each command's docstring is its help text.

Errors reach the person at the terminal as one line on stderr: exit 2 for input InfraAI
refuses (a bad policy, an unknown name, a bad setting), exit 1 for a system that does not
answer (the database). Never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

from bot import cli_policy, cli_proposals, cli_worker
from bot.cli_support import CliError

if TYPE_CHECKING:
    from core.config import Settings

# Start-up is part of the interface: `infraai --help` imports argparse and the command
# modules, whose heavy imports (SQLAlchemy, pydantic, the runtime) wait inside the commands.

Handler = Callable[[argparse.Namespace, "Settings"], int]


class UsageError(Exception):
    """Input InfraAI refuses; the message is one line."""


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"infraai: {message}", file=sys.stderr)
    raise SystemExit(code)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    """Apply the database migrations (creates the schema on a new database)."""
    from core.db.schema import head_revision, upgrade

    upgrade(settings.database_url)
    print(f"database at revision {head_revision()}")
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Run the bot: the HTTP app (alerts webhook, health, metrics) and the notifier."""
    from bot.serve import StartupError, serve

    try:
        return asyncio.run(serve(settings))
    except StartupError as exc:
        raise UsageError(str(exc)) from None


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    """Chat with InfraAI in this terminal: proposals, approvals and commands, no Slack."""
    from bot.serve import StartupError, chat

    try:
        return asyncio.run(chat(settings))
    except StartupError as exc:
        raise UsageError(str(exc)) from None


def cmd_api_token(args: argparse.Namespace, settings: Settings) -> int:
    """Make a token for the HTTP API and the INFRAAI_API_TOKENS entry that admits it.

    Prints the token (shown once, never stored) and the entry to add to INFRAAI_API_TOKENS:
    its owner, scopes and hash. Scopes: read (every GET), policies:write (apply, enable,
    disable, delete policies), chat (ask the assistant).
    Example: infraai api-token ci-pipeline read,policies:write"""
    from core.api_tokens import new_token, parse_scopes

    try:
        token, entry = new_token(args.owner, parse_scopes(args.scopes))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(f"token (give it to {entry.owner}; it is not shown again): {token}")
    print(f"add to INFRAAI_API_TOKENS (entries separated by ';'): {entry.entry()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="infraai",
        description="InfraAI: ChatOps for infrastructure teams. Settings come from the "
        "environment (DATABASE_URL, REDIS_URL, SLACK_*, …; see the README).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler) -> argparse.ArgumentParser:
        doc = (handler.__doc__ or "").strip()
        command = sub.add_parser(name, help=doc.splitlines()[0], description=doc)
        command.set_defaults(handler=handler)
        return command

    add("migrate", cmd_migrate)
    add("serve", cmd_serve)
    add("chat", cmd_chat)
    api_token = add("api-token", cmd_api_token)
    api_token.add_argument("owner", help="who holds it, as the audit trail names them")
    api_token.add_argument("scopes", help="comma-separated: read, policies:write, chat")
    cli_policy.register(sub, add)
    cli_proposals.register(sub, add)
    cli_worker.register(sub, add)
    return parser


# SQLSTATEs that mean the settings are wrong rather than the server away: an unknown role,
# a wrong password (class 28), a database that does not exist.
_SETTING_STATES = ("28", "3D000")


def _refused_setting(exc: BaseException) -> str | None:
    """The server's own words when it refused the connection's settings, else None."""
    for error in (
        getattr(exc, "orig", None),
        getattr(getattr(exc, "orig", None), "__cause__", None),
    ):
        state = getattr(error, "sqlstate", None)
        if isinstance(state, str) and state.startswith(_SETTING_STATES):
            return str(getattr(error, "args", [""])[0] or error).splitlines()[0][:200]
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from sqlalchemy.exc import DBAPIError, OperationalError

    from core.config import ConfigError, load_settings
    from core.db.schema import SchemaOutOfDate

    quiet = args.handler not in (cmd_serve, cmd_chat, cli_worker.cmd_worker)
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Alembic narrates every schema check at INFO; only `migrate` should speak.
    logging.getLogger("alembic").setLevel(
        logging.INFO if args.handler is cmd_migrate else logging.WARNING
    )
    try:
        settings = load_settings()
    except ConfigError as exc:
        fail(str(exc))
    try:
        return int(args.handler(args, settings))
    except (UsageError, CliError, SchemaOutOfDate) as exc:
        fail(str(exc))
    except (OperationalError, DBAPIError, OSError) as exc:
        refused = _refused_setting(exc)
        if refused:
            fail(f"DATABASE_URL: {refused}")  # a bad setting, not an outage: exit 2
        fail(f"database unavailable: {str(exc).splitlines()[0][:200]}", code=1)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
