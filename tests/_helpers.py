"""The ``wsdoctor`` command as a real child process, for the tests that need the command, not the library.

``run_wsdoctor`` runs one command to its end under a time limit. ``serve_process`` and
``serve_subprocess`` start ``wsdoctor serve`` on a free port (``--port 0``), learn its URL from the
banner, and never leave a server behind when an assertion fails halfway: on leaving, a server that
is still running gets Ctrl-C (SIGINT), the way a person stops it, and is killed if it has not
stopped after a while. A test that stops the server itself (to check the exit status or the last
lines) does so inside the block; the cleanup then has nothing to do.

``upgraded`` opens a raw loopback socket past the opening handshake, for tests that write frames
byte by byte, and ``served_raw`` adds the server around it and hands over the server's side of
the connection; ``on_both_loops`` runs a scenario on asyncio's loop and on uvloop.
"""

from __future__ import annotations

import asyncio
import importlib.util
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import uvloop

import wsdoctor
from wsdoctor import WebSocketConnection

WSDOCTOR = [sys.executable, "-m", "wsdoctor"]
SERVE = [*WSDOCTOR, "serve", "--port", "0"]


async def run_wsdoctor(
    *args: str,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    merge_stderr: bool = False,
    timeout: float = 60,
) -> tuple[int, str, str]:
    """``wsdoctor ARGS`` to its end: (exit status, standard output, standard error) as text.

    ``stdin`` is piped in whole (None: nothing, /dev/null); ``env`` is the child's whole environment
    (None: this process's); ``merge_stderr`` sends standard error into standard output, in order,
    and leaves the third value empty. A command still running after ``timeout`` seconds fails the test.
    """
    proc = await asyncio.create_subprocess_exec(
        *WSDOCTOR,
        *args,
        stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT if merge_stderr else asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), (err or b"").decode()


@dataclass
class ServeProcess:
    """A running ``wsdoctor serve``: the process, its first line and the URL that line gives."""

    proc: subprocess.Popen[str]
    banner: str
    url: str


def listening_url(banner: str) -> str:
    """The URL in the banner line ``... listening on ws://host:port/ (Ctrl+C to stop)``."""
    assert "listening on " in banner, banner
    return banner.split("listening on ", 1)[1].split()[0]


