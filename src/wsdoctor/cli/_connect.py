"""``wsdoctor connect URL``: an interactive client, like wscat, that explains the ending.

Data goes to stdout and everything about the connection (progress, pongs, headers,
the ending explained) to stderr, so ``wsdoctor connect URL -x query > out.txt``
keeps only the replies. ``--jsonl`` turns stdout into one JSON object per line for
scripts: one per received message, one for the ending.

On a terminal, lines are read with the standard library's ``readline`` (line
editing and history with the arrow keys, no extra dependency); elsewhere stdin is
read line by line until end of input. The history outlives the session in
``$XDG_STATE_HOME/wsdoctor/history`` (``~/.local/state/wsdoctor/history`` by
default, ``WSDOCTOR_HISTFILE`` to put it elsewhere, empty to keep none); it holds
what was typed, so it is written readable by its owner only, and a history that
cannot be read or written never stops a session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from wsdoctor.aio._run import run
from wsdoctor.aio.client import Step
from wsdoctor.aio.client import connect as ws_connect
from wsdoctor.aio.connection import WebSocketConnection
from wsdoctor.cli._lang import LANG_OPTION
from wsdoctor.cli._options import (
    MAX_SIZE_OPTION,
    ORIGIN_OPTION,
    Dial,
    Seconds,
    dial_options,
    validate_url,
)
from wsdoctor.cli._render import make_console, render_ending, ui
from wsdoctor.diagnose.check import EXIT_CODES, CheckResult, exit_code
from wsdoctor.protocol._ending import Ending
from wsdoctor.protocol._errors import ConnectionClosed, InvalidCloseCode, WebSocketError
from wsdoctor.protocol._redact import redact_header

EXIT_ABNORMAL = 1
EXIT_INTERRUPTED = 130
DIAL_STEPS = ("dns", "tcp", "tls", "http", "negotiate", "proxy", "redirect")

EPILOG = f"""\b
Examples:
  wsdoctor connect ws://127.0.0.1:8765/
  wsdoctor connect ws://127.0.0.1:8765/ -x hello -x /ping --wait 2
  echo '{{"op": "query"}}' | wsdoctor connect wss://example.com/ws --jsonl
  wsdoctor connect wss://example.com/ws -H 'Authorization: Bearer T' --show-headers

\b
Typed lines (or --execute messages) are sent as text messages. Commands:
  /ping                   send a Ping and print the round-trip time
  /close [CODE [REASON]]  close the connection (default 1000)
  /binary HEX             send a binary message, e.g. /binary 00ff10
  //TEXT                  send TEXT beginning with one '/', e.g. //help sends "/help"

\b
Received messages go to stdout: text as is (after "< " on a terminal), binary as
"[binary, 3 bytes] 00 ff 10". The ending and every diagnostic go to stderr.

