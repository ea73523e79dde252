"""A blocking WebSocket client on top of the asyncio one.

Theory of operation
-------------------
Each connection owns a private event loop running in a daemon thread. Every
blocking call submits one coroutine of the asyncio :class:`WebSocketConnection` to
that loop and waits for its result, so the dial, the protocol core, keepalive pings
and the close handshake are exactly those of the asyncio client: same options, same
exceptions, same endings. Timeouts given to ``recv`` and ``ping`` run *inside* the
loop (``asyncio.wait_for``), where cancelling a ``recv`` cannot lose a message that
has already been taken from the queue. ``close()`` (or leaving the ``with`` block)
ends the connection and stops the thread; afterwards every call raises the ending's
``ConnectionClosed`` without touching the stopped loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable, Coroutine, Iterator
from types import TracebackType
from typing import Any, TypeVar

from wsdoctor.aio._wire import Data
from wsdoctor.aio.client import connect as aio_connect
from wsdoctor.aio.connection import WebSocketConnection
from wsdoctor.protocol._ending import Ending
from wsdoctor.protocol._errors import ConnectionClosedOK, DialError, closed_exception

__all__ = ["ClientConnection", "connect"]

T = TypeVar("T")


class _LoopThread:
    """An event loop of our own, running in a daemon thread until stopped."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="wsdoctor-sync", daemon=True)
        self.thread.start()
        self.stopped = False

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # an interrupted caller (Ctrl-C) leaves nothing running behind
            raise

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        if threading.current_thread() is self.thread:
            self.loop.stop()
            return
        # The resolver's worker thread goes too, not only ours.
        asyncio.run_coroutine_threadsafe(self.loop.shutdown_default_executor(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


def _abandon(portal: _LoopThread, ws: WebSocketConnection) -> None:
    if portal.stopped:
        return

    def abort() -> None:
        if ws.transport is not None and not ws.closed:
            ws.transport.abort()

    portal.loop.call_soon_threadsafe(abort)
    portal.stop()


class ClientConnection:
    """A connection opened by :func:`connect`; every method blocks until it is done.

    Use it as a context manager (``with connect(uri) as ws:``) or call
    :meth:`close`: either one also stops the connection's background thread.
    """

    def __init__(self, portal: _LoopThread, ws: WebSocketConnection) -> None:
        self._portal = portal
        self._ws = ws
        self._lock = threading.Lock()
        # A connection dropped without close() must not leave its thread and socket behind.
        weakref.finalize(self, _abandon, portal, ws)

    # ----------------------------------------------------------- properties

    @property
    def ending(self) -> Ending | None:
        """How the connection ended, once it has; ``None`` while it is open."""
        return self._ws.ending

    @property
    def open(self) -> bool:
        return self._ws.open

    @property
    def closed(self) -> bool:
        return self._ws.closed

    @property
    def subprotocol(self) -> str | None:
        return self._ws.subprotocol

    @property
    def extensions(self) -> list[str]:
        return self._ws.extensions

    @property
    def response_headers(self) -> list[tuple[str, str]]:
        return self._ws.response_headers

    @property
    def remote_address(self) -> Any:
        return self._ws.remote_address

    # -------------------------------------------------------------- calling

    def _call(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        if self._portal.stopped:
            ending = self._ws.ending
            assert ending is not None  # the thread stops only after the connection ended
            raise closed_exception(ending)
        return self._portal.run(make())

    def send(self, message: Data | bytearray | memoryview) -> None:
        """Send one message (``str`` as text, bytes as binary); raises ConnectionClosed once closed."""
        self._call(lambda: self._ws.send(message))

    def recv(self, timeout: float | None = None) -> Data:
        """The next message; ``TimeoutError`` after ``timeout`` seconds (the message is not lost).

        Raises :class:`ConnectionClosedOK` or :class:`ConnectionClosedError` once the
        connection has ended and every received message was read.
        """
        return self._call(lambda: asyncio.wait_for(self._ws.recv(), timeout))

    def __iter__(self) -> Iterator[Data]:
        """Messages until a normal closure; any other ending raises ConnectionClosedError."""
        while True:
            try:
                yield self.recv()
            except ConnectionClosedOK:
                return

    def ping(self, data: bytes | None = None, timeout: float | None = None) -> float:
        """Send a Ping and wait for its Pong; returns the round trip in seconds."""
        return self._call(lambda: asyncio.wait_for(self._ws.ping(data), timeout))

    def close(self, code: int = 1000, reason: str = "") -> Ending:
        """Close (bounded by ``close_timeout``), stop the background thread, return the ending."""
        with self._lock:
            if not self._portal.stopped:
                try:
                    self._portal.run(self._ws.close(code, reason))
                finally:
                    if self._ws.closed:
                        self._portal.stop()
        ending = self._ws.ending
        assert ending is not None
        return ending

    def __enter__(self) -> ClientConnection:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class connect:
    """Open a WebSocket connection to ``uri``, blocking; three ways to use it.

    ``with connect(uri) as ws:`` dials, and closes on leaving the block;
    ``ws = connect(uri).open()`` dials and leaves closing to you; and
    ``for ws in connect(uri):`` reconnects, as ``async for ws in wsdoctor.connect(uri)``
    does (see :meth:`__iter__`). Takes every option of :func:`wsdoctor.connect`
    (``ssl``, ``proxy``, ``max_redirects``, ``backoff``, ``require_extensions``,
    ``open_timeout``, ``max_size``...), checked here, before any thread starts or
    anything is dialled, and raises the same :class:`DialError` subclasses with the
    same endings.
    """

    def __init__(self, uri: str, **options: Any) -> None:
        self._dial = aio_connect(uri, **options)
        self.connection: ClientConnection | None = None

    @property
    def uri(self) -> str:
        """Where the last dial ended up, after any redirect."""
        return self._dial.uri

    def open(self) -> ClientConnection:
        """Dial once (on a background thread of its own) and return the open connection."""
        portal = _LoopThread()

        async def open_connection() -> WebSocketConnection:
            return await self._dial

        try:
            ws = portal.run(open_connection())
        except BaseException:
            portal.stop()
            raise
        return ClientConnection(portal, ws)

    def __enter__(self) -> ClientConnection:
        self.connection = self.open()
        return self.connection

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.connection is not None:
            self.connection.close()

    def __iter__(self) -> Iterator[ClientConnection]:
        """``for ws in connect(uri):`` a new connection each time the last one ended.

        The asyncio client's rules, shared with it rather than copied: a transient
        ending (refused, reset, a 1001/1011/1012/1013/1014 close, a 429 or 5xx answer)
        is retried after the next delay of ``backoff`` (or the server's
        ``Retry-After`` when longer), logged at INFO on the client's logger with
        ``record.ending`` and ``record.delay``; a permanent one (an untrusted
        certificate, a 403, a 1008 close) is raised; a normal closure ends the loop.
        Leaving the loop body while the connection is still open closes it and dials
        again at once.
        """
        dial = self._dial
        delays = dial.backoff.delays()
        while True:
            try:
                ws = self.open()
            except DialError as exc:
                delay = dial._retry_delay(exc.ending, delays, exc)
                if delay is None:
                    raise
                time.sleep(delay)
                continue
            delays = dial.backoff.delays()  # a connection opened: start over from short delays
            self.connection = ws
            fresh = False
            try:
                yield ws
            finally:
                fresh = ws.open
                if fresh:
                    ws.close()
            if fresh:
                continue
            ending = ws.close()  # already ended: waits for nothing but the thread to stop
            delay = dial._retry_delay(ending, delays)
            if delay is None:
                if ending.ok or (ending.code == 1000 and ending.initiator == "local"):
                    return
                raise closed_exception(ending)
            time.sleep(delay)
