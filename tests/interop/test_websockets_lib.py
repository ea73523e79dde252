"""Interoperability with the Python ``websockets`` library, in both directions."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed as WsClosed

import wsdoctor
from _helpers import ending_catcher
from wsdoctor import WebSocketConnection

MESSAGES: list[str | bytes] = [
    "hello",
    "",
    "ünïcödé €𝄞",
    b"",
    b"\x00\xff" * 100,
    "x" * 70_000,
    os.urandom(3 * 1024 * 1024),
]


async def ws_echo(ws: Any) -> None:
    async for message in ws:
        if message == "close-me":
            await ws.close(4001, "asked to close")
            return
        await ws.send(message)


@pytest.fixture
async def websockets_server() -> AsyncIterator[int]:
    async with ws_serve(ws_echo, "127.0.0.1", 0, max_size=None) as server:
        yield server.sockets[0].getsockname()[1]


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_our_client_with_websockets_server(websockets_server: int, compression: Any) -> None:
    async with asyncio.timeout(20):
        async with wsdoctor.connect(
            f"ws://127.0.0.1:{websockets_server}/", compression=compression, max_size=None
        ) as ws:
            assert ws.extensions == (["permessage-deflate"] if compression else [])
            for message in MESSAGES:
                await ws.send(message)
                assert await ws.recv() == message
            await ws.send_fragments(["frag", "ment", "ed"])
            assert await ws.recv() == "fragmented"
            await ws.send("close-me")
            with pytest.raises(wsdoctor.ConnectionClosedError) as info:
                await ws.recv()
        assert (info.value.code, info.value.reason) == (4001, "asked to close")
        assert info.value.ending.clean


async def test_our_client_close_code_reaches_websockets_server() -> None:
    seen: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()

    async def handler(ws: Any) -> None:
        try:
            await ws.recv()
        except WsClosed as exc:
            assert exc.rcvd is not None
            seen.set_result((exc.rcvd.code, exc.rcvd.reason))

    async with asyncio.timeout(10), ws_serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        ws = await wsdoctor.connect(f"ws://127.0.0.1:{port}/")
        ending = await ws.close(3003, "forbidden here")
        assert ending.clean and ending.code == 3003
        assert await seen == (3003, "forbidden here")


async def our_echo(ws: WebSocketConnection) -> None:
    async for message in ws:
        if message == "close-me":
            await ws.close(4002, "server closing")
            return
        await ws.send(message)


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_websockets_client_with_our_server(compression: Any) -> None:
    async with asyncio.timeout(20), wsdoctor.serve(our_echo, "127.0.0.1", 0, max_size=None) as server:
        async with ws_connect(
            f"ws://127.0.0.1:{server.port_number}/",
            compression="deflate" if compression else None,
            max_size=None,
        ) as ws:
            negotiated = ws.response.headers.get("Sec-WebSocket-Extensions") if ws.response else None
            assert (negotiated is not None) is (compression is not None)
            for message in MESSAGES:
                await ws.send(message)
                assert await ws.recv() == message
            await ws.send(["frag", "ment", "ed"])
            assert await ws.recv() == "fragmented"
            await ws.send("close-me")
            with pytest.raises(WsClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None
            assert (info.value.rcvd.code, info.value.rcvd.reason) == (4002, "server closing")


async def test_websockets_client_close_code_reaches_our_handler() -> None:
    seen, handler = ending_catcher()

    async with asyncio.timeout(10), wsdoctor.serve(handler, "127.0.0.1", 0) as server:
        async with ws_connect(f"ws://127.0.0.1:{server.port_number}/") as ws:
            await ws.close(1008, "policy")
        ending = await seen
        assert (ending.code, ending.reason, ending.cause, ending.clean) == (
            1008,
            "policy",
            "closed.by_peer",
            True,
        )


@pytest.mark.parametrize(
    ("server_options", "client_options"),
    [
        ({}, {}),
        ({"server_no_context_takeover": True}, {}),
        ({}, {"client_no_context_takeover": True}),
        ({"server_max_window_bits": 10}, {}),
        ({}, {"client_max_window_bits": 9}),
        ({}, {"server_max_window_bits": 11, "client_max_window_bits": 12}),
    ],
)
async def test_deflate_parameters_with_websockets(
    server_options: dict[str, Any], client_options: dict[str, Any]
) -> None:
    """Our client's deflate parameters against the websockets server, and the reverse."""
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

    from wsdoctor.protocol._deflate import DeflateConfig

    payloads = ["abc" * 1000, "abc" * 1000, os.urandom(5000), "z" * 100_000]
    async with asyncio.timeout(20):
        async with ws_serve(ws_echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            config = DeflateConfig(**{**server_options, **client_options}, compress_threshold=0)
            async with wsdoctor.connect(f"ws://127.0.0.1:{port}/", deflate=config) as ws:
                assert ws.extensions == ["permessage-deflate"]
                for p in payloads:
                    await ws.send(p)
                    assert await ws.recv() == p
        async with wsdoctor.serve(our_echo, "127.0.0.1", 0, deflate=DeflateConfig(compress_threshold=0)) as ours:
            factory = ClientPerMessageDeflateFactory(**{**server_options, **client_options})
            async with ws_connect(f"ws://127.0.0.1:{ours.port_number}/", extensions=[factory], compression=None) as ws2:
                header = ws2.response.headers.get("Sec-WebSocket-Extensions") if ws2.response else ""
                assert header and header.startswith("permessage-deflate")
                for p in payloads:
                    await ws2.send(p)
                    assert await ws2.recv() == p
