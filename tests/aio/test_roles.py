"""Who reports an ending, and who started it, decide how it is explained.

A keepalive timeout found by this side, a 1011 sent by the peer, and the log lines of
a server all speak to a different reader; each is produced here by real endpoints
on loopback and read in both languages.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

import wsdoctor
from wsdoctor import ConnectionClosedError, WebSocketConnection
from wsdoctor.diagnose.certs import Pki

HOST = "127.0.0.1"


def url(server: wsdoctor.Server) -> str:
    return f"ws://{HOST}:{server.port_number}/"


@pytest.fixture
def server_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, "wsdoctor.server")
    return caplog


async def idle(ws: WebSocketConnection) -> None:
    await ws.wait_closed()


def logged(caplog: pytest.LogCaptureFixture) -> list[wsdoctor.Ending]:
    return [r.ending for r in caplog.records if hasattr(r, "ending")]


async def test_client_keepalive_timeout_says_this_side_found_the_server_unresponsive() -> None:
    done = asyncio.Event()

    async def deaf(ws: WebSocketConnection) -> None:
        assert ws.transport is not None
        ws.transport.pause_reading()  # alive, but answers nothing: no Pong comes back
        await done.wait()
        ws.transport.abort()

    async with (
        asyncio.timeout(10),
        wsdoctor.serve(deaf, HOST, 0, ping_interval=None, close_timeout=0.5) as server,
    ):
        ws = await wsdoctor.connect(url(server), ping_interval=0.2, ping_timeout=0.3, close_timeout=0.5)
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        done.set()
    ending = info.value.ending
    assert (ending.code, ending.cause, ending.initiator, ending.role) == (1011, "keepalive.timeout", "local", "client")
    meaning = ending.explanation().meaning
    assert meaning.startswith("This side ended the connection") and "The server hit" not in meaning
    assert ending.cause_text().summary.startswith("this client sent a keepalive Ping")
    assert "the server, or the network path to it, stopped responding" in str(ending)
    assert "ping_timeout" in ending.fix and "server's load" in ending.fix
    es = ending.cause_text("es").summary
    assert es.startswith("este cliente envió un Ping de keepalive")
    assert ending.explanation("es").meaning.startswith("Este lado terminó la conexión")
    assert ending.to_dict()["role"] == "client" and ending.to_dict()["explanation"] == meaning


async def test_1011_from_the_server_says_the_server_failed() -> None:
    async def failing(ws: WebSocketConnection) -> None:
        await ws.close(1011, "database unavailable")

    async with asyncio.timeout(10), wsdoctor.serve(failing, HOST, 0) as server:
        ws = await wsdoctor.connect(url(server))
        ending = await ws.wait_closed()
    assert (ending.code, ending.cause, ending.initiator, ending.role) == (1011, "closed.by_peer", "remote", "client")
    assert ending.explanation().meaning.startswith("The server hit an unexpected condition")
    assert ending.fix.startswith("The server failed: check the server's logs")
    assert ending.cause_text().summary == "the server closed the connection."
    assert ending.fix_text("es").startswith("El servidor falló")


async def test_1011_from_a_handler_error_reads_right_on_both_sides(server_log: pytest.LogCaptureFixture) -> None:
    async def broken(ws: WebSocketConnection) -> None:
        await ws.recv()
        raise RuntimeError("boom")

    async with asyncio.timeout(10), wsdoctor.serve(broken, HOST, 0) as server:
        ws = await wsdoctor.connect(url(server))
        await ws.send("x")
        client_ending = await ws.wait_closed()
        await asyncio.sleep(0.1)
    assert (client_ending.code, client_ending.initiator, client_ending.role) == (1011, "remote", "client")
    assert "The server failed" in client_ending.fix
    server_ending = next(e for e in logged(server_log) if e.cause == "handler.error")
    assert (server_ending.initiator, server_ending.role) == ("local", "server")
    assert server_ending.cause_text().summary.startswith("this server's handler raised an exception")
    assert server_ending.fix == "Read the stack trace logged just before this line and fix the handler."
    assert server_ending.explanation().meaning.startswith("This side ended the connection")


async def test_1011_from_a_client_says_the_client_failed(server_log: pytest.LogCaptureFixture) -> None:
    async def wait(ws: WebSocketConnection) -> None:
        await ws.wait_closed()

    async with asyncio.timeout(10), wsdoctor.serve(wait, HOST, 0) as server:
        async with wsdoctor.connect(url(server)) as ws:
            await ws.close(1011, "client crashed")
        await asyncio.sleep(0.1)
    ending = next(e for e in logged(server_log) if e.code == 1011)
    assert (ending.initiator, ending.role) == ("remote", "server")
    assert ending.explanation().meaning.startswith("The client hit an unexpected condition")
    assert ending.fix.startswith("The client failed")


async def test_server_log_for_a_plain_client_on_the_tls_port(
    tmp_path: Path, server_log: pytest.LogCaptureFixture
) -> None:
    pki = Pki(tmp_path)
    async with asyncio.timeout(15), wsdoctor.serve(idle, HOST, 0, ssl=pki.healthy([HOST])) as server:
        with pytest.raises(wsdoctor.DialError):
            await wsdoctor.connect(url(server), open_timeout=3)
        await asyncio.sleep(0.2)
    ending = next(e for e in logged(server_log) if e.cause == "tls.not_tls")
    assert ending.role == "server"
    assert "use ws:// for this port" not in ending.fix.lower()
    assert "the client must use wss://" in ending.fix
    assert ending.cause_text().summary.startswith("the client did not speak TLS on this TLS port")
    assert "el cliente debe usar wss://" in ending.fix_text("es")


async def test_server_log_for_a_slow_client_is_not_raise_the_timeout(server_log: pytest.LogCaptureFixture) -> None:
    """A client that sends its request head too slowly: slowloris advice, not 'raise the open timeout'."""

    async def never(ws: WebSocketConnection) -> None:  # pragma: no cover - the handshake never completes
        await ws.wait_closed()

    async with asyncio.timeout(10), wsdoctor.serve(never, HOST, 0, open_timeout=0.3) as server:
        reader, writer = await asyncio.open_connection(HOST, server.port_number)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and nothing more
        answer = await reader.read()
        writer.close()
        await asyncio.sleep(0.1)
    assert answer.startswith(b"HTTP/1.1 408")
    ending = next(e for e in logged(server_log) if e.cause == "handshake.timeout")
    assert (ending.role, ending.initiator) == ("server", "remote")
    assert "raise the open timeout if it is slow" not in ending.fix
    assert "slowloris" in ending.fix and "Do not raise the open timeout" in ending.fix
    assert ending.cause_text().summary == "the client did not complete its opening handshake in time."
    assert "slowloris" in ending.fix_text("es")


async def test_client_handshake_timeout_keeps_client_advice() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        await asyncio.sleep(3)
        writer.close()

    server = await asyncio.start_server(silent, HOST, 0)
    async with server, asyncio.timeout(10):
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(wsdoctor.HandshakeError) as info:
            await wsdoctor.connect(f"ws://{HOST}:{port}/", open_timeout=0.3)
    ending = info.value.ending
    assert (ending.cause, ending.role) == ("handshake.timeout", "client")
    assert "raise the open timeout" in ending.fix
    assert ending.cause_text().summary == "the server did not answer the opening handshake in time."
