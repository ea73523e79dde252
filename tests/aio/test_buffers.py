"""What a connection holds: the shared receive buffer, leftovers, lazy zlib contexts, backpressure.

An idle connection should cost a few KiB. These tests check the behaviour that makes
that possible: every connection of a loop reads into one shared buffer (so two
connections receiving large frames at once must not corrupt each other), the core
keeps no large leftover once a frame is done, zlib contexts exist only while they
are needed, and ``max_queue`` still pauses reading.
"""

from __future__ import annotations

import asyncio
import os
import struct
import sys

import wsdoctor
from _helpers import echo, on_both_loops, upgraded
from wsdoctor import WebSocketConnection
from wsdoctor.aio.connection import _READ_SIZE
from wsdoctor.protocol._connection import Connection
from wsdoctor.protocol._events import BinaryMessage
from wsdoctor.protocol._mask import SPEEDUPS


def url(server: wsdoctor.Server) -> str:
    return f"ws://127.0.0.1:{server.port_number}/"


def test_concurrent_large_frames_share_one_buffer_without_mixing() -> None:
    async def scenario() -> None:
        async with asyncio.timeout(30), wsdoctor.serve(echo, "127.0.0.1", 0, compression=None, max_size=None) as server:
            clients = [await wsdoctor.connect(url(server), compression=None, max_size=None) for _ in range(3)]
            payloads = [os.urandom(4 * _READ_SIZE + 77 * i) for i in range(3)]

            async def round_trip(ws: WebSocketConnection, payload: bytes) -> bytes:
                await ws.send(payload)
                received = await ws.recv()
                assert isinstance(received, bytes)
                return received

            echoed = await asyncio.gather(*(round_trip(ws, p) for ws, p in zip(clients, payloads, strict=True)))
            assert echoed == payloads
            views = {id(ws._rview) for ws in [*clients, *server.connections]}
            assert len(views) == 1, "every connection of a loop reads into the same buffer"
            for ws in server.connections:
                assert ws.core is not None and len(ws.core._buf) == 0
            for ws in clients:
                await ws.close()

    on_both_loops(scenario)


def test_leftover_buffer_shrinks_after_a_large_frame() -> None:
    """A frame header split across reads makes the core keep bytes; once parsed they go."""

    async def scenario() -> None:
        received: list[bytes] = []
        done = asyncio.Event()
        holder: list[WebSocketConnection] = []

        async def handler(ws: WebSocketConnection) -> None:
            holder.append(ws)
            message = await ws.recv()
            assert isinstance(message, bytes)
            received.append(message)
            done.set()
            await ws.wait_closed()

        server_options = {"compression": None, "max_size": None}
        async with asyncio.timeout(30), wsdoctor.serve(handler, "127.0.0.1", 0, **server_options) as server:
            loop = asyncio.get_running_loop()
            async with upgraded(server.port_number) as (sock, _):
                payload = os.urandom(3 * _READ_SIZE)
                mask = b"\x00\x00\x00\x00"  # a zero mask keeps the test independent of masking code
                frame = struct.pack("!BBQ", 0x82, 0x80 | 127, len(payload)) + mask + payload
                await loop.sock_sendall(sock, frame[:1])  # one byte: the core must keep it
                await asyncio.sleep(0.2)
                assert holder and holder[0].core is not None
                assert len(holder[0].core._buf) == 1
                await loop.sock_sendall(sock, frame[1:])
                await done.wait()
                assert received == [payload]
                core = holder[0].core
                assert len(core._buf) == 0
                assert sys.getsizeof(core._buf) < 1024, "the leftover buffer gave its memory back"

    on_both_loops(scenario)


def test_max_queue_pauses_reading_with_the_shared_buffer() -> None:
    async def scenario() -> None:
        may_read = asyncio.Event()
        got: list[bytes] = []
        paused: list[bool] = []

        async def handler(ws: WebSocketConnection) -> None:
            await may_read.wait()
            paused.append(ws._paused_reading)
            queued = len(ws._messages)
            assert queued < 60, f"{queued} messages were queued despite max_queue=4"
            for _ in range(60):
                message = await ws.recv()
                assert isinstance(message, bytes)
                got.append(message)
            await ws.send(b"done")

        async with asyncio.timeout(30):
            async with wsdoctor.serve(handler, "127.0.0.1", 0, compression=None, max_queue=4) as server:
                async with wsdoctor.connect(url(server), compression=None) as ws:
                    sent = [os.urandom(50_000) + bytes([i]) for i in range(60)]
                    sender = asyncio.ensure_future(asyncio.gather(*(ws.send(m) for m in sent)))
                    await asyncio.sleep(0.5)  # the server's queue fills and it stops reading
                    may_read.set()
                    await sender
                    assert await ws.recv() == b"done"
        assert paused == [True]
        assert got == sent

    on_both_loops(scenario)


