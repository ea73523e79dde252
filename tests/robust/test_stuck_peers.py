"""A peer that stops reading, or vanishes, always ends: the ending is recorded and logged.

Each test uses short intervals and a generous outer timeout; what is asserted is the
ending and that it arrives, never how fast.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

import wsdoctor
from wsdoctor import WebSocketConnection
from wsdoctor.protocol._handshake import accept_key

from ._peers import client_frame, raw_upgrade

FAST = {"ping_interval": 0.3, "ping_timeout": 0.3, "close_timeout": 0.5}


def endings(caplog: pytest.LogCaptureFixture) -> list[wsdoctor.Ending]:
    return [r.ending for r in caplog.records if hasattr(r, "ending")]  # type: ignore[attr-defined]


async def flood(ws: WebSocketConnection) -> None:
    chunk = b"x" * 65536
    while True:
        await ws.send(chunk)


async def wait_for_ending(caplog: pytest.LogCaptureFixture, server: wsdoctor.Server) -> wsdoctor.Ending:
    while not endings(caplog) or server.connections:
        await asyncio.sleep(0.05)
    return endings(caplog)[0]


async def test_server_aborts_a_client_that_stopped_reading(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "wsdoctor.server")
    async with asyncio.timeout(20), wsdoctor.serve(flood, "127.0.0.1", 0, compression=None, **FAST) as server:
        sock, head = await raw_upgrade(server.port_number, rcvbuf=4096)
        with sock:
            assert head.startswith(b"HTTP/1.1 101")
            ending = await wait_for_ending(caplog, server)
    assert (ending.code, ending.cause, ending.initiator) == (1011, "write.stalled", "local")
    assert "bytes were still waiting to be sent" in ending.detail
    assert "stopped reading" in ending.cause_text().summary


async def test_violation_from_a_peer_that_stopped_reading_ends(caplog: pytest.LogCaptureFixture) -> None:
    """The peer still writes (a bad frame) but never reads: the close cannot flush, the timer aborts."""
    caplog.set_level(logging.INFO, "wsdoctor.server")
    opts = {**FAST, "ping_interval": None}
    async with asyncio.timeout(20), wsdoctor.serve(flood, "127.0.0.1", 0, compression=None, **opts) as server:
        sock, _ = await raw_upgrade(server.port_number, rcvbuf=4096)
        with sock:
            await asyncio.sleep(0.3)  # let the server's writes back up
            await asyncio.get_running_loop().sock_sendall(sock, client_frame(0x3, b"reserved opcode"))
            ending = await wait_for_ending(caplog, server)
    assert (ending.code, ending.cause) == (1002, "protocol.bad_opcode")


async def test_silent_peer_ends_with_keepalive_timeout(caplog: pytest.LogCaptureFixture) -> None:
    """A peer that vanished without a FIN: it neither reads nor writes, nothing is queued."""
    caplog.set_level(logging.INFO, "wsdoctor.server")

    async def idle(ws: WebSocketConnection) -> None:
        await ws.wait_closed()

    async with asyncio.timeout(20), wsdoctor.serve(idle, "127.0.0.1", 0, **FAST) as server:
        sock, _ = await raw_upgrade(server.port_number)
        with sock:
            ending = await wait_for_ending(caplog, server)
    assert (ending.code, ending.cause) == (1011, "keepalive.timeout")


async def test_client_aborts_a_server_that_stopped_reading() -> None:
    loop = asyncio.get_running_loop()
    accepted: list[socket.socket] = []

    async def accept_and_ignore(listener: socket.socket) -> None:
        conn, _ = await loop.sock_accept(listener)
        accepted.append(conn)
        request = b""
        while b"\r\n\r\n" not in request:
            request += await loop.sock_recv(conn, 1)
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key")
        )
        await loop.sock_sendall(
            conn,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_key(key.decode()).encode() + b"\r\n\r\n",
        )
        # ...and never read again.

    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        listener.setblocking(False)
        async with asyncio.timeout(20):
            server_task = loop.create_task(accept_and_ignore(listener))
            ws = await wsdoctor.connect(f"ws://127.0.0.1:{listener.getsockname()[1]}/", compression=None, **FAST)
            await server_task
            try:
                with pytest.raises(wsdoctor.ConnectionClosedError) as info:
                    await flood(ws)
            finally:
                for conn in accepted:
                    conn.close()
    assert (info.value.ending.code, info.value.ending.cause) == (1011, "write.stalled")
