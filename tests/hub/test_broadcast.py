"""broadcast(): one frame for many connections, slow readers skipped, real clients on loopback."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator

import pytest
import websockets

import wsdoctor
from wsdoctor import DeflateConfig, WebSocketConnection
from wsdoctor.hub import broadcast_many


class Room:
    """A server whose handler keeps every connection until it ends."""

    def __init__(self) -> None:
        self.members: set[WebSocketConnection] = set()
        self.joined = asyncio.Condition()

    async def handler(self, ws: WebSocketConnection) -> None:
        self.members.add(ws)
        async with self.joined:
            self.joined.notify_all()
        try:
            await ws.wait_closed()
        finally:
            self.members.discard(ws)

    async def wait_for(self, n: int) -> None:
        async with self.joined:
            await self.joined.wait_for(lambda: len(self.members) >= n)


@pytest.fixture
async def room() -> AsyncIterator[tuple[Room, wsdoctor.Server]]:
    r = Room()
    async with wsdoctor.serve(r.handler, "127.0.0.1", 0, write_limit=1 << 14) as server:
        yield r, server


def url(server: wsdoctor.Server) -> str:
    return f"ws://127.0.0.1:{server.port_number}/"


async def test_every_kind_of_connection_gets_the_message(room: tuple[Room, wsdoctor.Server]) -> None:
    r, server = room
    async with asyncio.timeout(10):
        plain = await wsdoctor.connect(url(server), compression=None)
        takeover = await wsdoctor.connect(url(server))
        fresh = [
            await wsdoctor.connect(url(server), deflate=DeflateConfig(server_no_context_takeover=True))
            for _ in range(2)
        ]
        other = await websockets.connect(url(server), compression="deflate")
        await r.wait_for(5)
        big = "x" * 300 + "é" * 300
        for message in ("hello", big, big, os.urandom(1000), b"\x00"):
            result = wsdoctor.broadcast(r.members, message)
            assert (result.sent, result.skipped) == (5, 0) and result
            for ws in (plain, takeover, *fresh):
                assert await ws.recv() == message
            assert await other.recv() == message
        await other.close()
        for ws in (plain, takeover, *fresh):
            await ws.close()


async def test_shared_compression_is_done_once_and_reads_back(room: tuple[Room, wsdoctor.Server]) -> None:
    r, server = room
    async with asyncio.timeout(10):
        clients = [
            await wsdoctor.connect(url(server), deflate=DeflateConfig(server_no_context_takeover=True))
            for _ in range(3)
        ]
        await r.wait_for(3)
        keys = {ws.core.deflate.shared_key for ws in r.members if ws.core and ws.core.deflate}
        assert len(keys) == 1 and None not in keys
        message = "the same words, again and again " * 20
        for _ in range(3):
            assert wsdoctor.broadcast(r.members, message).sent == 3
        for ws in clients:
            for _ in range(3):
                assert await ws.recv() == message
            await ws.close()


async def test_a_reader_that_stalls_is_skipped_and_the_others_still_get_everything(
    room: tuple[Room, wsdoctor.Server],
) -> None:
    r, server = room
    async with asyncio.timeout(20):
        reader = await wsdoctor.connect(url(server), compression=None, max_size=None)
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(stalled, ("127.0.0.1", server.port_number))
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        request = (
            f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await loop.sock_sendall(stalled, request.encode())
        await r.wait_for(2)
        for ws in r.members:
            if ws.remote_address[1] == stalled.getsockname()[1]:
                sock = ws.transport.get_extra_info("socket") if ws.transport else None
                assert sock is not None
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        message = os.urandom(32 * 1024)
        results = []
        for _ in range(40):
            results.append(wsdoctor.broadcast(r.members, message))
            assert await reader.recv() == message  # the reader keeps up, so it is never skipped
            if results[-1].skipped:
                break
        assert results[-1].sent == 1 and results[-1].skipped == 1 and not results[-1]
        stalled.close()
        await reader.close()


async def test_closed_connections_are_skipped(room: tuple[Room, wsdoctor.Server]) -> None:
    r, server = room
    async with asyncio.timeout(10):
        a = await wsdoctor.connect(url(server))
        b = await wsdoctor.connect(url(server))
        await r.wait_for(2)
        members = list(r.members)
        assert b.transport is not None
        b_port = b.transport.get_extra_info("sockname")[1]
        await b.close()
        await asyncio.gather(*(ws.wait_closed() for ws in members if ws.remote_address[1] == b_port))
        result = wsdoctor.broadcast(members, "still here?")
        assert (result.sent, result.skipped) == (1, 1)
        assert await a.recv() == "still here?"
        await a.close()


async def test_clients_broadcast_with_masked_frames() -> None:
    async def echo(ws: WebSocketConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async with asyncio.timeout(10), wsdoctor.serve(echo, "127.0.0.1", 0) as server:
        clients = [await wsdoctor.connect(url(server)) for _ in range(3)]
        assert wsdoctor.broadcast(clients, "from every client " * 20).sent == 3
        for ws in clients:
            assert await ws.recv() == "from every client " * 20
            await ws.close()


def test_only_text_or_bytes() -> None:
    with pytest.raises(TypeError, match="str or bytes"):
        wsdoctor.broadcast([], 42)  # type: ignore[arg-type]


async def test_broadcast_many_writes_several_messages_in_order(room: tuple[Room, wsdoctor.Server]) -> None:
    r, server = room
    async with asyncio.timeout(10):
        clients = [
            await wsdoctor.connect(url(server), compression=None),
            await wsdoctor.connect(url(server)),
            await wsdoctor.connect(url(server), deflate=DeflateConfig(server_no_context_takeover=True)),
        ]
        await r.wait_for(3)
        messages: list[str | bytes] = ["first", "second " * 50, b"\x00third", "fourth " * 50]
        result = broadcast_many(r.members, messages)
        assert (result.sent, result.skipped) == (3, 0)
        for ws in clients:
            assert [await ws.recv() for _ in messages] == messages
            await ws.close()
        assert broadcast_many(r.members, []).sent == 0


async def raw_client(port: int, extensions: str) -> socket.socket:
    """A client on a bare socket that completes the upgrade and returns the socket, to read frames as bytes."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    request = (
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Extensions: {extensions}\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += await loop.sock_recv(sock, 4096)
    assert head.startswith(b"HTTP/1.1 101") and b"permessage-deflate" in head
    return sock


