"""The console surface: proposals and results in the terminal, commands typed at a prompt.

The embedded default's chat: the same notifier port, command parser and approvals as Slack,
with the person at the terminal as the (trusted) approver — `approve 3`, `deny 3`, or any
`/infraai` command without the slash.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from bot.render_text import plain, render_card, render_query, render_reply, render_status_line
from core import commands
from core.cards import ProposalCard
from core.dashboards import PanelImage
from core.notifier import MessageRef
from core.runtime import Runtime

CONSOLE_USER = "console"
CHANNEL = "console"
# One conversation per console process: the assistant remembers within a session.
CONVERSATION = f"console:{os.getpid()}"


class ConsoleNotifier:
    """The Notifier port, printing to a stream.

    A terminal appends where Slack edits: each change of a proposal's state is one line,
    printed once. The outbox hands this notifier every announced change (`shows_each_state`)
    and it remembers the last state it printed per proposal, so a card printed late (already
    approved) or a group's update never repeats a line.
    """

    shows_each_state = True
    pace_seconds = 0.0  # no rate limit to respect: each line as soon as it is known

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout
        self._shown: dict[int, str] = {}  # proposal id → the last state printed

    def _print(self, text: str) -> None:
        print(text, file=self._out, flush=True)

    def _print_state(self, card: ProposalCard) -> None:
        if self._shown.get(card.id) == card.status:
            return
        self._shown[card.id] = card.status
        self._print(render_status_line(card))

    async def post_proposal(self, card: ProposalCard, channel: str) -> MessageRef:
        self._shown[card.id] = card.status
        self._print("\n" + render_card(card))
        return MessageRef(CHANNEL, str(card.id))

    async def update_proposal(self, card: ProposalCard, ref: MessageRef) -> None:
        self._print_state(card)

    async def post_group(self, cards: Sequence[ProposalCard], channel: str) -> MessageRef:
        first = cards[0]
        self._print(f"\n⚡ {len(cards)} proposals from policy {first.policy_name}:")
        for card in cards:
            self._shown[card.id] = card.status
            self._print(render_card(card))
        return MessageRef(CHANNEL, f"group-{first.id}")

    async def update_group(self, cards: Sequence[ProposalCard], ref: MessageRef) -> None:
        for card in cards:
            self._print_state(card)

    async def post_group_detail(
        self, cards: Sequence[ProposalCard], ref: MessageRef, part: int = 0
    ) -> bool:
        return False  # the group was printed in full

    async def post_file(
        self,
        card: ProposalCard,
        channel: str,
        thread_ts: str | None,
        *,
        filename: str,
        content: bytes,
        title: str,
    ) -> None:
        path = await asyncio.to_thread(save_graph, filename, content)
        self._print(f"  ↳ #{card.id} graph: {title}: {path}")

    async def post_in_thread(
        self, card: ProposalCard | None, channel: str, thread_ts: str | None, text: str
    ) -> MessageRef:
        prefix = f"  ↳ #{card.id} " if card is not None else "  "
        self._print(prefix + plain(text).replace("\n", "\n    "))
        return MessageRef(CHANNEL, thread_ts or "0")


def _ask_hook(runtime: Runtime) -> Any:
    """`ask …` at the console: the assistant, in this session's conversation."""
    from core.agent.hook import ask_hook
    from core.agent.tools import ToolContext

    return ask_hook(runtime, ToolContext(user=CONSOLE_USER, conversation=CONVERSATION))