@contextmanager
def serve_process(
    *args: str,
    env: Mapping[str, str] | None = None,
    stderr: int | None = None,
    preexec_fn: Callable[[], object] | None = None,
) -> Iterator[ServeProcess]:
    """``wsdoctor serve --port 0 ARGS`` with its standard output piped as text; yields once the banner is read.

    ``env`` is the child's whole environment (None: this process's); ``stderr`` and ``preexec_fn`` are
    passed to ``Popen`` as they are (``subprocess.STDOUT`` to read the warnings in line with the log).
    """
    proc = subprocess.Popen(
        [*SERVE, *args], stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, preexec_fn=preexec_fn
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        yield ServeProcess(proc, banner, listening_url(banner))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@asynccontextmanager
async def wsdoctor_subprocess(
    *args: str,
    stdin: int | None = None,
    stdout: int | None = asyncio.subprocess.PIPE,
    stderr: int | None = None,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``wsdoctor ARGS`` under asyncio, for a test that talks to it or signals it while it runs.

    ``stdin``, ``stdout`` and ``stderr`` are passed as they are (standard output is piped, as bytes,
    unless told otherwise); ``env`` is the child's whole environment (None: this process's).
    """
    proc = await asyncio.create_subprocess_exec(*WSDOCTOR, *args, stdin=stdin, stdout=stdout, stderr=stderr, env=env)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def serve_subprocess(
    *args: str, env: Mapping[str, str] | None = None, stderr: int | None = None
) -> AbstractAsyncContextManager[asyncio.subprocess.Process]:
    """``wsdoctor serve --port 0 ARGS`` under ``wsdoctor_subprocess``; the caller reads its output.

    Unlike ``serve_process`` it reads nothing first: the lab prints several lines before its URL, and
    each test knows which line it waits for.
    """
    return wsdoctor_subprocess("serve", "--port", "0", *args, stderr=stderr, env=env)


async def echo(ws: WebSocketConnection) -> None:
    """The plainest server handler: every message straight back, until the client closes."""
    async for message in ws:
        await ws.send(message)


def sized(n: int) -> bytes:
    """A payload of ``n`` bytes that its length makes recognisable (no two sizes share a byte)."""
    return bytes([n % 251]) * n


async def send_sized(ws: WebSocketConnection, sizes: list[int], api: str) -> None:
    """Send ``sized(n)`` for each size, with ``send()`` or, for ``api="send_now"``, ``send_now()``."""
    for n in sizes:
        if api == "send":
            await ws.send(sized(n))
        else:
            ws.send_now(sized(n))


def ending_catcher() -> tuple[asyncio.Future[wsdoctor.Ending], Callable[[WebSocketConnection], Awaitable[None]]]:
    """A server handler that waits for a message that never comes, and the future that gets its ending.

    For the tests of what a server sees when the client closes: the handler is still in ``recv()``
    when the Close frame arrives, so the ending is the one the application would catch.
    """
    seen: asyncio.Future[wsdoctor.Ending] = asyncio.get_running_loop().create_future()

    async def handler(ws: WebSocketConnection) -> None:
        try:
            await ws.recv()
        except wsdoctor.ConnectionClosed as exc:
            seen.set_result(exc.ending)

    return seen, handler


@asynccontextmanager
async def answering(head: bytes, body: bytes = b"", *, close: bool = True) -> AsyncIterator[str]:
    """A raw HTTP server on loopback that answers every request with ``head`` and ``body``; yields its ws:// URL.

    For the answers a real WebSocket server never gives (401, 502, a redirect, a huge body): the
    client under test sees them byte for byte. ``close=False`` holds the connection open after
    the answer, as a server that keeps the socket alive does.
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(head + body)
            await writer.drain()
            if not close:
                await reader.read()  # hold the connection open until the client gives up
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/chat"


def load_file(path: Path, name: str) -> ModuleType:
    """The Python file at ``path`` imported as module ``name``: for examples and benchmarks, which are not packages."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    """A loopback port free right now, for a server a test starts a moment later."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


@asynccontextmanager
async def upgraded(port: int, frames: bytes = b"") -> AsyncIterator[tuple[socket.socket, bytes]]:
    """A raw socket past the opening handshake (``frames`` sent with the request), and what
    arrived after the 101's head; closed on leaving."""
    loop = asyncio.get_running_loop()
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)
    try:
        await loop.sock_sendall(sock, UPGRADE + frames)
        data = b""
        while b"\r\n\r\n" not in data:
            data += await loop.sock_recv(sock, 65536)
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101")
        yield sock, rest
    finally:
        sock.close()


def on_both_loops(scenario: Callable[[], Awaitable[None]]) -> None:
    """Run a scenario on the stock asyncio loop and on uvloop, whose transports differ."""
    asyncio.run(scenario())
    uvloop.run(scenario())


@asynccontextmanager
async def served_raw(
    handler: Callable[[WebSocketConnection], Awaitable[object]] | None = None,
) -> AsyncIterator[tuple[WebSocketConnection, socket.socket, bytes]]:
    """A server on loopback (no compression), a raw socket past its opening handshake with what
    arrived after the 101, and the server's side of that connection; ``handler`` runs on it
    (by default it waits for the end). Bounded to 30 s; closed on leaving."""
    opened: asyncio.Future[WebSocketConnection] = asyncio.get_running_loop().create_future()

    async def handle(ws: WebSocketConnection) -> None:
        opened.set_result(ws)
        await (ws.wait_closed() if handler is None else handler(ws))

    async with asyncio.timeout(30), wsdoctor.serve(handle, "127.0.0.1", 0, compression=None) as server:
        async with upgraded(server.port_number) as (sock, rest):
            yield await opened, sock, rest
