"""Frames sent straight to the socket when the transport holds nothing (uvloop, plain TCP).

``try_send`` and ``try_sendv`` (C, with their pure-Python twins) send on a non-blocking
socket, the latter a header and its payload in one call, and report what the kernel took.
The connection uses them only on uvloop's plain TCP transport, only while the transport
buffers nothing, and hands the rest, and every error, to the transport. These tests check
the functions against real sockets, where the connection uses them and where it must not
(asyncio's transport, TLS), and that a peer that stops reading or disappears loses or
reorders nothing and ends the connection as before.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import uvloop

import wsdoctor
from _helpers import echo, served_raw
from wsdoctor import WebSocketConnection
from wsdoctor.diagnose.certs import Pki
from wsdoctor.protocol import _speedups
from wsdoctor.protocol._connection import Connection
from wsdoctor.protocol._events import BinaryMessage
from wsdoctor.protocol._mask import py_try_send, py_try_sendv

SENDERS: list[Callable[[int, bytes], int]] = [_speedups.try_send, py_try_send]
VECTOR_SENDERS: list[Callable[[int, bytes, bytes], int]] = [_speedups.try_sendv, py_try_sendv]


async def binary_messages(sock: socket.socket, rest: bytes, count: int) -> list[bytes]:
    """The first ``count`` binary messages the server sent on the raw client socket ``sock``,
    parsed from ``rest`` (what arrived after the 101) and then from what the socket reads."""
    reader = Connection(True)
    got = [e.data for e in reader.receive_data(rest) if isinstance(e, BinaryMessage)]
    loop = asyncio.get_running_loop()
    while len(got) < count:
        chunk = await loop.sock_recv(sock, 1 << 16)
        assert chunk
        got += [e.data for e in reader.receive_data(chunk) if isinstance(e, BinaryMessage)]
    return got


@pytest.mark.parametrize("send", SENDERS, ids=["c", "python"])
def test_try_send_reports_what_the_kernel_took(send: Callable[[int, bytes], int]) -> None:
    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        assert send(a.fileno(), b"hello") == 5
        assert b.recv(16) == b"hello"
        assert send(a.fileno(), b"") == -1  # nothing to send
        assert send(-1, b"x") == -1  # no socket
        # A peer that does not read: the kernel takes part, then nothing.
        big = os.urandom(1 << 22)
        took = send(a.fileno(), big)
        assert 0 < took < len(big)
        assert send(a.fileno(), big) == -1
        received = b""
        while len(received) < took:
            received += b.recv(1 << 20)
        assert received == big[:took]
        b.close()
        assert send(a.fileno(), b"gone") == -1  # an error is -1 too, never an exception or SIGPIPE


@pytest.mark.parametrize("sendv", VECTOR_SENDERS, ids=["c", "python"])
def test_try_sendv_sends_a_header_and_its_payload_in_one_call(sendv: Callable[[int, bytes, bytes], int]) -> None:
    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        assert sendv(a.fileno(), b"\x82\x05", b"hello") == 7
        assert b.recv(16) == b"\x82\x05hello"
        assert sendv(a.fileno(), b"", b"") == -1
        assert sendv(-1, b"h", b"x") == -1
        head, big = b"\x82\x7f" + (1 << 22).to_bytes(8, "big"), os.urandom(1 << 22)
        took = sendv(a.fileno(), head, big)
        assert 0 < took < len(head) + len(big)
        assert sendv(a.fileno(), head, big) == -1  # the kernel takes nothing more
        received = b""
        while len(received) < took:
            received += b.recv(1 << 20)
        assert received == (head + big)[:took]
        b.close()
        assert sendv(a.fileno(), head, b"gone") == -1


def test_the_connection_sends_directly_only_on_uvloops_plain_tcp(tmp_path: Path) -> None:
    async def fds(loop_is_uvloop: bool, ssl_server: object = None, ssl_client: object = None) -> tuple[int, int]:
        seen: list[WebSocketConnection] = []

        async def handler(ws: WebSocketConnection) -> None:
            seen.append(ws)
            await echo(ws)

        scheme = "wss" if ssl_server else "ws"
        async with (
            asyncio.timeout(15),
            wsdoctor.serve(handler, "127.0.0.1", 0, ssl=ssl_server) as server,  # type: ignore[arg-type]
            wsdoctor.connect(f"{scheme}://127.0.0.1:{server.port_number}/", ssl=ssl_client) as ws,  # type: ignore[arg-type]
        ):
            await ws.send(b"x")
            assert await ws.recv() == b"x"
            assert seen[0].transport is not None
            sock = seen[0].transport.get_extra_info("socket")
            expected = sock.fileno() if loop_is_uvloop and not ssl_server else -1
            assert seen[0]._fd == expected
            return seen[0]._fd, ws._fd

    server_fd, client_fd = uvloop.run(fds(True))
    assert server_fd >= 0 and client_fd >= 0
    assert asyncio.run(fds(False)) == (-1, -1)
    pki = Pki(tmp_path)
    assert uvloop.run(fds(True, pki.healthy(["127.0.0.1"]), pki.client_context())) == (-1, -1)


def test_a_peer_that_stops_reading_gets_every_frame_in_order() -> None:
    """The kernel's buffer fills: part of a frame goes directly, the rest through the transport."""

    async def scenario() -> None:
        payloads = [i.to_bytes(4, "big") + os.urandom(20_000) for i in range(600)]
        async with served_raw() as (ws, sock, rest):
            assert ws._fd == -2 and ws.transport is not None  # looked up at the first frame
            ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 16)
            for p in payloads:  # 12 MB the client does not read yet
                ws.send_now(p)
            assert ws._fd >= 0
            assert ws.transport.get_write_buffer_size() > 0  # the rest waits in the transport
            assert await binary_messages(sock, rest, len(payloads)) == payloads

    uvloop.run(scenario())


