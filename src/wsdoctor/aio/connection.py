"""An open WebSocket connection on asyncio, shared by the client and the server.

The protocol core decides everything; this module only moves bytes and wakes tasks.
It is an :class:`asyncio.Protocol` rather than a pair of streams so that a received
message costs one call from ``data_received`` into the core and one append to a
deque: no task switch, no future per message. A future is created only when
``recv()`` finds nothing waiting, and only one at a time.

Backpressure works both ways. Reading is paused while ``max_queue`` messages wait
for the application (the kernel's buffer then fills and the peer's writes slow
down), and ``send()`` waits while the transport's write buffer is above its high
water mark.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from wsdoctor.aio._wire import Data, WireProtocol
from wsdoctor.protocol._arguments import check_size, check_timeout
from wsdoctor.protocol._connection import Connection
from wsdoctor.protocol._deflate import PerMessageDeflate
from wsdoctor.protocol._ending import Ending
from wsdoctor.protocol._errors import ConnectionClosed, closed_exception

__all__ = ["Limits", "WebSocketConnection"]

_READ_SIZE = 256 * 1024
_thread_buffers = threading.local()


def _receive_buffer() -> memoryview:
    """The receive buffer of the calling thread, shared by every connection of its loop.

    A transport calls ``get_buffer``, reads into it and calls ``buffer_updated`` in one
    go, and the core copies out everything it keeps before ``buffer_updated`` returns;
    so one buffer per thread (an event loop runs in one thread) serves all of its
    connections. A connection then costs no buffer at all while idle, and large
    messages are still read 256 KiB at a time.
    """
    view: memoryview | None = getattr(_thread_buffers, "view", None)
    if view is None:
        view = _thread_buffers.view = memoryview(bytearray(_READ_SIZE))
    return view


_EOF_CAUSES: dict[type[BaseException], str] = {
    ConnectionResetError: "tcp.reset",
    BrokenPipeError: "tcp.reset",
    ConnectionAbortedError: "tcp.reset",
    TimeoutError: "tcp.timeout",
}


@dataclass(frozen=True)
class Limits:
    """The per-connection settings that connect() and serve() share, in one place."""

    open_timeout: float = 10.0
    close_timeout: float = 10.0
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    max_size: int | None = 1 << 20
    max_frame_size: int | None = None
    max_queue: int | None = 16
    write_limit: int = 1 << 16

    def __post_init__(self) -> None:
        # Checked when connect() or serve() is called, before any socket opens: a NaN
        # timeout or a negative size would otherwise fail much later, far from its cause.
        check_timeout("open_timeout", self.open_timeout)
        check_timeout("close_timeout", self.close_timeout, allow_zero=True)
        check_timeout("ping_interval", self.ping_interval, optional=True)
        check_timeout("ping_timeout", self.ping_timeout, optional=True)
        check_size("max_size", self.max_size, optional=True)
        check_size("max_frame_size", self.max_frame_size, optional=True)
        check_size("max_queue", self.max_queue, optional=True)
        check_size("write_limit", self.write_limit, minimum=0)

    def new_connection(
        self, *, is_client: bool, logger: logging.Logger, loop: asyncio.AbstractEventLoop | None = None
    ) -> WebSocketConnection:
        return WebSocketConnection(
            is_client=is_client,
            loop=loop,
            max_queue=self.max_queue,
            write_limit=self.write_limit,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            close_timeout=self.close_timeout,
            logger=logger,
        )

    def new_core(self, *, is_client: bool, deflate: PerMessageDeflate | None) -> Connection:
        return Connection(is_client, deflate=deflate, max_size=self.max_size, max_frame_size=self.max_frame_size)


class WebSocketConnection(WireProtocol, asyncio.BufferedProtocol):
    """A WebSocket connection after a successful opening handshake.

    Used by both :func:`wsdoctor.connect` and :func:`wsdoctor.serve`; applications
    receive it ready to use and never build one themselves.
    """

    # Slots keep an idle connection small: an instance dict of this many attributes
    # costs about 1.5 KiB. ``__dict__`` stays available (created only when first used)
    # for attributes added by subclasses and extensions.
    __slots__ = (
        "__dict__",
        "__weakref__",
        "_close_timer",
        "_drain_waiter",
        "_early",
        "_eof_cause",
        "_eof_detail",
        "_handshake_receiver",
        "_keepalive",
        "_ping_counter",
        "_pings",
        "close_timeout",
        "ending_logged",
        "extensions",
        "logger",
        "lost_error",
        "offered_extensions",
        "path",
        "ping_interval",
        "ping_timeout",
        "remote_address",
        "request_headers",
        "response_headers",
        "started",
        "subprotocol",
        "write_limit",
    )

    def __init__(
        self,
        *,
        is_client: bool,
        max_queue: int | None = 16,
        write_limit: int = 1 << 16,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        close_timeout: float = 10.0,
        logger: logging.Logger | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        loop = loop or asyncio.get_running_loop()
        WireProtocol.__init__(self, loop, is_client, _receive_buffer(), loop.create_future(), max_queue)
        self.write_limit = write_limit
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self.logger = logger or logging.getLogger("wsdoctor.client" if is_client else "wsdoctor.server")
        self.subprotocol: str | None = None
        self.extensions: list[str] = []
        self.request_headers: list[tuple[str, str]] = []
        self.response_headers: list[tuple[str, str]] = []
        self.path = "/"
        self.offered_extensions: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.ending_logged = False
        self.remote_address: Any = None
        self.started = time.monotonic()
        self._drain_waiter: asyncio.Future[None] | None = None
        self._pings: dict[bytes, tuple[asyncio.Future[float], float]] = {}
        self._ping_counter = 0
        self._keepalive: asyncio.Task[None] | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._eof_cause: str | None = None
        self._eof_detail = ""
        # What the transport reported when it was lost (a TLS alert, a reset), for
        # diagnoses that need more than the ending's cause.
        self.lost_error: BaseException | None = None
        # Bytes that arrive before the core is attached (handshake phase) go to this hook,
        # or wait in _early until the hook is installed.
        self._handshake_receiver: Any = None
        self._early = bytearray()

    # ------------------------------------------------------------ life cycle

    def attach(self, core: Connection, leftover: bytes) -> None:
        """Switch from the opening handshake to frames; feed bytes that came with the 101."""
        self.core = core
        core.defer_failure = True
        self._handshake_receiver = None
        if self.ping_interval is not None:
            self._keepalive = self._loop.create_task(self._keepalive_loop())
        if leftover:
            self.data_received(leftover)  # bytes from the handshake parser, not our buffer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses but offer the same API.
        self.transport = cast(asyncio.Transport, transport)
        transport = self.transport
        transport.set_write_buffer_limits(high=self.write_limit)
        if self.remote_address is None:  # a server knows it from accept()
            self.remote_address = transport.get_extra_info("peername")

    def _after_receive(self, core: Connection) -> None:
        """After a read that left the core something to do: answer, fail or close."""
        if core.has_data_to_send:
            self._write(core.data_to_send())
        if core.failure_pending:
            # The peer broke the protocol. Messages that came before the violation were
            # just delivered: let the tasks waiting for them run first (this callback is
            # queued after their wake-ups), so that their replies precede our Close frame.
            self._loop.call_soon(self._commit_failure)
        elif core.should_close_transport:
            self._close_transport_soon()

    def data_received(self, data: bytes | memoryview) -> None:
        if self.core is None:
            if self._handshake_receiver is not None:
                self._handshake_receiver(bytes(data))
            else:
                self._early += data
            return
        # Bytes that did not come through our buffer (those read with the 101): copy them
        # in, a buffer at a time, so that frames have one path. The core copies out what
        # it keeps before buffer_updated() returns, so the buffer is free again after each.
        view = self._rview
        size = len(view)
        with memoryview(data) as src:
            for start in range(0, len(src), size):
                chunk = src[start : start + size]
                view[: len(chunk)] = chunk
                self.buffer_updated(len(chunk))

    def _commit_failure(self) -> None:
        core = self.core
        if core is None or not core.failure_pending or self._closed.done():
            return
        core.commit_failure()
        self._write(core.data_to_send())
        self._close_transport_soon()

    def eof_received(self) -> bool | None:
        return None  # close the transport: a WebSocket never half-closes

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost_error = exc
        cause = self._eof_cause
        detail = self._eof_detail
        if cause is None and exc is not None:
            cause = _EOF_CAUSES.get(type(exc))
            detail = detail or str(exc)
        if self.core is not None:
            ending = self.core.receive_eof(cause, detail)
        else:
            ending = Ending(code=1006, cause=cause or "tcp.closed", initiator="remote", detail=detail)
        ending = ending.with_role("client" if self.is_client else "server")
        if self._close_timer is not None:
            self._close_timer.cancel()
        if self._keepalive is not None:
            self._keepalive.cancel()
        for fut, _ in self._pings.values():
            if not fut.done():
                fut.set_exception(closed_exception(ending))
        self._pings.clear()
        for waiter in (self._recv_waiter, self._drain_waiter):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        self._recv_waiter = self._drain_waiter = None
        if not self._closed.done():
            self._closed.set_result(ending)
        if self._handshake_receiver is not None:
            self._handshake_receiver(None)

    def pause_writing(self) -> None:
        self._paused_writing = True

    def resume_writing(self) -> None:
        self._paused_writing = False
        waiter = self._drain_waiter
        if waiter is not None:
            self._drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # ----------------------------------------------------------- public API

    @property
    def ending(self) -> Ending | None:
        """How the connection ended, once it has; ``None`` while it is open."""
        return self._closed.result() if self._closed.done() else None

    @property
    def open(self) -> bool:
        return self.core is not None and self.core.close_sent is None and not self._closed.done()

    @property
    def closed(self) -> bool:
        return self._closed.done()

    async def wait_closed(self) -> Ending:
        """Wait until the connection has ended; returns its ending."""
        return await asyncio.shield(self._closed)

    def _unusual_waiter(self) -> asyncio.Future[Any]:
        """What recv() awaits when the usual case does not hold; raises once no message can come."""
        if self._listener is not None:
            raise RuntimeError("messages go to the listener set with listen(), not to recv()")
        if self._closed.done():
            raise closed_exception(self._closed.result())
        if self.core is not None and self.core.close_received is not None:
            return asyncio.shield(self._closed)
        if self._recv_waiter is not None:
            raise RuntimeError("recv() is already being awaited by another task")
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._recv_waiter = waiter
        return waiter

    def _resume_if_drained(self) -> None:
        """Resume reading, paused at ``max_queue`` messages, once the queue is down to a quarter."""
        if len(self._messages) <= (self.max_queue or 0) // 4:
            self._paused_reading = False
            if self.transport is not None and not self._closed.done():
                self.transport.resume_reading()

    def _core_for_send_now(self) -> Connection:
        """send_now()'s slow path: the core when it may still send, or ConnectionClosed."""
        core = self._sendable_core()
        if core is None:
            ending = self._closed.result() if self._closed.done() else None
            raise closed_exception(ending or core_ending(self.core))
        return core

    @property
    def writing_paused(self) -> bool:
        """True while the transport's write buffer is above ``write_limit`` (see send_now)."""
        return self._paused_writing

    def listen(self, on_message: Callable[[Data], object]) -> None:
        """Hand every received message to ``on_message`` as it arrives: the hot-path API.

        Instead of queueing messages for :meth:`recv` (a task switch per message), the
        callback runs inside the transport's read callback, once per message, in order;
        messages already queued are handed over first. It must not block; it may answer
        with :meth:`send_now`. ``recv()`` and ``async for`` raise RuntimeError from then
        on, and ``max_queue`` no longer applies (nothing is queued). An exception in the
        callback fails the connection with 1011 (cause ``handler.error``). The ending
        is still awaited with :meth:`wait_closed`.
        """
        self._listener = on_message
        messages = self._messages
        while messages:
            if not self._deliver(on_message, messages.popleft()):
                return
        if self._paused_reading:
            self._paused_reading = False
            if self.transport is not None and not self._closed.done():
                self.transport.resume_reading()

    def _deliver(self, listener: Callable[[Data], object], message: Data) -> bool:
        """Call the listener; on an exception fail the connection with 1011 and return False."""
        try:
            listener(message)
        except Exception as exc:
            self._listener_failed(exc)
            return False
        return True

    def _listener_failed(self, exc: Exception) -> None:
        """The listener raised: log it, drop further messages and fail the connection with 1011."""
        self.logger.error("listener failed on %s: %r", self.remote_address, exc, exc_info=exc)
        self._listener = _drop
        core = self.core
        if core is not None and not self._closed.done():
            core.fail(1011, "handler.error", f"{type(exc).__name__}: {exc}")
            if core.has_data_to_send:
                self._write(core.data_to_send())
            self._close_transport_soon()

    async def send_fragments(self, fragments: Sequence[str] | Sequence[bytes]) -> None:
        """Send one message as several frames (for streaming and for testing peers)."""
        core = self._sendable_core()
        if core is None:
            raise await self._closed_error()
        if not fragments:
            raise ValueError("send_fragments() needs at least one fragment")
        text = isinstance(fragments[0], str)
        opcode = 1 if text else 2
        self.messages_out += 1
        last = len(fragments) - 1
        self._fragmenting = True
        try:
            await self._send_fragments(core, fragments, text, opcode, last)
        finally:
            self._fragmenting = False

    async def _send_fragments(
        self, core: Connection, fragments: Sequence[str] | Sequence[bytes], text: bool, opcode: int, last: int
    ) -> None:
        for i, fragment in enumerate(fragments):
            payload = fragment.encode() if isinstance(fragment, str) else bytes(cast(bytes, fragment))
            if isinstance(fragment, str) is not text:
                raise TypeError("all fragments must be str or all bytes")
            if core.close_sent is not None:
                raise await self._closed_error()
            self._write(core.send_frame(opcode if i == 0 else 0, payload, fin=i == last))
            if self._paused_writing:
                await self._drain()

    def add_close_callback(self, callback: Callable[[WebSocketConnection], object]) -> None:
        """Call ``callback(self)`` once the connection has ended (at once if it already has).

        Rooms use it to forget their members without a task per connection.
        """
        self._closed.add_done_callback(lambda _: callback(self))

    async def ping(self, data: bytes | None = None) -> float:
        """Send a Ping and wait for its Pong; returns the round-trip time in seconds."""
        core = self._sendable_core()
        if core is None:
            raise await self._closed_error()
        if data is None:
            self._ping_counter += 1
            data = struct.pack("!I", self._ping_counter) + os.urandom(4)
        if data in self._pings:
            raise ValueError("a ping with this payload is already waiting for its pong")
        fut: asyncio.Future[float] = self._loop.create_future()
        self._pings[data] = (fut, time.perf_counter())
        self._write(core.send_ping(data))
        return await fut

    async def pong(self, data: bytes = b"") -> None:
        """Send an unsolicited Pong (a one-way heartbeat)."""
        core = self._sendable_core()
        if core is None:
            raise await self._closed_error()
        self._write(core.send_pong(data))

    async def close(self, code: int = 1000, reason: str = "") -> Ending:
        """Start the close handshake and wait, bounded by ``close_timeout``, for it to end.

        Returns the ending. Closing an already closed connection returns its ending.
        Codes that cannot be sent (1005, 1006, 1015, ...) raise InvalidCloseCode.
        """
        core = self.core
        if core is not None and core.close_sent is None and not self._closed.done():
            self._write(core.send_close(code, reason))
            self._arm_close_timer()
        elif core is None and self.transport is not None:
            self.transport.close()
        return await asyncio.shield(self._closed)

    async def fail(self, code: int, cause: str, detail: str = "") -> Ending:
        """End the connection from our side for a reason of ours (keepalive, a handler error)."""
        core = self.core
        if core is not None and not self._closed.done():
            core.fail(code, cause, detail)
            if core.has_data_to_send:
                self._write(core.data_to_send())
            self._close_transport_soon()
        return await asyncio.shield(self._closed)

    def local_close_with_cause(self, code: int, reason: str, cause: str, detail: str = "") -> None:
        """Send a Close frame whose ending carries ``cause`` (server shutdown, 1010)."""
        core = self.core
        if core is not None and core.close_sent is None and not self._closed.done():
            self._write(core.send_close(code, reason, cause=cause, detail=detail))
            self._arm_close_timer()

    # ------------------------------------------------------------ internals

    def _sendable_core(self) -> Connection | None:
        """The core when sending is allowed, None once the close handshake has started."""
        core = self.core
        if core is None:
            raise RuntimeError("the opening handshake is not complete")
        if core.close_sent is not None or self._closed.done():
            return None
        return core

    async def _closed_error(self) -> ConnectionClosed:
        """The exception for a send after closing: waits (bounded) for the final ending."""
        return closed_exception(await asyncio.shield(self._closed))

    def _write(self, data: bytes) -> None:
        self._flush_pending()  # data frames held back go first, in order
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    async def _drain(self) -> None:
        if self._closed.done():
            raise closed_exception(self._closed.result())
        waiter = self._drain_waiter
        if waiter is None:
            waiter = self._drain_waiter = self._loop.create_future()
        await asyncio.shield(waiter)
        if self._closed.done() and self.core is not None and self.core.close_sent is None:
            raise closed_exception(self._closed.result())

    def _pong(self, payload: bytes) -> None:
        entry = self._pings.get(payload)
        if entry is None:
            return  # unsolicited pong
        now = time.perf_counter()
        # A Pong acknowledges its Ping and every Ping sent before it (RFC 6455 5.5.3).
        for key in list(self._pings):
            fut, sent_at = self._pings.pop(key)
            if not fut.done():
                fut.set_result(now - sent_at)
            if key == payload:
                break

    def _close_received(self) -> None:
        # Our answering Close is already queued by the core. The server closes TCP now;
        # a client gives the server close_timeout to do it.
        self._arm_close_timer()

    def _arm_close_timer(self) -> None:
        if self._close_timer is None and not self._closed.done():
            self._close_timer = self._loop.call_later(self.close_timeout, self._close_timed_out)

    def _close_timed_out(self) -> None:
        if self.transport is not None and not self._closed.done():
            core = self.core
            if core is not None and core.close_received is None:
                self._eof_cause = "close.timeout"
                self._eof_detail = f"no Close frame from the peer within {self.close_timeout:g} s"
            # abort(), not close(): close() waits for the write buffer to drain, which
            # never happens when the peer stopped reading.
            self.transport.abort()

    def _close_transport_soon(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        core = self.core
        if self.is_client and core is not None and not core.failed:
            # RFC 6455 7.1.1: the server closes the TCP connection first.
            self._arm_close_timer()
            return
        self._flush_pending()
        transport.close()
        # close() only flushes what is buffered; a peer that stopped reading would keep
        # the connection, and its buffers, forever. The close timer aborts it.
        self._arm_close_timer()

    def _unsent_bytes(self) -> int:
        transport = self.transport
        if transport is None or transport.is_closing():
            return 0
        try:
            return int(transport.get_write_buffer_size())
        except (AttributeError, RuntimeError):  # pragma: no cover - a transport without the API
            return 0

    def _abort_stalled(self, detail: str) -> None:
        """End a connection whose peer stopped reading: nothing more can reach it, not even a Close frame."""
        core = self.core
        if core is None or self._closed.done():
            return
        unsent = self._unsent_bytes()
        core.fail(1011, "write.stalled", f"{detail}; {unsent} bytes were still waiting to be sent")
        core.data_to_send()  # the Close frame could not get through either: drop it
        self.logger.debug("write stalled: %s; aborting", detail)
        assert self.transport is not None
        self.transport.abort()

    async def _keepalive_loop(self) -> None:
        assert self.ping_interval is not None
        try:
            while True:
                await asyncio.sleep(self.ping_interval)
                if not self.open:
                    return
                try:
                    if self.ping_timeout is None:
                        await self.ping()
                    else:
                        await asyncio.wait_for(self.ping(), self.ping_timeout)
                except TimeoutError:
                    self.logger.debug("keepalive: no pong within %s s", self.ping_timeout)
                    if self._paused_writing or self._unsent_bytes() > 0:
                        # Our writes are not draining (the kernel's buffers are full): the peer
                        # stopped reading, and a Close frame queued behind them would never arrive.
                        self._abort_stalled(f"no Pong within {self.ping_timeout:g} s of a keepalive Ping")
                        await asyncio.shield(self._closed)
                        return
                    await self.fail(
                        1011,
                        "keepalive.timeout",
                        f"no Pong within {self.ping_timeout:g} s of a keepalive Ping",
                    )
                    return
                except ConnectionClosed:
                    return
        except asyncio.CancelledError:
            pass


def _drop(message: Data) -> None:
    """The listener after a listener failed: the connection is closing, messages are dropped."""


def core_ending(core: Connection | None) -> Ending:
    """The ending so far, for a send_now() while the close handshake is still under way.

    send_now() cannot wait for the final ending as send() does; this one says who
    started closing and with which code, which is what the caller needs to stop sending.
    """
    if core is not None and core.ending is not None:
        return core.ending
    sent = core.close_sent if core is not None else None
    received = core.close_received if core is not None else None
    remote = core is not None and core.received_first is True
    frame = received if remote else sent
    return Ending(
        code=frame.code if frame is not None and frame.code is not None else 1006,
        cause="closed.by_peer" if remote else "closed.locally",
        initiator="remote" if remote else "local",
        sent=sent,
        received=received,
        detail="the close handshake is under way",
    )
