"""Feeding the sans-I/O handshake objects from a protocol, for both roles.

Until the 101 response the connection carries HTTP, not frames; the protocol hands
every read to a small receiver that fills a future once a full request or response
has arrived.
"""

from __future__ import annotations

import asyncio
from typing import Any, Generic, Protocol, TypeVar

from wsdoctor.aio.connection import WebSocketConnection

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

__all__ = ["read_handshake"]


class _Feedable(Protocol[T_co]):  # pragma: no cover - typing only
    def receive_data(self, data: bytes) -> T_co | None: ...


class _Receiver(Generic[T]):
    def __init__(self, parser: _Feedable[T], fut: asyncio.Future[T | None]) -> None:
        self.parser = parser
        self.fut = fut

    def __call__(self, data: bytes | None) -> None:
        if self.fut.done():
            return
        try:
            if data is None:
                eof = getattr(self.parser, "receive_eof")  # noqa: B009 - both parsers have it
                result = eof()
                self.fut.set_result(result)
                return
            result = self.parser.receive_data(data)
        except Exception as exc:  # the parser's own typed errors, passed to the awaiting task
            self.fut.set_exception(exc)
            return
        if result is not None and not self.fut.done():
            # done() again: a Ctrl-C may have cancelled the waiting task while the parser ran.
            self.fut.set_result(result)


async def read_handshake(ws: WebSocketConnection, parser: _Feedable[T], deadline: float | None = None) -> T | None:
    """Wait until ``parser`` has a complete request or response; ``None`` at EOF.

    With a ``deadline`` (event loop time), TimeoutError is raised when it passes first.
    One timer on the future costs less than ``asyncio.timeout_at()``, which also
    cancels and uncancels the task: that is work on every connection a server accepts.
    """
    loop = ws._loop
    fut: asyncio.Future[T | None] = loop.create_future()
    ws._handshake_receiver = _Receiver(parser, fut)
    timer = None if deadline is None else loop.call_at(deadline, _expire, fut)
    if ws._early:
        early = bytes(ws._early)
        ws._early.clear()
        ws._handshake_receiver(early)
    if ws.closed:
        ws._handshake_receiver(None)
    try:
        return await fut
    finally:
        ws._handshake_receiver = None
        if timer is not None:
            timer.cancel()


def _expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())