\b
Exit status: 0 normal closure (1000 or 1001, clean); {EXIT_ABNORMAL} the open connection
ended otherwise; 2 usage error; when the connection could not be opened, the step
that failed as in check ({", ".join(f"{v} {k}" for k, v in EXIT_CODES.items() if k in DIAL_STEPS)});
{EXIT_INTERRUPTED} interrupted (Ctrl+C).
"""

PROMPT = "> "


def describe_binary(data: bytes, lang: str = "en") -> str:
    """A binary message as a person reads it, never mistaken for a text message."""
    words = ui(lang)["connect"]
    size = words["binary_one"] if len(data) == 1 else words["binary"].format(count=len(data))
    return f"{size} {data.hex(' ')}".rstrip()


class Usage(Exception):
    """A command typed wrong: shown as a one-line usage message, the session goes on."""


class Session:
    """One open connection driven by lines of input; prints what it receives."""

    def __init__(self, ws: WebSocketConnection, err: Console, *, terminal: bool, jsonl: bool, lang: str) -> None:
        self.ws = ws
        self.lang = lang
        self.words: dict[str, str] = ui(lang)["connect"]
        self.err = err
        self.terminal = terminal
        self.jsonl = jsonl
        self.started = time.monotonic()
        self.out_lock = threading.Lock()
        self.prompting = False  # True once input() shows the prompt: output must redraw it

    # -------------------------------------------------------------- output

    def emit(self, line: str) -> None:
        """One record on stdout, redrawing the prompt and the half-typed line on a terminal."""
        with self.out_lock:
            if self.prompting:
                sys.stdout.write("\r\x1b[K" + line + "\n" + PROMPT + _line_buffer())
            else:
                sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def note(self, text: str, style: str = "") -> None:
        """A diagnostic: stderr, never mixed with the data (the prompt redrawn after it)."""
        if self.jsonl and not self.terminal:
            return
        with self.out_lock:
            if self.prompting:
                sys.stdout.write("\r\x1b[K")
                sys.stdout.flush()
            self.err.print(text, style=style, markup=False, highlight=False, soft_wrap=True)
            if self.prompting:
                sys.stdout.write(PROMPT + _line_buffer())
                sys.stdout.flush()

    def record(self, **fields: Any) -> None:
        fields["t"] = round(time.monotonic() - self.started, 6)
        self.emit(json.dumps(fields, ensure_ascii=False))

    async def receive(self) -> None:
        try:
            async for message in self.ws:
                if self.jsonl:
                    if isinstance(message, str):
                        self.record(type="text", data=message)
                    else:
                        self.record(type="binary", size=len(message), hex=message.hex())
                elif isinstance(message, str):
                    self.emit(f"< {message}" if self.terminal else message)
                else:
                    shown = describe_binary(message, self.lang)
                    self.emit(f"< {shown}" if self.terminal else shown)
        except ConnectionClosed:
            pass

    # --------------------------------------------------------------- input

    async def handle(self, line: str) -> bool:
        """Act on one input line; False once the session should end."""
        if line.startswith("//"):
            await self.ws.send(line[1:])
            return True
        if not line.startswith("/"):
            await self.ws.send(line)
            return True
        command, _, rest = line.partition(" ")
        rest = rest.strip()
        if command == "/ping":
            rtt = await self.ws.ping(rest.encode() if rest else None)
            if self.jsonl:
                self.record(type="pong", rtt_ms=round(rtt * 1000, 3))
            else:
                self.note(self.words["pong"].format(ms=f"{rtt * 1000:.2f}"))
            return True
        if command == "/close":
            code_text, _, reason = rest.partition(" ")
            code = 1000
            if code_text:
                if not code_text.isdigit():
                    raise Usage(self.words["usage_close"].format(value=repr(code_text)))
                code = int(code_text)
            try:
                await self.ws.close(code, reason.strip())
            except InvalidCloseCode:
                raise Usage(self.words["bad_code"].format(code=code)) from None
            except ValueError:
                raise Usage(self.words["long_reason"]) from None
            return False
        if command == "/binary":
            try:
                data = bytes.fromhex(rest)
            except ValueError:
                raise Usage(self.words["usage_binary"].format(value=repr(rest))) from None
            await self.ws.send(data)
            return True
        raise Usage(self.words["unknown"].format(command=command, text=line[1:]))

    async def run_line(self, line: str) -> bool:
        try:
            return await self.handle(line)
        except Usage as exc:
            self.note(str(exc), "red")
            return True

    async def linger(self, receiver: asyncio.Task[None], wait: float) -> None:
        """After the last message, wait for replies for ``wait`` seconds (less if the peer closes)."""
        await asyncio.wait({receiver}, timeout=wait)


def _line_buffer() -> str:
    """What the person has typed so far, to redraw it under a message that just arrived."""
    readline = sys.modules.get("readline")
    return str(readline.get_line_buffer()) if readline is not None else ""


# Lines kept in the history file: enough for weeks of use, small enough to rewrite per line.
HISTORY_LENGTH = 1000


def history_file() -> Path | None:
    """Where the typed lines are kept between sessions; ``None`` when nowhere."""
    override = os.environ.get("WSDOCTOR_HISTFILE")
    if override is not None:
        return Path(override).expanduser() if override else None
    state = os.environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(state):  # the XDG spec: a relative path is invalid and ignored
        try:
            state = str(Path.home() / ".local" / "state")
        except RuntimeError:  # no home directory to be found
            return None
    return Path(state) / "wsdoctor" / "history"


def _load_history(readline: Any, path: Path | None) -> None:
    readline.set_history_length(HISTORY_LENGTH)
    if path is not None:
        with contextlib.suppress(OSError):
            readline.read_history_file(str(path))


def _save_history(readline: Any, path: Path | None) -> None:
    """Rewrite the history file; silently nothing when it cannot be written."""
    if path is None:
        return
    with contextlib.suppress(OSError):
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        readline.write_history_file(str(path))
        path.chmod(0o600)


def _read_lines(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None], terminal: bool) -> None:
    """Read input in a daemon thread: a blocked read must not keep the program alive.

    On a terminal ``input()`` goes through ``readline`` (imported here, on first use),
    which gives line editing and the history on the arrow keys. The history file is
    rewritten after each line: the thread is a daemon and gets no chance at exit.
    """
    try:
        if terminal:
            import readline  # importing it is also what enables editing in input()

            path = history_file()
            _load_history(readline, path)
            while True:
                line = input(PROMPT)
                _save_history(readline, path)
                loop.call_soon_threadsafe(queue.put_nowait, line)
        else:
            for line in sys.stdin:
                loop.call_soon_threadsafe(queue.put_nowait, line.rstrip("\r\n"))
    except (EOFError, OSError, ValueError):
        pass
    except RuntimeError:
        return  # the loop has already stopped
    with contextlib.suppress(RuntimeError):  # the loop may have stopped meanwhile
        loop.call_soon_threadsafe(queue.put_nowait, None)


async def session(
    url: str,
    err: Console,
    *,
    terminal: bool,
    jsonl: bool,
    execute: Sequence[str],
    wait: float,
    show_headers: bool,
    lang: str,
    **options: Any,
) -> Ending:
    """Dial, then run lines from --execute or stdin until the end; returns the ending."""
    ws = await ws_connect(url, **options)
    s = Session(ws, err, terminal=terminal, jsonl=jsonl, lang=lang)
    words = ui(lang)
    s.note(
        s.words["connected"].format(
            url=url,
            extensions=", ".join(ws.extensions) or words["none_feminine"],
            subprotocol=ws.subprotocol or words["none"],
        ),
        "green",
    )
    if show_headers:
        show_exchange(err, ws.request_headers, ws.response_headers)
    receiver = asyncio.create_task(s.receive())
    try:
        if execute:
            for line in execute:
                if ws.closed or not await s.run_line(line):
                    break
            else:
                await s.linger(receiver, wait)
        else:
            await interact(s, receiver, terminal, wait)
    except ConnectionClosed:
        pass
    finally:
        if not ws.closed:
            await ws.close(1000)
    ending = await ws.wait_closed()
    await receiver
    return ending


async def interact(s: Session, receiver: asyncio.Task[None], terminal: bool, wait: float) -> None:
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    threading.Thread(target=_read_lines, args=(asyncio.get_running_loop(), lines, terminal), daemon=True).start()
    s.prompting = terminal
    while not s.ws.closed:
        get = asyncio.create_task(lines.get())
        done, _ = await asyncio.wait({get, receiver}, return_when=asyncio.FIRST_COMPLETED)
        if get not in done:
            get.cancel()
            return
        line = get.result()
        if line is None:
            await s.linger(receiver, wait)
            return
        if not await s.run_line(line):
            return


def show_exchange(err: Console, request: Sequence[tuple[str, str]], response: Sequence[tuple[str, str]]) -> None:
    """The upgrade's headers both ways, credentials masked."""
    for arrow, headers in ((">", request), ("<", response)):
        for name, value in headers:
            err.print(f"{arrow} {name}: {redact_header(name, value)}", markup=False, highlight=False, soft_wrap=True)


