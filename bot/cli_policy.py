"""`infraai policy …`: GitOps-style policy management from YAML."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli_support import CliError, session_for, table

if TYPE_CHECKING:
    from core.config import Settings
    from core.policy.spec import PolicySpec
    from core.policy.testing import AlertUnderTest


def _actor() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


def read_policy_file(path: str) -> list[PolicySpec]:
    from core.policy.spec import PolicyError
    from core.policy.store import load_document

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise CliError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        return load_document(text)
    except PolicyError as exc:
        raise CliError(str(exc)) from None


def policy_list(args: argparse.Namespace, settings: Settings) -> int:
    """List the policies in force, in evaluation order."""
    from core.policy.store import list_policies

    async def run() -> list[tuple[int, PolicySpec]]:
        async with session_for(settings) as session:
            return await list_policies(session)

    rows = asyncio.run(run())
    print(
        table(
            ["NAME", "PRIO", "ENABLED", "ACTION", "APPROVAL", "MATCHERS"],
            [
                (
                    s.name,
                    s.priority,
                    "yes" if s.enabled else "no",
                    s.action,
                    s.approval,
                    ", ".join(s.matchers),
                )
                for _id, s in rows
            ],
        )
    )
    return 0


def policy_show(args: argparse.Namespace, settings: Settings) -> int:
    """Show one policy as YAML."""
    from core.policy.store import PolicyNotFound, export_document, get_policy

    async def run() -> PolicySpec:
        async with session_for(settings) as session:
            return await get_policy(session, args.name)

    try:
        spec = asyncio.run(run())
    except PolicyNotFound:
        raise CliError(f"no policy named {args.name!r}") from None
    print(export_document([spec]), end="")
    return 0


def policy_apply(args: argparse.Namespace, settings: Settings) -> int:
    """Create or update the policies in a YAML file (all or nothing). `-` reads stdin."""
    from core.policy.store import apply_policies

    specs = read_policy_file(args.file)

    async def run() -> str:
        async with session_for(settings) as session:
            async with session.begin():
                result = await apply_policies(session, specs, _actor(), prune=args.prune)
            return result.summary()

    print(asyncio.run(run()))
    return 0


def policy_export(args: argparse.Namespace, settings: Settings) -> int:
    """Print every policy as YAML that `policy apply` takes back unchanged."""
    from core.policy.store import export_document, list_policies

    async def run() -> list[PolicySpec]:
        async with session_for(settings) as session:
            return [spec for _id, spec in await list_policies(session)]

    print(export_document(asyncio.run(run())), end="")
    return 0


def policy_delete(args: argparse.Namespace, settings: Settings) -> int:
    """Delete a policy (its proposals stay, with the policy's name)."""
    from core.policy.store import PolicyNotFound, delete_policy

    async def run() -> None:
        async with session_for(settings) as session:
            async with session.begin():
                await delete_policy(session, args.name, _actor())

    try:
        asyncio.run(run())
    except PolicyNotFound:
        raise CliError(f"no policy named {args.name!r}") from None
    print(f"deleted {args.name}")
    return 0


def _toggle(enabled: bool) -> Callable[[argparse.Namespace, Settings], int]:
    def handler(args: argparse.Namespace, settings: Settings) -> int:
        from core.policy.store import PolicyNotFound, set_enabled

        async def run() -> bool:
            async with session_for(settings) as session:
                async with session.begin():
                    return await set_enabled(session, args.name, enabled, _actor())

        try:
            changed = asyncio.run(run())
        except PolicyNotFound:
            raise CliError(f"no policy named {args.name!r}") from None
        state = "enabled" if enabled else "disabled"
        print(f"{args.name} {state}" if changed else f"{args.name} was already {state}")
        return 0

    handler.__doc__ = f"{'Enable' if enabled else 'Disable'} a policy."
    return handler


def _alerts_under_test(args: argparse.Namespace) -> list[AlertUnderTest]:
    from core.alerts.webhook import PayloadError, parse_payload
    from core.policy.testing import AlertUnderTest, labels_from_pairs

    if args.file:
        try:
            data: Any = json.loads(Path(args.file).read_text())
        except OSError as exc:
            raise CliError(f"cannot read {args.file}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise CliError(f"{args.file}: malformed JSON: {exc}") from None
        try:
            payload = parse_payload(data)
        except PayloadError as exc:
            raise CliError(f"{args.file}: {exc}") from None
        return [
            AlertUnderTest(a.labels, a.annotations, a.status, a.fingerprint) for a in payload.alerts
        ]
    if not args.labels:
        raise CliError("give labels as name=value pairs, or --file webhook.json")
    try:
        labels = labels_from_pairs(args.labels)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    annotations = {}
    for pair in args.annotation or []:
        name, sep, value = pair.partition("=")
        if not sep:
            raise CliError(f"annotation {pair!r}: expected name=value")
        annotations[name] = value
    return [AlertUnderTest(labels, annotations, "firing", "")]


def policy_test(args: argparse.Namespace, settings: Settings) -> int:
    """Dry run: which policy an alert would match and the exact action it would propose.

    Records nothing. The alert is given as labels (`alertname=KubePodCrashLooping
    namespace=prod pod=api-1`) or as an Alertmanager webhook JSON file (--file). With
    --policies FILE the file's policies are tested instead of those in force.
    """
    from core.policy.engine import PolicySet
    from core.policy.store import list_policies
    from core.policy.testing import describe_test

    alerts = _alerts_under_test(args)
    if args.policies:
        specs = read_policy_file(args.policies)
    else:

        async def run() -> list[PolicySpec]:
            async with session_for(settings) as session:
                return [spec for _id, spec in await list_policies(session)]

        specs = asyncio.run(run())
    policy_set = PolicySet(specs)
    reports = [describe_test(policy_set, alert) for alert in alerts]
    if args.json:
        print(json.dumps([r.as_dict() for r in reports], indent=2))
    else:
        print("\n\n".join(r.as_text() for r in reports))
    return 0


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    add: Callable[[str, Callable[[argparse.Namespace, Settings], int]], argparse.ArgumentParser],
) -> None:
    policy = sub.add_parser("policy", help="Manage remediation policies (GitOps-style YAML).")
    verbs = policy.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(
        name: str, handler: Callable[[argparse.Namespace, Settings], int]
    ) -> argparse.ArgumentParser:
        doc = (handler.__doc__ or "").strip()
        parser = verbs.add_parser(name, help=doc.splitlines()[0], description=doc)
        parser.set_defaults(handler=handler)
        return parser

    verb("list", policy_list)
    verb("show", policy_show).add_argument("name")
    apply = verb("apply", policy_apply)
    apply.add_argument("file", help="policy YAML file, or - for stdin")
    apply.add_argument("--prune", action="store_true", help="delete policies not in the file")
    verb("export", policy_export)
    verb("delete", policy_delete).add_argument("name")
    verb("enable", _toggle(True)).add_argument("name")
    verb("disable", _toggle(False)).add_argument("name")
    test = verb("test", policy_test)
    test.add_argument("labels", nargs="*", metavar="NAME=VALUE", help="the alert's labels")
    test.add_argument("--annotation", action="append", metavar="NAME=VALUE")
    test.add_argument("--file", help="an Alertmanager webhook JSON payload")
    test.add_argument("--policies", help="test these policies (YAML) instead of those in force")
    test.add_argument("--json", action="store_true", help="machine-readable output")