def test_zlib_contexts_exist_only_while_needed() -> None:
    async def scenario() -> None:
        holders: list[WebSocketConnection] = []

        async def handler(ws: WebSocketConnection) -> None:
            holders.append(ws)
            await echo(ws)

        text = "a compressible sentence, repeated. " * 40
        async with asyncio.timeout(30), wsdoctor.serve(handler, "127.0.0.1", 0) as server:
            async with wsdoctor.connect(url(server)) as ws:
                await ws.send("hi")  # below compress_threshold: sent plain
                assert await ws.recv() == "hi"
                deflate = holders[0].core.deflate if holders[0].core else None
                assert deflate is not None and not deflate.holds_contexts
                await ws.send(text)
                assert await ws.recv() == text
                assert deflate.holds_contexts  # context takeover keeps them for the next message
            config = wsdoctor.DeflateConfig(server_no_context_takeover=True, client_no_context_takeover=True)
            async with wsdoctor.connect(url(server), deflate=config) as ws:
                for _ in range(3):
                    await ws.send(text)
                    assert await ws.recv() == text
                server_codec = holders[1].core.deflate if holders[1].core else None
                assert server_codec is not None and not server_codec.holds_contexts
                assert ws.core is not None and ws.core.deflate is not None
                assert not ws.core.deflate.holds_contexts

    on_both_loops(scenario)


def test_frames_sent_with_the_upgrade_request_are_all_echoed_in_order() -> None:
    """Frames that arrive in the request's own segment reach the core through the same path as later reads."""

    async def scenario() -> None:
        async with asyncio.timeout(30), wsdoctor.serve(echo, "127.0.0.1", 0, compression=None, max_size=None) as server:
            loop = asyncio.get_running_loop()
            payloads = [os.urandom(64) for _ in range(20)] + [os.urandom(100_000), os.urandom(3)]
            builder = Connection(True)
            frames = b"".join(builder.send_binary(p) for p in payloads)
            async with upgraded(server.port_number, frames) as (sock, rest):
                reader = Connection(True)
                echoed: list[bytes] = []
                events = reader.receive_data(rest)
                while True:
                    echoed += [e.data for e in events if isinstance(e, BinaryMessage)]
                    if len(echoed) == len(payloads):
                        break
                    chunk = await loop.sock_recv(sock, 65536)
                    assert chunk, "the server closed before echoing everything"
                    events = reader.receive_data(chunk)
                assert echoed == payloads

    on_both_loops(scenario)


def test_a_large_frame_is_read_straight_into_its_message() -> None:
    """After its first piece, the rest of a large frame is read into the message itself, not the shared buffer."""

    async def scenario() -> None:
        received: list[bytes] = []
        done = asyncio.Event()
        holder: list[WebSocketConnection] = []

        async def handler(ws: WebSocketConnection) -> None:
            holder.append(ws)
            async for message in ws:
                assert isinstance(message, bytes)
                received.append(message)
                if len(received) == 2:
                    done.set()

        async with asyncio.timeout(30), wsdoctor.serve(handler, "127.0.0.1", 0, compression=None) as server:
            loop = asyncio.get_running_loop()
            async with upgraded(server.port_number) as (sock, _):
                payload, after = os.urandom(900_000), os.urandom(10)
                builder = Connection(True)  # a real masking key, so the phase across reads matters
                stream = builder.send_binary(payload) + builder.send_binary(after)
                await loop.sock_sendall(sock, stream[:5001])
                while not holder or holder[0].core is None or holder[0].core._sink is None:
                    await asyncio.sleep(0.01)
                ws = holder[0]
                missing = 10 + 4 + len(payload) - 5001  # header, key, payload
                assert ws.core is not None and ws.core._sink.remaining == missing
                # With the C extension the transport reads into the message; the pure-Python
                # sink is never read into, so the rest comes through the shared buffer.
                assert len(ws.get_buffer(-1)) == (missing if SPEEDUPS else _READ_SIZE)
                for at in range(5001, len(stream), 200_000):
                    await loop.sock_sendall(sock, stream[at : at + 200_000])
                    await asyncio.sleep(0.01)
                await done.wait()
                assert received == [payload, after]
                assert ws.core._sink is None

    on_both_loops(scenario)