async def read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = await asyncio.get_running_loop().sock_recv(sock, n - len(data))
        assert chunk, "the server closed the connection"
        data += chunk
    return data


async def read_frame(sock: socket.socket) -> bytes:
    header = await read_exactly(sock, 2)
    length = header[1] & 0x7F
    extra = b""
    if length == 126:
        extra = await read_exactly(sock, 2)
        length = int.from_bytes(extra, "big")
    return header + extra + await read_exactly(sock, length)


async def test_without_context_takeover_every_connection_gets_the_same_compressed_bytes(
    room: tuple[Room, wsdoctor.Server],
) -> None:
    r, server = room
    async with asyncio.timeout(10):
        offer = "permessage-deflate; server_no_context_takeover"
        socks = [await raw_client(server.port_number, offer) for _ in range(3)]
        await r.wait_for(3)
        message = "a message worth compressing, " * 20
        wsdoctor.broadcast(r.members, message)
        wsdoctor.broadcast(r.members, message)
        frames = [[await read_frame(sock) for _ in range(2)] for sock in socks]
        first = frames[0][0]
        assert first[0] & 0x40, "RSV1: the frame is compressed"
        assert len(first) < len(message) // 2
        # The same bytes for every connection, and again for the second message: no context kept.
        assert all(f == [first, first] for f in frames)
        for sock in socks:
            sock.close()