class ConsoleProgress:
    """A scan's progress (core.discovery.scan.Progress) as lines, while it runs."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout

    async def start(self, text: str) -> None:
        print(text, file=self._out, flush=True)

    async def step(self, text: str) -> None:
        print("  " + text.replace("\n", "\n    "), file=self._out, flush=True)


GOODBYE = "InfraAI stopped. Bye."
_PREFIX = "/infraai"


async def handle_line(runtime: Runtime, line: str) -> str:
    """One console line → the text to print.

    `approve N` / `deny N`, any `/infraai` command with or without the slash prefix, and
    anything else is a question for the assistant (as `ask …`).
    """
    text = line.strip()
    if text.lower().startswith(_PREFIX):
        text = text[len(_PREFIX) :].strip() or "help"
    words = text.split()
    if not words:
        return ""
    verb = words[0].lower()
    if verb in ("approve", "deny"):
        if len(words) != 2 or not words[1].lstrip("#").isdigit():
            return f"usage: {verb} <proposal id>"
        outcome = await runtime.approvals.decide(
            int(words[1].lstrip("#")), CONSOLE_USER, verb == "approve"
        )
        if runtime.drain is not None:
            runtime.drain.wake()
        return plain(outcome.message)
    if verb in ("quit", "exit"):
        raise EOFError
    if verb not in commands.COMMANDS:
        text, verb = f"ask {text}", "ask"  # free text: a question
    reply = await commands.run_command(
        runtime,
        CONSOLE_USER,
        text,
        ask=_ask_hook(runtime) if verb == "ask" else None,
        scan_progress=ConsoleProgress() if verb == "scan" else None,
    )
    if runtime.drain is not None:
        runtime.drain.wake()
    # ---- Grafana (issue 9): a panel's picture is saved, and the path printed
    if isinstance(reply, commands.Dashboards) and reply.found.image is not None:
        path = await asyncio.to_thread(save_picture, reply.found.image)
        return render_reply(reply) + f"\n   Picture saved to {path}"
    if isinstance(reply, commands.QueryResult) and reply.png is not None:
        path = await asyncio.to_thread(save_graph, reply.filename, reply.png)
        return render_query(reply, str(path))
    return render_reply(reply)


PICTURES = Path(tempfile.gettempdir()) / "infraai"


def save_picture(image: PanelImage) -> Path:
    """The PNG in the pictures directory, under a name that says what and when."""
    PICTURES.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = PICTURES / f"{image.filename.removesuffix('.png')}-{stamp}.png"
    path.write_bytes(image.png)
    return path


def graph_directory() -> Path:
    """Where the console keeps graphs: `infraai-graphs/` in the system's temporary directory
    (a terminal cannot show a PNG inline; the path is printed to open it)."""
    return Path(tempfile.gettempdir()) / "infraai-graphs"


def save_graph(filename: str, content: bytes) -> Path:
    """Write a graph for the person at the terminal to open; returns its path."""
    directory = graph_directory()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / Path(filename).name
    path.write_bytes(content)
    return path


async def _lines(stream: TextIO) -> AsyncIterator[str]:
    """The stream's lines, read by a daemon thread.

    Not `asyncio.to_thread`: a thread blocked in `readline()` on a terminal would keep the
    loop's default executor — and so the process, at exit — waiting for the next Enter.
    A daemon thread is left behind when the process ends.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str] = asyncio.Queue()

    def read() -> None:
        while True:
            try:
                line = stream.readline()
            except (OSError, ValueError):  # closed under us
                line = ""
            loop.call_soon_threadsafe(queue.put_nowait, line)
            if not line:
                return

    threading.Thread(target=read, name="console-stdin", daemon=True).start()
    while line := await queue.get():
        yield line


async def read_lines(runtime: Runtime, stdin: TextIO | None = None) -> None:
    """Read commands until `exit`, `quit` or end of input (Ctrl-D)."""
    stream = stdin or sys.stdin
    print(
        "InfraAI console — `help` lists the commands; `approve N`, `deny N`; anything else is "
        "a question for the assistant; `exit` or Ctrl-D to stop.",
        flush=True,
    )
    async for line in _lines(stream):
        try:
            output = await handle_line(runtime, line)
        except EOFError:
            return
        except Exception as exc:  # a bad line must not end the console
            output = f"error: {type(exc).__name__}: {exc}"
        if output:
            print(output, flush=True)