def test_a_peer_that_vanished_ends_the_connection_as_before() -> None:
    async def scenario() -> None:
        async with served_raw() as (ws, sock, _):
            # Reset rather than close: the server's next send meets a dead socket.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.close()
            await asyncio.sleep(0.05)
            for _ in range(3):
                try:
                    ws.send_now(b"into the void")
                except wsdoctor.ConnectionClosed:
                    break
                await asyncio.sleep(0.01)
            ending = await asyncio.wait_for(ws.wait_closed(), 10)
            assert ending.code == 1006

    uvloop.run(scenario())


def test_a_small_frame_leaves_whole_and_a_larger_one_as_its_header_and_payload(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Below WHOLE_BELOW bytes a frame is one buffer for send(2), which costs the kernel less
    than sendmsg(2) of two; from it, the header and the caller's own bytes, uncopied."""
    from wsdoctor.aio import _wire

    sent: list[tuple[str, int]] = []
    modules = [m for m in (_wire, sys.modules.get("wsdoctor.aio._wire_c")) if m is not None]
    for module in modules:
        send, sendv = module.try_send, module.try_sendv

        def whole(fd: int, data: bytes, send: Callable[[int, bytes], int] = send) -> int:
            sent.append(("whole", len(data)))
            return send(fd, data)

        def parts(fd: int, head: bytes, payload: bytes, sendv: Callable[[int, bytes, bytes], int] = sendv) -> int:
            sent.append(("parts", len(payload)))
            return sendv(fd, head, payload)

        monkeypatch.setattr(module, "try_send", whole)
        monkeypatch.setattr(module, "try_sendv", parts)
    edge = _wire.WHOLE_BELOW
    payloads = [b"s" * 64, b"e" * (edge - 1), b"p" * edge]

    async def scenario() -> None:
        async with served_raw() as (ws, sock, rest):
            for p in payloads:
                ws.send_now(p)
            assert await binary_messages(sock, rest, len(payloads)) == payloads

    uvloop.run(scenario())
    assert sent == [("whole", 2 + 64), ("whole", 4 + edge - 1), ("parts", edge)]
