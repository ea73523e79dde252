"""The callback-style listener API: listen() and send_now(), against real loopback peers."""

from __future__ import annotations

import asyncio

import pytest

import wsdoctor
from _helpers import send_sized, sized
from wsdoctor import ConnectionClosed, WebSocketConnection


def url(server: wsdoctor.Server) -> str:
    return f"ws://127.0.0.1:{server.port_number}/"


async def test_listener_echo_keeps_order_and_ends_cleanly() -> None:
    endings: list[wsdoctor.Ending] = []

    async def handler(ws: WebSocketConnection) -> None:
        ws.listen(ws.send_now)
        endings.append(await ws.wait_closed())

    async with asyncio.timeout(10), wsdoctor.serve(handler, "127.0.0.1", 0) as server:
        async with wsdoctor.connect(url(server)) as ws:
            sent = [f"message {i}" if i % 2 else bytes([i]) * (i * 50) for i in range(200)]
            for message in sent:
                await ws.send(message)
            assert [await ws.recv() for _ in sent] == sent
        await asyncio.sleep(0.1)
    assert [(e.code, e.initiator) for e in endings] == [(1000, "remote")]


async def test_messages_queued_before_listen_come_first() -> None:
    got: list[wsdoctor.aio.connection.Data] = []

    async def handler(ws: WebSocketConnection) -> None:
        while len(ws._messages) < 5:
            await asyncio.sleep(0.01)
        ws.listen(got.append)
        with pytest.raises(RuntimeError, match="listener"):
            await ws.recv()
        await ws.wait_closed()

    async with asyncio.timeout(10), wsdoctor.serve(handler, "127.0.0.1", 0, max_queue=2) as server:
        async with wsdoctor.connect(url(server)) as ws:
            for i in range(10):
                await ws.send(str(i))
            while len(got) < 10:
                await asyncio.sleep(0.01)
    assert got == [str(i) for i in range(10)]


async def test_listener_exception_is_1011() -> None:
    def explode(message: object) -> None:
        raise ValueError(f"cannot handle {message!r}")

    async def handler(ws: WebSocketConnection) -> None:
        ws.listen(explode)
        await ws.wait_closed()

    async with asyncio.timeout(10), wsdoctor.serve(handler, "127.0.0.1", 0) as server:
        async with wsdoctor.connect(url(server)) as ws:
            await ws.send("boom")
            with pytest.raises(wsdoctor.ConnectionClosedError) as info:
                await ws.recv()
    assert info.value.ending.code == 1011


async def test_send_now_after_close_and_bad_types() -> None:
    async def handler(ws: WebSocketConnection) -> None:
        await ws.wait_closed()

    async with asyncio.timeout(10), wsdoctor.serve(handler, "127.0.0.1", 0) as server:
        ws = await wsdoctor.connect(url(server))
        with pytest.raises(TypeError):
            ws.send_now(42)  # type: ignore[arg-type]
        assert not ws.writing_paused
        closing = asyncio.ensure_future(ws.close())
        await asyncio.sleep(0)
        with pytest.raises(ConnectionClosed) as info:
            ws.send_now("late")  # the close handshake is under way
        assert info.value.ending.initiator == "local"
        await closing
        with pytest.raises(ConnectionClosed) as info:
            ws.send_now("later")
        assert info.value.ending.code == 1000


@pytest.mark.parametrize("api", ["send", "send_now"])
async def test_large_messages_leave_as_header_and_payload_intact(api: str) -> None:
    # From wsdoctor.aio._wire.LARGE bytes on, a server writes a message's header and the
    # payload object itself (no copy into a frame); sizes straddle the 16- and 64-bit
    # length forms, and a bytearray still goes through a copy, so changing it after the
    # call cannot change what was sent.
    from wsdoctor.aio._wire import LARGE

    sizes = [LARGE - 1, LARGE, 65535, 65536, 3 * 1024 * 1024]
    mutable = bytearray(b"m" * (LARGE + 10))

    async def handler(ws: WebSocketConnection) -> None:
        await send_sized(ws, sizes, api)
        ws.send_now(mutable)
        mutable[:] = b"x" * len(mutable)
        await ws.wait_closed()

    async with asyncio.timeout(20), wsdoctor.serve(handler, "127.0.0.1", 0, max_size=1 << 23) as server:
        async with wsdoctor.connect(url(server), max_size=1 << 23) as ws:
            for n in sizes:
                assert await ws.recv() == sized(n)
            assert await ws.recv() == b"m" * (LARGE + 10)
            assert ws.messages_in == len(sizes) + 1