@click.command(epilog=EPILOG)
@click.argument("url", callback=validate_url)
@dial_options
@click.option(
    "-x",
    "--execute",
    multiple=True,
    metavar="MSG",
    help="Send MSG (repeatable, in order; /ping, /close, /binary work too), wait for replies, exit.",
)
@click.option(
    "-w",
    "--wait",
    type=Seconds("the wait", allow_zero=True),
    default=1.0,
    show_default=True,
    help="Seconds to wait for replies after the last message (after --execute or the end of piped input).",
)
@MAX_SIZE_OPTION
@ORIGIN_OPTION
@click.option("--show-headers", is_flag=True, help="Print the upgrade's request and response headers (secrets masked).")
@click.option("--jsonl", is_flag=True, help="Print one JSON object per received message and one for the ending.")
@LANG_OPTION
def connect(
    url: str,
    dial: Dial,
    execute: tuple[str, ...],
    wait: float,
    max_size: int,
    origin: str | None,
    show_headers: bool,
    jsonl: bool,
    lang: str,
) -> None:
    """Open an interactive WebSocket session to URL, and explain how it ended."""
    err = make_console(stderr=True)
    terminal = not execute and sys.stdin.isatty() and sys.stdout.isatty()
    steps: list[Step] = []
    response_headers: list[tuple[str, str]] = []

    def trace(step: Step) -> None:
        steps.append(step)
        if step.name == "http":
            response_headers[:] = step.details.get("headers") or []

    try:
        ending = run(
            session(
                url,
                err,
                terminal=terminal,
                jsonl=jsonl,
                execute=execute,
                wait=wait,
                show_headers=show_headers,
                lang=lang,
                ssl=dial.ssl,
                extra_headers=dial.headers,
                subprotocols=dial.subprotocols,
                require_extensions=dial.require_extensions,
                open_timeout=dial.timeout,
                max_size=max_size,
                origin=origin,
                trace=trace,
                proxy=dial.proxy,
                max_redirects=dial.max_redirects,
            )
        )
    except WebSocketError as exc:
        if show_headers and response_headers:
            show_exchange(err, [], response_headers)
        # The same status as check's for the same failed dial.
        status = exit_code(CheckResult(url, steps=steps, ending=exc.ending)) if steps else EXIT_ABNORMAL
        if exc.ending is None:
            err.print(f"error: {exc}", markup=False)
        else:
            finish(err, exc.ending, lang, jsonl, always=True)
        raise SystemExit(status) from None
    except KeyboardInterrupt:
        raise SystemExit(EXIT_INTERRUPTED) from None
    finish(err, ending, lang, jsonl, always=terminal)
    raise SystemExit(0 if ending.ok else EXIT_ABNORMAL)


def finish(err: Console, ending: Ending, lang: str, jsonl: bool, *, always: bool) -> None:
    """Report the ending: a JSON line on stdout with --jsonl, explained on stderr otherwise."""
    if jsonl:
        click.echo(json.dumps({"type": "ending", "ok": ending.ok, **ending.to_dict(lang)}, ensure_ascii=False))
    elif always or not ending.ok:
        render_ending(err, ending, lang)
