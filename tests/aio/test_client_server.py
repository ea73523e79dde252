"""The asyncio client against the asyncio server, and both against raw loopback peers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

import wsdoctor
from _helpers import echo, ending_catcher
from wsdoctor import ConnectionClosedError, ConnectionClosedOK, WebSocketConnection

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@pytest.fixture
async def echo_server() -> AsyncIterator[wsdoctor.Server]:
    async with wsdoctor.serve(echo, "127.0.0.1", 0) as server:
        yield server


def url(server: wsdoctor.Server, path: str = "/") -> str:
    return f"ws://127.0.0.1:{server.port_number}{path}"


# ----------------------------------------------------------------- messages


async def test_echo_text_and_binary(echo_server: wsdoctor.Server) -> None:
    async with asyncio.timeout(10), wsdoctor.connect(url(echo_server)) as ws:
        assert ws.extensions == ["permessage-deflate"]
        await ws.send("héllo")
        assert await ws.recv() == "héllo"
        await ws.send(b"\x00\x01\xff")
        assert await ws.recv() == b"\x00\x01\xff"
        big = os.urandom(3 * (1 << 18))
        await ws.send(big)
        assert await ws.recv() == big
    assert ws.ending is not None and ws.ending.ok
    assert (ws.ending.code, ws.ending.cause, ws.ending.initiator) == (1000, "closed.locally", "local")


async def test_echo_without_compression(echo_server: wsdoctor.Server) -> None:
    async with asyncio.timeout(10), wsdoctor.connect(url(echo_server), compression=None) as ws:
        assert ws.extensions == []
        for size in (0, 125, 126, 65535, 65536, 1 << 20):
            payload = os.urandom(size)
            await ws.send(payload)
            assert await ws.recv() == payload


async def test_fragmented_send(echo_server: wsdoctor.Server) -> None:
    async with asyncio.timeout(10), wsdoctor.connect(url(echo_server), compression=None) as ws:
        await ws.send_fragments(["frag", "men", "ted"])
        assert await ws.recv() == "fragmented"


async def test_async_iteration_ends_on_normal_close() -> None:
    async def talk(ws: WebSocketConnection) -> None:
        for i in range(3):
            await ws.send(str(i))
        await ws.close(1000, "done")

    async with asyncio.timeout(10), wsdoctor.serve(talk, "127.0.0.1", 0) as server:
        async with wsdoctor.connect(url(server)) as ws:
            assert [m async for m in ws] == ["0", "1", "2"]
            assert ws.ending is not None
            assert (ws.ending.code, ws.ending.reason, ws.ending.cause) == (1000, "done", "closed.by_peer")


async def test_ping_returns_round_trip_time(echo_server: wsdoctor.Server) -> None:
    async with asyncio.timeout(10), wsdoctor.connect(url(echo_server)) as ws:
        rtt = await ws.ping()
        assert 0 < rtt < 5
        rtts = await asyncio.gather(ws.ping(), ws.ping(b"custom"))
        assert all(r > 0 for r in rtts)


# ------------------------------------------------------------- close codes


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1008, 1011, 1013, 3000, 4001])
async def test_server_close_code_reaches_client(code: int) -> None:
    async def closer(ws: WebSocketConnection) -> None:
        await ws.close(code, "because")

    async with asyncio.timeout(10), wsdoctor.serve(closer, "127.0.0.1", 0) as server:
        ws = await wsdoctor.connect(url(server))
        exc_type = ConnectionClosedOK if code in (1000, 1001) else ConnectionClosedError
        with pytest.raises(exc_type) as info:
            await ws.recv()
        assert (info.value.code, info.value.reason) == (code, "because")
        assert info.value.ending.initiator == "remote" and info.value.ending.clean
        assert str(code) in str(info.value)


async def test_client_close_code_reaches_handler() -> None:
    seen, handler = ending_catcher()

    async with asyncio.timeout(10), wsdoctor.serve(handler, "127.0.0.1", 0) as server:
        ws = await wsdoctor.connect(url(server))
        ending = await ws.close(4321, "client says bye")
        assert (ending.code, ending.initiator, ending.clean) == (4321, "local", True)
        remote = await seen
        assert (remote.code, remote.reason, remote.cause) == (4321, "client says bye", "closed.by_peer")


@pytest.mark.parametrize("code", [1005, 1006, 1015, 1004, 2000, 5000])
async def test_cannot_send_local_only_codes(echo_server: wsdoctor.Server, code: int) -> None:
    async with asyncio.timeout(10), wsdoctor.connect(url(echo_server)) as ws:
        with pytest.raises(wsdoctor.InvalidCloseCode):
            await ws.close(code)
        assert ws.open


async def test_handler_exception_is_1011() -> None:
    async def broken(ws: WebSocketConnection) -> None:
        await ws.recv()
        raise RuntimeError("boom")

    async with asyncio.timeout(10), wsdoctor.serve(broken, "127.0.0.1", 0) as server:
        ws = await wsdoctor.connect(url(server))
        await ws.send("x")
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.code == 1011


async def test_server_close_sends_1001_to_every_client(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "wsdoctor.server")
    server = await wsdoctor.serve(echo, "127.0.0.1", 0)
    async with asyncio.timeout(15):
        clients = [await wsdoctor.connect(url(server)) for _ in range(3)]
        await server.close(reason="maintenance")
        for ws in clients:
            with pytest.raises(ConnectionClosedOK) as info:
                await ws.recv()
            assert (info.value.code, info.value.reason) == (1001, "maintenance")
    endings = [r.ending for r in caplog.records if hasattr(r, "ending")]
    assert len(endings) == 3
    assert all((e.code, e.cause) == (1001, "server.shutdown") for e in endings)


async def test_message_too_big_is_1009() -> None:
    async with asyncio.timeout(10), wsdoctor.serve(echo, "127.0.0.1", 0, max_size=1000) as server:
        ws = await wsdoctor.connect(url(server), compression=None)
        await ws.send(b"x" * 1001)
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.code == 1009


async def test_deflate_bomb_is_1009_on_inflated_size() -> None:
    async with asyncio.timeout(10), wsdoctor.serve(echo, "127.0.0.1", 0, max_size=1 << 16) as server:
        ws = await wsdoctor.connect(url(server))
        # 10 MB of zeros deflate to about 10 KB: small on the wire, too big inflated.
        await ws.send(bytes(10_000_000))
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.code == 1009


# --------------------------------------------------------- handshake rejections


async def test_origin_not_allowed_is_403() -> None:
    async with (
        asyncio.timeout(10),
        wsdoctor.serve(echo, "127.0.0.1", 0, origins=["https://good.example"]) as s,
    ):
        with pytest.raises(wsdoctor.HandshakeError) as info:
            await wsdoctor.connect(url(s), origin="https://evil.example")
        assert info.value.status == 403
        assert info.value.ending.cause == "http.forbidden"
        async with wsdoctor.connect(url(s), origin="https://good.example") as ws:
            await ws.send("ok")
            assert await ws.recv() == "ok"


async def test_process_request_can_reject() -> None:
    def check(ws: WebSocketConnection, request: object) -> tuple[int, str] | None:
        return None if ws.path == "/ok" else (401, "who are you?\n")

    async with asyncio.timeout(10), wsdoctor.serve(echo, "127.0.0.1", 0, process_request=check) as s:
        with pytest.raises(wsdoctor.HandshakeError) as info:
            await wsdoctor.connect(url(s, "/secret"))
        assert info.value.status == 401
        assert b"who are you" in info.value.body
        async with wsdoctor.connect(url(s, "/ok")):
            pass


async def test_subprotocol_negotiation() -> None:
    async with (
        asyncio.timeout(10),
        wsdoctor.serve(echo, "127.0.0.1", 0, subprotocols=["chat.v2", "chat.v1"]) as s,
    ):
        async with wsdoctor.connect(url(s), subprotocols=["chat.v1", "chat.v2"]) as ws:
            assert ws.subprotocol == "chat.v2"
        async with wsdoctor.connect(url(s), subprotocols=["other"]) as ws:
            assert ws.subprotocol is None


async def test_refused_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(wsdoctor.DialError) as info:
        await wsdoctor.connect(f"ws://127.0.0.1:{port}/", open_timeout=5)
    assert (info.value.ending.code, info.value.ending.cause) == (1006, "tcp.refused")


async def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.fail("IPv6 is required for this test")
    async with asyncio.timeout(10), wsdoctor.serve(echo, "::1", 0) as server:
        port = server.port_number
        async with wsdoctor.connect(f"ws://[::1]:{port}/") as ws:
            await ws.send("v6")
            assert await ws.recv() == "v6"
            assert ws.remote_address[0] == "::1"


# ------------------------------------------------------------- raw peers

RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def raw_server(handler: RawHandler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def accept_upgrade(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, extra: str = "") -> bytes:
    request = await reader.readuntil(b"\r\n\r\n")
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + GUID.encode()).digest()).decode()
    writer.write(
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
        ).encode()
    )
    await writer.drain()
    return request


async def read_client_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await reader.readexactly(2)
    length = b1 & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    mask = await reader.readexactly(4)
    data = await reader.readexactly(length)
    return b0, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


async def test_required_extension_missing_sends_1010() -> None:
    """A server that ignores the deflate offer gets Close 1010 naming the missing extension."""
    received: asyncio.Future[tuple[bytes, int, bytes]] = asyncio.get_running_loop().create_future()

    async def ignoring(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await accept_upgrade(reader, writer)
        b0, payload = await read_client_frame(reader)
        received.set_result((request, b0, payload))
        writer.write(b"\x88\x02" + payload[:2])  # answer the Close, then close TCP
        await writer.drain()
        writer.close()

    server, port = await raw_server(ignoring)
    async with server, asyncio.timeout(10):
        with pytest.raises(wsdoctor.NegotiationError) as info:
            await wsdoctor.connect(f"ws://127.0.0.1:{port}/", require_extensions=["permessage-deflate"])
        request, b0, payload = await received
        assert b"permessage-deflate" in request
        assert b0 == 0x88
        assert payload[:2] == b"\x03\xf2"  # 1010
        assert b"permessage-deflate" in payload[2:]
        ending = info.value.ending
        assert (ending.code, ending.cause, ending.clean) == (1010, "extension.missing", True)
        assert "permessage-deflate" in ending.detail
        assert "Sec-WebSocket-Extensions" in ending.fix


async def test_unrequested_extension_fails_without_close_frame() -> None:
    got: list[bytes] = []

    async def pushy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_upgrade(reader, writer, "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n")
        got.append(await reader.read(100))
        writer.close()

    server, port = await raw_server(pushy)
    async with server, asyncio.timeout(10):
        with pytest.raises(wsdoctor.NegotiationError) as info:
            await wsdoctor.connect(f"ws://127.0.0.1:{port}/")
        assert info.value.ending.cause == "extension.unrequested"
        await asyncio.sleep(0.1)
        assert got == [b""]  # no Close frame was sent


async def test_keepalive_timeout_is_1011() -> None:
    """A peer that completes the handshake and then never answers pings."""
    frames: list[tuple[int, bytes]] = []
    done = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_upgrade(reader, writer)
        try:
            while True:
                frames.append(await read_client_frame(reader))
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            done.set()

    server, port = await raw_server(silent)
    async with server, asyncio.timeout(10):
        ws = await wsdoctor.connect(f"ws://127.0.0.1:{port}/", ping_interval=0.2, ping_timeout=0.3)
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert (info.value.code, info.value.ending.cause) == (1011, "keepalive.timeout")
        await done.wait()
        assert frames[0][0] == 0x89
        assert frames[-1] == (0x88, b"\x03\xf3")


async def test_abrupt_disconnect_is_1006() -> None:
    async def rude(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_upgrade(reader, writer)
        writer.close()

    server, port = await raw_server(rude)
    async with server, asyncio.timeout(10):
        ws = await wsdoctor.connect(f"ws://127.0.0.1:{port}/")
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert (info.value.code, info.value.ending.cause) == (1006, "tcp.closed")


async def test_server_handshake_timeout() -> None:
    async with asyncio.timeout(10), wsdoctor.serve(echo, "127.0.0.1", 0, open_timeout=0.3) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port_number)
        writer.write(b"GET / HTTP/1.1\r\n")
        response = await reader.read()
        assert response.startswith(b"HTTP/1.1 408")
        writer.close()


async def test_server_rejects_bad_request_with_400() -> None:
    async with asyncio.timeout(10), wsdoctor.serve(echo, "127.0.0.1", 0) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port_number)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        response = await reader.read()
        assert response.startswith(b"HTTP/1.1 4")
        writer.close()


async def test_slow_reader_pauses_transport(echo_server: wsdoctor.Server) -> None:
    """With a small queue the client stops reading; nothing is lost when it resumes."""
    async with asyncio.timeout(20), wsdoctor.connect(url(echo_server), max_queue=2, compression=None) as ws:
        payloads = [os.urandom(50_000) for _ in range(40)]
        for p in payloads:
            await ws.send(p)
        await asyncio.sleep(0.2)
        assert ws._paused_reading
        assert [await ws.recv() for _ in payloads] == payloads


async def test_server_reports_1010_from_client(caplog: pytest.LogCaptureFixture) -> None:
    """A server without deflate, a client that requires it: both sides say 1010 and why."""
    caplog.set_level(logging.INFO, "wsdoctor.server")
    seen, handler = ending_catcher()

    async with asyncio.timeout(10), wsdoctor.serve(handler, "127.0.0.1", 0, compression=None) as server:
        with pytest.raises(wsdoctor.NegotiationError) as info:
            await wsdoctor.connect(url(server), require_extensions=["permessage-deflate"])
        assert info.value.ending.code == 1010
        remote = await seen
    assert (remote.code, remote.cause) == (1010, "extension.missing")
    assert "permessage-deflate" in remote.reason and "permessage-deflate" in remote.detail
    logged = [r.ending for r in caplog.records if hasattr(r, "ending")]
    assert any(e.code == 1010 and "permessage-deflate" in e.reason for e in logged)


async def test_send_waits_when_peer_does_not_read() -> None:
    """Above the write buffer's high-water mark, send() waits instead of buffering without end."""
    release = asyncio.Event()

    async def stalled(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_upgrade(reader, writer)
        await release.wait()
        writer.close()

    server, port = await raw_server(stalled)
    async with server:
        ws = await wsdoctor.connect(f"ws://127.0.0.1:{port}/", compression=None, write_limit=1 << 16)
        chunk = os.urandom(1 << 20)
        sent = 0
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(3):
                while True:
                    await ws.send(chunk)
                    sent += 1
        # The kernel's buffers absorb a few MiB; the rest was held back by send() itself.
        assert sent < 64
        assert ws.transport is not None and ws.transport.get_write_buffer_size() < 4 << 20
        release.set()
        ws.transport.abort()


async def test_echo_of_message_before_violation_precedes_close() -> None:
    """A valid message, then a frame with a reserved bit: the echo goes out before Close 1002."""
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async with asyncio.timeout(10), wsdoctor.serve(echo, "127.0.0.1", 0, compression=None) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port_number)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        await reader.readuntil(b"\r\n\r\n")
        mask = b"\x01\x02\x03\x04"

        def frame(b0: int, payload: bytes) -> bytes:
            return bytes([b0, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))

        writer.write(frame(0x81, b"Hello, world!") + frame(0xC1, b"bad") + frame(0x89, b""))
        got.set_result(await reader.read())
        writer.close()
    data = await got
    assert data.startswith(b"\x81\x0dHello, world!")
    assert data[15:] == b"\x88\x02\x03\xea"
