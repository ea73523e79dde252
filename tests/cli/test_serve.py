"""``wsdoctor serve`` logs: one line per connection, HTTP answers by status, explanations when abnormal."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
import signal
from collections.abc import Iterator

from rich.console import Console

import wsdoctor
from _helpers import serve_process
from wsdoctor import WebSocketConnection
from wsdoctor.cli._serve import ConnectionLog, echo
from wsdoctor.protocol._handshake import Request

HOST = "127.0.0.1"
LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d 127\.0\.0\.1:\d+ (?P<path>\S+) (?P<duration>\d+\.\d\d) s, "
    r"messages in (?P<received>\d+), out (?P<sent>\d+): (?P<code>\d+) (?P<name>.+) \((?P<cause>[a-z_.]+)\)$"
)


def health(ws: WebSocketConnection, request: Request) -> tuple[int, str] | None:
    if request.target == "/health":
        return 200, "ok\n"
    if request.target == "/private":
        return 403, "no\n"
    return None


async def http_get(port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    answer = await asyncio.wait_for(reader.read(1000), 10)
    writer.close()
    return answer


@contextlib.contextmanager
def connection_log(name: str, verbose: bool) -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose records go through ConnectionLog into a string, as `wsdoctor serve` prints them."""
    out = io.StringIO()
    logger = logging.getLogger(f"tests.serve.{name}.{verbose}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = ConnectionLog(Console(file=out, highlight=False, soft_wrap=True), "en", verbose)
    logger.addHandler(handler)
    try:
        yield logger, out
    finally:
        logger.removeHandler(handler)


async def served(verbose: bool) -> str:
    """Run real connections against a real server whose log goes through ConnectionLog."""
    with connection_log("served", verbose) as (logger, out):
        async with wsdoctor.serve(echo, HOST, 0, process_request=health, logger=logger) as server:
            async with wsdoctor.connect(f"ws://{HOST}:{server.port_number}/chat?room=1") as ws:
                for text in ("a", "b", "c"):
                    await ws.send(text)
                    assert await ws.recv() == text
            assert (await http_get(server.port_number, "/health")).startswith(b"HTTP/1.1 200")
            assert (await http_get(server.port_number, "/private")).startswith(b"HTTP/1.1 403")
            ws = await wsdoctor.connect(f"ws://{HOST}:{server.port_number}/bad")
            await ws.close(1011, "client broke")
            for _ in range(100):  # the server logs each ending as it happens; wait for the fourth
                if out.getvalue().count("127.0.0.1:") >= 4:
                    break
                await asyncio.sleep(0.05)
    return out.getvalue()


async def test_one_line_per_normal_close_and_http_by_status() -> None:
    text = await served(verbose=False)
    lines = text.splitlines()
    normal = [m for m in map(LINE.match, lines) if m and m["path"] == "/chat?room=1"]
    assert len(normal) == 1
    assert (normal[0]["received"], normal[0]["sent"], normal[0]["code"]) == ("3", "3", "1000")
    assert normal[0]["cause"] == "closed.by_peer"
    assert any(re.search(r" /health HTTP 200 OK$", line) for line in lines)
    assert any(re.search(r" /private HTTP 403 Forbidden \(handshake\.rejected\)$", line) for line in lines)
    assert "1006" not in text.split("/health", 1)[1].split("\n", 1)[0]
    # Explanations only for what went wrong: the 403 and the 1011, not the 1000 or the 200.
    assert text.count("How to fix it") == 2
    bad = next(m for m in map(LINE.match, lines) if m and m["path"] == "/bad")
    assert bad["code"] == "1011" and "client broke" in text


async def test_verbose_explains_every_ending() -> None:
    text = await served(verbose=True)
    assert text.count("How to fix it") == 3  # the 200 answer is not a connection that ended badly
    assert "Nothing to fix" in text or "nothing to fix" in text.lower()


async def probed(verbose: bool) -> str:
    """A TCP connection that closes before sending a request, as a load balancer's health check does."""
    with connection_log("probe", verbose) as (logger, out):
        async with wsdoctor.serve(echo, HOST, 0, logger=logger) as server:
            _, writer = await asyncio.open_connection(HOST, server.port_number)
            writer.close()
            await writer.wait_closed()
            for _ in range(100):
                if "tcp.closed" in out.getvalue():
                    break
                await asyncio.sleep(0.05)
    return out.getvalue()


async def test_a_tcp_probe_is_one_line_unless_verbose() -> None:
    text = await probed(verbose=False)
    assert len(text.splitlines()) == 1 and "(tcp.closed)" in text
    assert "How to fix it" not in text
    assert "How to fix it" in await probed(verbose=True)


async def test_counters_count_messages_both_ways() -> None:
    seen: list[tuple[int, int]] = []

    async def handler(ws: WebSocketConnection) -> None:
        with contextlib.suppress(wsdoctor.ConnectionClosed):
            async for message in ws:
                await ws.send(message)
                await ws.send(message)
        seen.append((ws.messages_in, ws.messages_out))

    async with wsdoctor.serve(handler, HOST, 0) as server:
        async with wsdoctor.connect(f"ws://{HOST}:{server.port_number}/") as ws:
            await ws.send("x")
            await ws.send_fragments(["y", "z"])
            for _ in range(4):
                await ws.recv()
            assert (ws.messages_in, ws.messages_out) == (4, 2)
        await asyncio.sleep(0.1)
    assert seen == [(2, 4)]


def test_serve_command_prints_one_line_for_a_normal_close() -> None:
    with serve_process("--lang", "en") as server:

        async def talk() -> None:
            async with wsdoctor.connect(server.url + "echo") as ws:
                await ws.send("x")
                assert await ws.recv() == "x"

        asyncio.run(talk())
        server.proc.send_signal(signal.SIGTERM)  # a graceful stop: exit 0
        out, _ = server.proc.communicate(timeout=30)
    assert server.proc.returncode == 0
    lines = out.splitlines()
    logged = [m for m in map(LINE.match, lines) if m]
    assert len(logged) == 1 and logged[0]["path"] == "/echo" and logged[0]["code"] == "1000"
    rest = [line for line in lines if not line.startswith("file descriptors: ")]  # told once at start
    assert rest == [logged[0].string, "shutting down: closing every connection with 1001 (Going Away)"]
