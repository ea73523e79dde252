"""A dial that failed before the connection opened is explained as one, not as a lost connection.

1006's usual text ("the connection was lost without a Close frame", "enable keepalive
pings") fits a connection that opened and then dropped. A refused TCP connection, an
HTTP 403 to the upgrade or a bad argument never opened anything: their endings are
marked ``opened=False`` and the code's texts come from the ``unopened`` variant, in
both languages, in the library, in ``check`` and in its JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

import wsdoctor
from _helpers import free_port
from wsdoctor import WebSocketConnection
from wsdoctor.knowledge import explain

HOST = "127.0.0.1"
NEVER_OPENED = "never opened"
NUNCA = "nunca llegó a abrirse"


@asynccontextmanager
async def forbidding() -> AsyncIterator[str]:
    """A raw HTTP server that answers every upgrade with 403; yields its ws:// URL."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, HOST, 0)
    async with server:
        yield f"ws://{HOST}:{server.sockets[0].getsockname()[1]}/"


def assert_unopened(ending: wsdoctor.Ending) -> None:
    assert ending.code == 1006 and not ending.opened
    assert NEVER_OPENED in ending.explanation("en").meaning
    assert NUNCA in ending.explanation("es").meaning
    assert "lost without a Close frame" not in ending.explanation("en").meaning
    assert "keepalive" not in ending.explanation("en").when
    assert ending.to_dict()["opened"] is False


def test_registry_has_the_variant_in_both_languages() -> None:
    for lang, words in (("en", NEVER_OPENED), ("es", NUNCA)):
        plain, unopened = explain(1006, lang), explain(1006, lang, variant="unopened")
        assert words in unopened.meaning and words not in plain.meaning
        assert unopened.when != plain.when and unopened.fix != plain.fix
    # A code without the variant keeps its own texts.
    assert explain(1015, variant="unopened") == explain(1015)


async def test_refused_dial() -> None:
    with pytest.raises(wsdoctor.DialError) as info:
        await wsdoctor.connect(f"ws://{HOST}:{free_port()}/", open_timeout=5)
    assert info.value.ending.cause == "tcp.refused"
    assert_unopened(info.value.ending)


async def test_http_refusal_of_the_upgrade() -> None:
    async with asyncio.timeout(10), forbidding() as url:
        with pytest.raises(wsdoctor.HandshakeError) as info:
            await wsdoctor.connect(url, open_timeout=5)
    assert info.value.ending.cause == "http.forbidden"
    assert_unopened(info.value.ending)


async def test_reconnecting_loop_raises_the_same_mark() -> None:
    async with asyncio.timeout(10), forbidding() as url:
        with pytest.raises(wsdoctor.HandshakeError) as info:
            async for _ in wsdoctor.connect(url, open_timeout=5):
                pass
    assert_unopened(info.value.ending)


def test_bad_argument() -> None:
    with pytest.raises(wsdoctor.InvalidURI) as info:
        wsdoctor.connect("ws://127.0.0.1:8765/path with space")
    assert_unopened(info.value.ending)


async def test_a_connection_that_opened_keeps_the_lost_connection_text() -> None:
    """A connection the server drops after the upgrade did open: 1006 means what it always meant."""

    async def drop(ws: WebSocketConnection) -> None:
        assert ws.transport is not None
        ws.transport.abort()

    async with asyncio.timeout(10), wsdoctor.serve(drop, HOST, 0) as server:
        async with wsdoctor.connect(f"ws://{HOST}:{server.port}/", open_timeout=5) as ws:
            ending = await ws.wait_closed()
    assert ending.code == 1006 and ending.opened
    assert "lost without a Close frame" in ending.explanation().meaning
    assert ending.to_dict()["opened"] is True


async def test_check_shows_the_unopened_text() -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wsdoctor",
        "check",
        f"ws://{HOST}:{port}/",
        "--json",
        "--lang",
        "es",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 4, err
    ending = json.loads(out)["ending"]
    assert ending["cause"] == "tcp.refused" and NUNCA in ending["explanation"]


async def test_server_that_hangs_up_on_the_upgrade() -> None:
    """tcp.closed during the dial: not "enable keepalive pings", which cannot help here."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, HOST, 0)
    async with server, asyncio.timeout(10):
        with pytest.raises(wsdoctor.DialError) as info:
            await wsdoctor.connect(f"ws://{HOST}:{server.sockets[0].getsockname()[1]}/", open_timeout=5)
    ending = info.value.ending
    assert ending.cause == "tcp.closed" and ending.role == "client"
    assert_unopened(ending)
    assert "before answering the upgrade request" in ending.cause_text().summary
    assert "keepalive" not in ending.fix and "keepalive" not in ending.cause_text("es").fix
    assert "nunca llegó a abrirse" in ending.cause_text("es").summary


async def test_server_logs_a_tcp_probe_as_a_connection_that_never_opened() -> None:
    """A health check that connects and leaves is told apart from a client that vanished mid-session."""
    records: list[logging.LogRecord] = []
    logger = logging.getLogger("wsdoctor.test.unopened")
    logger.propagate = False
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        async with asyncio.timeout(10), wsdoctor.serve(echo, HOST, 0, logger=logger) as server:
            _, writer = await asyncio.open_connection(HOST, server.port)
            writer.close()
            while not any(hasattr(r, "ending") for r in records):
                await asyncio.sleep(0.01)
    finally:
        logger.removeHandler(handler)
    ending = next(r.ending for r in records if hasattr(r, "ending"))
    assert ending.role == "server" and ending.cause in ("tcp.closed", "tcp.reset")
    assert_unopened(ending)
    assert "health check" in ending.fix and "ping_interval" not in ending.fix
    assert "never opened" in ending.cause_text().summary


async def echo(ws: WebSocketConnection) -> None:
    async for message in ws:
        await ws.send(message)
