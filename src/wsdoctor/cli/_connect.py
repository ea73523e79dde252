"""``wsdoctor connect URL``: an interactive client, like wscat, that explains the ending."""

from __future__ import annotations

import asyncio
import sys
import threading
import time

import click
from rich.console import Console

from wsdoctor.aio._run import run
from wsdoctor.aio.client import connect as ws_connect
from wsdoctor.aio.connection import WebSocketConnection
from wsdoctor.cli._options import dial_options, max_redirects, parse_headers, proxy_setting, ssl_for, validate_url
from wsdoctor.cli._render import render_ending
from wsdoctor.protocol._ending import Ending
from wsdoctor.protocol._errors import ConnectionClosed, WebSocketError

EPILOG = """\b
Examples:
  wsdoctor connect ws://127.0.0.1:8765/
  echo hello | wsdoctor connect ws://127.0.0.1:8765/

\b
Typed lines are sent as text messages. Commands:
  /ping                 send a Ping and print the round-trip time
  /close [CODE [REASON]] close the connection (default 1000)
  /binary HEX           send a binary message, e.g. /binary 00ff10
"""


class Session:
    def __init__(self, ws: WebSocketConnection, console: Console, interactive: bool) -> None:
        self.ws = ws
        self.console = console
        self.interactive = interactive
        self.last_activity = time.monotonic()

    async def settle(self, quiet: float = 0.5, limit: float = 10.0) -> None:
        """At end of input, give replies in flight time to arrive before closing."""
        start = time.monotonic()
        while not self.ws.closed and time.monotonic() - start < limit:
            if time.monotonic() - self.last_activity >= quiet:
                return
            await asyncio.sleep(0.05)

    def show(self, text: str, style: str = "") -> None:
        if self.interactive:
            stamp = time.strftime("%H:%M:%S")
            self.console.print(f"[dim]{stamp}[/dim] {text}", style=style, highlight=False, markup=True)
        else:
            self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    async def receive(self) -> None:
        try:
            async for message in self.ws:
                self.last_activity = time.monotonic()
                if isinstance(message, str):
                    self.show(f"< {message}" if self.interactive else message)
                else:
                    self.show(f"< (binary {len(message)} bytes) {message.hex()}" if self.interactive else message.hex())
        except ConnectionClosed:
            pass

    async def handle(self, line: str) -> bool:
        """Act on one input line; False once the session should end."""
        if line.startswith("/ping"):
            rtt = await self.ws.ping()
            self.show(f"pong in {rtt * 1000:.2f} ms")
        elif line.startswith("/close"):
            parts = line.split(maxsplit=2)
            code = int(parts[1]) if len(parts) > 1 else 1000
            reason = parts[2] if len(parts) > 2 else ""
            await self.ws.close(code, reason)
            return False
        elif line.startswith("/binary"):
            hexdata = line[len("/binary") :].strip().replace(" ", "")
            await self.ws.send(bytes.fromhex(hexdata))
        else:
            await self.ws.send(line)
        return True


def _read_lines(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None]) -> None:
    """Read stdin in a daemon thread: a blocked read must not keep the program alive."""
    for line in sys.stdin:
        loop.call_soon_threadsafe(queue.put_nowait, line.rstrip("\n"))
    loop.call_soon_threadsafe(queue.put_nowait, None)


async def session(
    url: str,
    console: Console,
    interactive: bool,
    **options: object,
) -> Ending:
    ws = await ws_connect(url, **options)  # type: ignore[arg-type]
    s = Session(ws, console, interactive)
    if interactive:
        ext = ", ".join(ws.extensions) or "none"
        s.show(f"connected to {url} (extensions: {ext}; subprotocol: {ws.subprotocol or 'none'})", "green")
    receiver = asyncio.create_task(s.receive())
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    threading.Thread(target=_read_lines, args=(asyncio.get_running_loop(), lines), daemon=True).start()
    try:
        while not ws.closed:
            get = asyncio.create_task(lines.get())
            done, _ = await asyncio.wait({get, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if get not in done:
                get.cancel()
                break
            line = get.result()
            if line is None:
                await s.settle()
                await ws.close(1000)
                break
            s.last_activity = time.monotonic()
            try:
                if not await s.handle(line):
                    break
            except ValueError as exc:
                s.show(f"error: {exc}", "red")
            except ConnectionClosed:
                break
    finally:
        if not ws.closed:
            await ws.close()
    ending = await ws.wait_closed()
    await receiver
    return ending


@click.command(epilog=EPILOG)
@click.argument("url", callback=validate_url)
@dial_options
@click.option("--lang", type=click.Choice(["en", "es"]), default="en", show_default=True)
def connect(
    url: str,
    ca: str | None,
    insecure: bool,
    cert: str | None,
    key: str | None,
    headers: tuple[str, ...],
    subprotocols: tuple[str, ...],
    require_extensions: tuple[str, ...],
    timeout: float,
    lang: str,
) -> None:
    """Open an interactive WebSocket session to URL, and explain how it ended."""
    console = Console(highlight=False)
    interactive = sys.stdin.isatty()
    try:
        ending = run(
            session(
                url,
                console,
                interactive,
                ssl=ssl_for(url, ca, insecure, cert, key),
                extra_headers=parse_headers(headers),
                subprotocols=subprotocols,
                require_extensions=require_extensions,
                open_timeout=timeout,
                proxy=proxy_setting(),
                max_redirects=max_redirects(),
            )
        )
    except WebSocketError as exc:
        if exc.ending is not None:
            render_ending(console, exc.ending, lang)
        else:
            console.print(f"error: {exc}")
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    if interactive or not ending.ok:
        render_ending(console, ending, lang)
    raise SystemExit(0 if ending.ok else 1)
