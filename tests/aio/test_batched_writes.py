"""Answers to several messages that arrived together leave in one write, in order.

When one read brings several messages (a pipelining client), the answers the listener
sends, and those the ``async for`` handler sends before the queue is empty, are held back
and written together: one system call instead of one per message. These tests count the
writes on the real transport (a thin wrapper records what passes through) and check that
nothing is reordered, lost or held back: not around control frames, a broadcast, a failing
listener, nor a send from another task.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from typing import Any

import wsdoctor
from _helpers import on_both_loops, served_raw
from wsdoctor import WebSocketConnection
from wsdoctor.protocol._connection import Connection
from wsdoctor.protocol._events import BinaryMessage, CloseReceived, Pong


class CountedTransport:
    """The connection's real transport, with every write recorded on its way through."""

    def __init__(self, real: asyncio.Transport) -> None:
        self.real = real
        self.writes: list[bytes] = []

    @classmethod
    def around(cls, ws: WebSocketConnection) -> CountedTransport:
        """Put a counting wrapper between ``ws`` and its transport."""
        assert ws.transport is not None
        spy = cls(ws.transport)
        ws.transport = spy  # type: ignore[assignment]
        return spy

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.real.write(data)

    def writelines(self, parts: list[bytes]) -> None:
        self.writes.append(b"".join(parts))
        self.real.writelines(parts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class Peer:
    """A raw client past the handshake: sends masked frames, parses what comes back."""

    def __init__(self, sock: socket.socket, rest: bytes) -> None:
        self.sock = sock
        self.builder = Connection(True)
        self.reader = Connection(True)
        self.events = list(self.reader.receive_data(rest))

    async def send(self, *frames: bytes) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, b"".join(frames))

    async def until(self, done: Callable[[list[Any]], bool]) -> list[Any]:
        loop = asyncio.get_running_loop()
        while not done(self.events):
            chunk = await loop.sock_recv(self.sock, 65536)
            assert chunk, f"the server closed the connection; received {self.events}"
            self.events += self.reader.receive_data(chunk)
        return self.events


def messages(events: list[Any]) -> list[bytes]:
    return [e.data for e in events if isinstance(e, BinaryMessage)]


def count(n: int) -> Callable[[list[Any]], bool]:
    return lambda events: len(messages(events)) >= n


def test_the_listener_answers_one_read_of_messages_in_one_write() -> None:
    async def scenario() -> None:
        payloads = [os.urandom(40 + i) for i in range(6)]
        async with served_raw() as (ws, sock, rest):
            spy = CountedTransport.around(ws)
            ws.listen(ws.send_now)
            peer = Peer(sock, rest)
            await peer.send(*(peer.builder.send_binary(p) for p in payloads))
            assert messages(await peer.until(count(6))) == payloads
            assert len(spy.writes) == 1  # six answers, one write
            # A single message is written at once, as before.
            await peer.send(peer.builder.send_binary(b"alone"))
            assert messages(await peer.until(count(7)))[-1] == b"alone"
            assert len(spy.writes) == 2

    on_both_loops(scenario)


def test_the_async_for_handler_answers_a_queue_of_messages_in_one_write() -> None:
    async def echo(ws: WebSocketConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async def scenario() -> None:
        payloads = [os.urandom(100) for _ in range(8)]
        async with served_raw(echo) as (ws, sock, rest):
            spy = CountedTransport.around(ws)
            peer = Peer(sock, rest)
            await peer.send(*(peer.builder.send_binary(p) for p in payloads))
            assert messages(await peer.until(count(8))) == payloads
            # Written when the queue ran empty: one write, not eight.
            assert len(spy.writes) == 1

    on_both_loops(scenario)


def test_held_back_answers_keep_their_order_around_a_ping_and_a_broadcast() -> None:
    async def scenario() -> None:
        async with served_raw() as (ws, sock, rest):

            def answer(message: str | bytes) -> None:
                assert isinstance(message, bytes)
                ws.send_now(b"a" + message)
                wsdoctor.broadcast([ws], b"b" + message)  # the shared frame joins the held-back ones
                ws.send_now(b"c" + message)

            ws.listen(answer)
            peer = Peer(sock, rest)
            b = peer.builder
            await peer.send(b.send_binary(b"1"), b.send_ping(b"p"), b.send_binary(b"2"))
            events = await peer.until(lambda ev: count(6)(ev) and any(isinstance(e, Pong) for e in ev))
            assert messages(events) == [b"a1", b"b1", b"c1", b"a2", b"b2", b"c2"]
            assert [e.payload for e in events if isinstance(e, Pong)] == [b"p"]

    on_both_loops(scenario)


def test_answers_held_back_before_a_failing_listener_still_leave_before_the_close() -> None:
    async def scenario() -> None:
        async with served_raw() as (ws, sock, rest):

            def answer(message: str | bytes) -> None:
                if message == b"boom":
                    raise ValueError("no")
                ws.send_now(message)

            ws.listen(answer)
            peer = Peer(sock, rest)
            b = peer.builder
            await peer.send(*(b.send_binary(m) for m in (b"one", b"two", b"boom", b"x")))
            events = await peer.until(lambda ev: any(isinstance(e, CloseReceived) for e in ev))
            assert messages(events) == [b"one", b"two"]
            close = next(e for e in events if isinstance(e, CloseReceived))
            assert close.code == 1011
            assert events.index(close) > max(i for i, e in enumerate(events) if isinstance(e, BinaryMessage))

    on_both_loops(scenario)


def test_a_send_from_another_task_while_messages_wait_still_leaves() -> None:
    """Held back because the queue is not empty, and written at the loop's next turn anyway."""

    async def scenario() -> None:
        sent = asyncio.Event()

        async def handler(ws: WebSocketConnection) -> None:
            while len(ws._messages) < 3:  # nobody reads them
                await asyncio.sleep(0.01)
            await asyncio.create_task(ws.send(b"from elsewhere"))
            sent.set()
            await ws.wait_closed()

        async with served_raw(handler) as (ws, sock, rest):
            spy = CountedTransport.around(ws)
            peer = Peer(sock, rest)
            b = peer.builder
            await peer.send(b.send_binary(b"1"), b.send_binary(b"2"), b.send_binary(b"3"))
            assert messages(await peer.until(count(1))) == [b"from elsewhere"]
            await sent.wait()
            assert len(spy.writes) == 1

    on_both_loops(scenario)
