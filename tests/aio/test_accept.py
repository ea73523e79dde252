"""The server's own accept loop: what each accepted connection starts with.

The server accepts without ``socket.accept()`` (whose enum conversions and blocking-mode
call cost more than the rest of the accept) and without ``asyncio.timeout_at()`` around the
upgrade. These tests check that an accepted connection is still what the event loop and
the application expect, on both loops: a TCP socket with Nagle's algorithm off, the
client's own address, and an upgrade that times out with 408 when the request never
completes.
"""

from __future__ import annotations

import asyncio
import socket

import wsdoctor
from _helpers import on_both_loops, served_raw
from wsdoctor import WebSocketConnection


def test_accepted_socket_is_tcp_without_nagle_and_knows_its_peer() -> None:
    async def scenario() -> None:
        async with served_raw() as (ws, sock, _):
            server_side = ws.transport.get_extra_info("socket") if ws.transport else None
            assert server_side is not None
            assert server_side.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            assert server_side.family == socket.AF_INET
            assert server_side.type == socket.SOCK_STREAM
            assert ws.remote_address[:2] == sock.getsockname()[:2]

    on_both_loops(scenario)


def test_incomplete_upgrade_times_out_with_408() -> None:
    async def scenario() -> None:
        async def never(ws: WebSocketConnection) -> None:  # pragma: no cover - never upgraded
            raise AssertionError("the upgrade must not complete")

        async with wsdoctor.serve(never, "127.0.0.1", 0, open_timeout=0.2) as server:
            loop = asyncio.get_running_loop()
            sock = socket.create_connection(("127.0.0.1", server.port_number))
            sock.setblocking(False)
            try:
                await loop.sock_sendall(sock, b"GET / HTTP/1.1\r\nHost: x\r\n")
                answer = b""
                async with asyncio.timeout(10):
                    while chunk := await loop.sock_recv(sock, 65536):
                        answer += chunk
            finally:
                sock.close()
        assert answer.startswith(b"HTTP/1.1 408 ")

    on_both_loops(scenario)
