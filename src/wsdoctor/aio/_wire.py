"""The per-message half of an open connection: read callback, queue or listener, async for, send.

Theory of operation
-------------------
:class:`WebSocketConnection` is the transport's protocol. Its per-message methods live
here, in a base class, because this module is compiled like the protocol core (Cython,
with ``_wire.pxd`` declaring the types, into ``wsdoctor.aio._wire_c``; see setup.py):
compiled, the base is an extension type, so uvloop calls ``get_buffer`` and
``buffer_updated`` on a C type, the fields below are C struct members rather than
attribute lookups, and the core's receive and send paths are called directly instead of
through Python method calls. That is the difference between a compiled core under a
Python connection (about 1 µs of interpreter work per message, which a compiler cannot
remove from a plain Python class) and a compiled path end to end.

Everything that is not per message (control frames, failures, closing, logging) stays in
:class:`WebSocketConnection`, reached through the hooks at the end of the class, which it
overrides. Without the extension (no compiler, ``WSDOCTOR_NO_SPEEDUPS=1``, or a core that
is not compiled either) this same class runs as Python; it then reaches the core only
through members the compiled core also shows to Python (``_receive``, ``_plain``, ``_out``,
``_failure`` are public in ``_connection.pxd``), since a stale or missing extension can leave
this module in Python in front of a compiled core.
"""

from __future__ import annotations

import collections
import os
from asyncio import InvalidStateError
from typing import TYPE_CHECKING, Any

from wsdoctor.protocol._errors import ConnectionClosed
from wsdoctor.protocol._events import CloseReceived, Pong
from wsdoctor.protocol._mask import try_send, try_sendv

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable, Iterable

    # Under another name: the .pxd cimports the compiled Connection as Connection.
    from wsdoctor.protocol._connection import Connection as Core
    from wsdoctor.protocol._ending import Ending

__all__ = ["COMPILED", "LARGE", "Data", "WireProtocol", "write_plain"]

Data = str | bytes  # a message: text or binary

# From this size a message's payload is written as it is, after its header, rather than
# copied into a frame (see _send): below it, the copy costs less than a second buffer.
LARGE = 1 << 15
# Below this size a message that may go straight to the socket is still copied into one frame,
# for send(2): on loopback, sendmsg(2) of a header and a payload costs the kernel about 130 ns
# more than send(2) of one buffer, more than allocating and copying up to 1 KiB; from 4 KiB
# the two are even, and from 16 KiB the copy costs more (bench/send_calls.c).
WHOLE_BELOW = 1 << 11


class WireProtocol:
    """The fields and methods of a connection that run for every message."""

    __slots__ = (
        "_closed",
        "_fd",
        "_fragmenting",
        "_into_sink",
        "_listener",
        "_loop",
        "_messages",
        "_paused_reading",
        "_paused_writing",
        "_pending",
        "_rbuf",
        "_recv_waiter",
        "_rview",
        "_tr_buffered",
        "_tr_is_closing",
        "_tr_write",
        "_transport",
        "core",
        "is_client",
        "max_queue",
        "messages_in",
        "messages_out",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        is_client: bool,
        rview: memoryview,
        closed: asyncio.Future[Ending],
        max_queue: int | None,
    ) -> None:
        self._loop = loop
        self.is_client = is_client
        self.core: Core | None = None
        self._transport: asyncio.Transport | None = None
        self._tr_write: Callable[[bytes | memoryview], object] = _unconnected_write
        self._tr_is_closing: Callable[[], bool] = _unconnected_is_closing
        # The socket a frame may go out on directly (see _write_now); -1 for none, -2 until
        # the first frame looks it up (see _direct_socket).
        self._fd = -1
        self._tr_buffered: Callable[[], int] = _nothing_buffered
        self.max_queue = max_queue
        # For the one-line log of each connection: two integers, no per-message object.
        self.messages_in = 0
        self.messages_out = 0
        self._messages: collections.deque[Data] = collections.deque()
        self._recv_waiter: asyncio.Future[None] | None = None
        self._paused_reading = False
        self._paused_writing = False
        self._fragmenting = False  # send_fragments() is between its first and last frame
        self._listener: Callable[[Data], object] | None = None
        self._closed = closed
        # The transport reads into the thread's shared buffer; the core parses it in
        # place and copies out only what it keeps.
        self._rview = rview
        # The same buffer, given to the core as the bytearray (which it reads in C).
        self._rbuf: bytearray = rview.obj  # type: ignore[assignment]
        self._into_sink = False  # the last get_buffer() was the core's sink_view()
        # Frames held back to leave in one write (see _flush_pending); None when not corked.
        self._pending: list[bytes] | None = None

    @property
    def transport(self) -> asyncio.Transport | None:
        """The transport, once connected (after a proxy's TLS, the TLS transport)."""
        return self._transport

    @transport.setter
    def transport(self, transport: asyncio.Transport | None) -> None:
        # Its write() and is_closing() are bound here, once: looking a method up on the
        # transport for every message cost more than calling it.
        self._transport = transport
        if transport is None:
            self._tr_write, self._tr_is_closing = _unconnected_write, _unconnected_is_closing
        else:
            self._tr_write, self._tr_is_closing = transport.write, transport.is_closing
        self._fd = -1 if transport is None else -2
        self._tr_buffered = _nothing_buffered

    def _direct_socket(self) -> int:
        """The socket for direct sends, looked up at the first frame rather than when the
        transport is set: a connection that never sends never asks uvloop for its socket (one
        more system call and a Python object during the opening handshake)."""
        transport = self._transport
        fd = self._fd = _direct_fd(transport)
        if fd >= 0:
            assert transport is not None
            self._tr_buffered = transport.get_write_buffer_size
        return fd

    def _write_now(self, data: bytes) -> None:
        """Write a frame: straight to the socket when the transport holds nothing, else through it.

        What picows does, and for the same reason: uvloop's write() spends about 500
        instructions per frame more on its buffer bookkeeping than this check and send
        together, and its write(2) takes a longer way through the kernel than send(2). Only with nothing
        buffered in the transport (so nothing can be reordered) and only while it is not
        closing (so the socket is still this connection's); whatever the kernel does not
        take at once, and every error, goes to the transport as before.
        """
        fd = self._fd
        if fd == -2:
            fd = self._direct_socket()
        if fd >= 0 and not self._tr_buffered():
            sent = try_send(fd, data)
            if sent == len(data):
                return
            if sent > 0:
                self._tr_write(memoryview(data)[sent:])
                return
        self._tr_write(data)

    def get_buffer(self, sizehint: int) -> memoryview:
        # The rest of a large frame goes straight into the bytes object it will be
        # delivered as (the core's PayloadSink); everything else into the shared buffer.
        core = self.core
        if core is not None and core._sink is not None:
            view = core.sink_view()
            if view is not None:
                self._into_sink = True
                return view
        self._into_sink = False
        return self._rview

    def buffer_updated(self, nbytes: int) -> None:
        # One call from the transport, the core's parse, then each message queued (or
        # handed to the listener) in the same call.
        core = self.core
        if core is None:
            self.data_received(self._rview[:nbytes])
            return
        # core.receive_plain() written out, so that the compiled class calls the core's C method.
        core._plain = True  # a data message comes as its str or bytes
        if self._into_sink:
            self._into_sink = False
            events = core.sink_received(nbytes)
        else:
            events = core._receive(self._rbuf, nbytes)
        if events:
            messages = self._messages
            listener = self._listener
            # Several messages from one read: what the listener sends in answer leaves in one
            # write after the last of them, not one system call per answer.
            corked = listener is not None and len(events) > 1 and self._pending is None
            if corked:
                self._pending = []
            try:
                for event in events:
                    if type(event) is bytes or type(event) is str:
                        self.messages_in += 1
                        if listener is None:
                            messages.append(event)
                            continue
                        try:
                            listener(event)
                        except Exception as exc:
                            self._listener_failed(exc)
                            break
                    elif type(event) is Pong:
                        self._pong(event.payload)
                    elif type(event) is CloseReceived:
                        self._close_received()
            finally:  # whatever happens, nothing stays held back
                if corked:
                    self._flush_pending()
            waiter = self._recv_waiter
            if waiter is not None and messages:
                self._recv_waiter = None
                # Not contextlib.suppress, nor done() first: each costs a call per message.
                try:  # noqa: SIM105
                    waiter.set_result(None)
                except InvalidStateError:  # its task was cancelled meanwhile
                    pass
            if self.max_queue is not None and len(messages) >= self.max_queue and not self._paused_reading:
                self._paused_reading = True
                transport = self._transport
                if transport is not None:
                    transport.pause_reading()
        # What has_data_to_send, failure_pending and should_close_transport look at, read
        # directly: a Pong or Close to answer, a violation, a Close received.
        if core._out or core._failure is not None or core.close_received is not None:
            self._after_receive(core)

    def send_now(self, message: Data | bytearray | memoryview) -> None:
        """Send one message at once, without waiting: the sending half of the listener API.

        For callbacks (see :meth:`listen`), which cannot await. It does not wait while
        the peer reads slower than we write: check :attr:`writing_paused` and slow down
        when it is True, or the transport's buffer grows. Raises
        :class:`ConnectionClosed` once the connection is closing or closed.
        """
        core = self.core
        # The core's ending is set when the transport is lost, with the connection's own.
        if core is None or core.close_sent is not None or core.ending is not None:
            core = self._core_for_send_now()
        self._send(core, message, "send_now")

    async def recv(self) -> Data:
        """The next message: ``str`` for text, ``bytes`` for binary.

        Raises :class:`ConnectionClosedOK` or :class:`ConnectionClosedError` (with the
        ending) once the connection has ended and every received message was read.
        """
        messages = self._messages
        while not messages:
            waiter = self._message_waiter()
            try:
                await waiter
            finally:
                if self._recv_waiter is waiter:
                    self._recv_waiter = None
        message = messages.popleft()
        if self._paused_reading:
            self._resume_if_drained()
        return message

    def _message_waiter(self) -> asyncio.Future[Any]:
        """What recv() and ``async for`` await when no message is queued.

        The usual case, an open connection with no other reader, is decided here; the
        others (a listener, a Close received, the end, a second reader) by the hook.
        """
        core = self.core
        if (
            self._recv_waiter is None
            and self._listener is None
            and core is not None
            and core.close_received is None
            and core.ending is None  # set before _closed is, when the transport is lost
        ):
            waiter: asyncio.Future[Any] = self._loop.create_future()
            self._recv_waiter = waiter
            return waiter
        return self._unusual_waiter()

    def __aiter__(self) -> WireProtocol:
        return self

    async def __anext__(self) -> Data:
        """The next message for ``async for``, which ends quietly on a normal closure.

        A method rather than an async generator, and recv()'s loop written out rather
        than awaited: one coroutine per message, not a generator frame, its awaitable
        wrappers and a second coroutine.
        """
        messages = self._messages
        while not messages:
            try:
                waiter = self._message_waiter()
            except ConnectionClosed as exc:
                if exc.ending.ok:
                    raise StopAsyncIteration from None
                raise
            try:
                await waiter
            finally:
                if self._recv_waiter is waiter:
                    self._recv_waiter = None
        message = messages.popleft()
        if self._paused_reading:
            self._resume_if_drained()
        return message

    async def send(self, message: Data | bytearray | memoryview) -> None:
        """Send one message; waits while the peer reads slower than we write.

        Raises :class:`ConnectionClosed` once the connection is closing or closed.
        """
        core = self.core
        if core is None or core.close_sent is not None or core.ending is not None:
            core = self._sendable_core()  # raises before the opening handshake is complete
            if core is None:
                raise await self._closed_error()
        if self._messages and self._pending is None:
            # More messages are queued, so the handler is likely to answer them too before it
            # waits: hold its frames back and write them together, once the queue is empty or
            # at the loop's next turn, whichever comes first.
            self._pending = []
            self._loop.call_soon(self._flush_pending)
        self._send(core, message, "send")
        if self._pending is not None and not self._messages:
            self._flush_pending()
        if self._paused_writing:
            await self._drain()

    def _flush_pending(self) -> None:
        """Write the frames held back (see send() and buffer_updated()) in one write."""
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        if pending and not self._tr_is_closing():
            self._write_now(pending[0] if len(pending) == 1 else b"".join(pending))

    def _send(self, core: Core, message: Data | bytearray | memoryview, name: str) -> None:
        """What send() and send_now() share: one message to the transport."""
        # core.send_binary() and send_text() written out, for the compiled class's direct call.
        payload: bytes | bytearray | memoryview
        if type(message) is bytes:
            opcode, payload = 2, message
        elif type(message) is str:
            opcode, payload = 1, message.encode()
        elif isinstance(message, bytearray | memoryview):
            opcode, payload = 2, message
        elif isinstance(message, str):
            opcode, payload = 1, message.encode()
        else:
            raise TypeError(f"{name}() takes str or bytes, not {type(message).__name__}")
        # The message leaves as its header and the payload itself rather than copied into a
        # frame when the payload is bytes (which cannot change while the transport still holds
        # it; a bytearray could) and the frame is neither masked nor compressed: when it may go
        # straight to the socket now and is not small (one sendmsg, see _write_parts and
        # WHOLE_BELOW), or when it is large (one writelines(): one system call on uvloop;
        # asyncio's transports join the two). A small frame held back with others (see
        # _flush_pending) is built whole: they are joined anyway.
        head = None
        n = len(payload)
        if type(payload) is bytes and ((n >= WHOLE_BELOW and self._fd != -1 and self._pending is None) or n >= LARGE):
            head = core.header_for(opcode, payload)  # None when the frame must be built whole
        if head is None:
            data = core._send_message(opcode, payload)
        else:
            assert isinstance(payload, bytes)  # what header_for() was given
            data = payload
        self.messages_out += 1
        if self._tr_is_closing():  # True without a transport
            return
        pending = self._pending
        if head is None:
            if pending is None:
                self._write_now(data)
            else:
                pending.append(data)
        elif pending is None:
            self._write_parts(head, data)
        elif len(data) < LARGE:
            pending.append(head + data)
        else:
            self._flush_pending()
            self._write_parts(head, data)
            self._pending = []  # still corked, in order

    def _write_parts(self, head: bytes, payload: bytes) -> None:
        """Write a frame given as its header and payload; _write_now() without joining them."""
        fd = self._fd
        if fd == -2:
            fd = self._direct_socket()
        sent = -1
        if fd >= 0 and not self._tr_buffered():
            sent = try_sendv(fd, head, payload)
            if sent == len(head) + len(payload):
                return
        transport = self._transport
        assert transport is not None  # is_closing() said False
        if sent <= 0:
            transport.writelines((head, payload))
        elif sent < len(head):
            transport.writelines((head[sent:], payload))
        else:
            self._tr_write(memoryview(payload)[sent - len(head) :])

    def send_prepared(self, frame: bytes | None, message: Data | None = None) -> bool:
        """Write a data frame built once for many connections, without waiting.

        ``frame`` is a complete unmasked frame (what a server sends). A client's
        connection, which must mask every frame, and a connection whose compressor keeps
        its context between messages build their own from ``message`` instead (pass
        ``frame=None``). Returns False, writing nothing, when the connection is not open,
        is in the middle of a fragmented message, or its write buffer is above
        ``write_limit``: a slow reader misses the message rather than holding up the
        others. This is what :func:`wsdoctor.broadcast` calls.
        """
        core = self.core
        if (
            core is None
            or core.close_sent is not None
            or core.ending is not None
            or self._paused_writing
            or self._fragmenting
            or self._tr_is_closing()
        ):
            return False
        if frame is None or self.is_client:
            if message is None:
                raise ValueError("this connection builds its own frame: pass the message")
            frame = core.send_text(message) if isinstance(message, str) else core.send_binary(message)
        pending = self._pending
        if pending is None:
            self._write_now(frame)
        else:
            pending.append(frame)  # after what this connection already holds back
        return True

    # Hooks for what is not per message; WebSocketConnection defines them.

    def data_received(self, data: bytes | memoryview) -> None:
        raise NotImplementedError

    def _listener_failed(self, exc: Exception) -> None:
        raise NotImplementedError

    def _pong(self, payload: bytes) -> None:
        raise NotImplementedError

    def _close_received(self) -> None:
        raise NotImplementedError

    def _after_receive(self, core: Core) -> None:
        raise NotImplementedError

    def _core_for_send_now(self) -> Core:
        raise NotImplementedError

    def _sendable_core(self) -> Core | None:
        raise NotImplementedError

    async def _closed_error(self) -> ConnectionClosed:
        raise NotImplementedError

    async def _drain(self) -> None:
        raise NotImplementedError

    def _unusual_waiter(self) -> asyncio.Future[Any]:
        raise NotImplementedError

    def _resume_if_drained(self) -> None:
        raise NotImplementedError


def _unconnected_is_closing() -> bool:
    """is_closing() until there is a transport: nothing can be written yet."""
    return True


def _unconnected_write(data: bytes | memoryview) -> None:
    """write() until there is a transport; never reached, since is_closing() says True."""


def _nothing_buffered() -> int:
    """get_write_buffer_size() where frames never go to the socket directly; never called."""
    return 0


# Transport classes seen so far, by whether frames may go to their socket directly: a type's
# __name__ and __module__ cost more to look up than a set does, once per connection.
_DIRECT_KINDS: set[type] = set()
_OTHER_KINDS: set[type] = set()


def _direct_fd(transport: asyncio.Transport | None) -> int:
    """The socket under ``transport`` when frames may be sent on it directly, else -1.

    Only uvloop's plain TCP transport: under TLS the socket carries records, not frames, and
    asyncio's own transport already sends directly when its buffer is empty.
    """
    kind = type(transport)
    if kind not in _DIRECT_KINDS:
        if kind in _OTHER_KINDS:
            return -1
        if kind.__name__ != "TCPTransport" or kind.__module__ != "uvloop.loop":
            _OTHER_KINDS.add(kind)
            return -1
        _DIRECT_KINDS.add(kind)
    assert transport is not None
    sock = transport.get_extra_info("socket")
    try:
        return -1 if sock is None else int(sock.fileno())
    except (OSError, ValueError):  # pragma: no cover - a socket already closed
        return -1


def write_plain(connections: Iterable[Any], frame: bytes, rest: list[Any]) -> tuple[int, int]:
    """Write ``frame`` to every open server connection without compression: broadcast's common case.

    Returns how many got it and how many were skipped (see ``send_prepared``); the others
    (clients, which mask, compressing connections, anything that is not a connection)
    are appended to ``rest`` for the caller to handle. Compiled, the loop and each
    connection's checks are C, which is what a broadcast to thousands pays per connection.
    """
    sent = skipped = 0
    for ws in connections:
        if not isinstance(ws, WireProtocol):
            rest.append(ws)
            continue
        conn = ws
        core = conn.core
        if core is None or conn.is_client or core.deflate is not None:
            rest.append(ws)
        elif conn.send_prepared(frame):
            sent += 1
        else:
            skipped += 1
    return sent, skipped


def _compiled_is_usable() -> bool:
    """The extension exists, was built from this file as it is now, and the core is compiled too."""
    from wsdoctor.protocol._connection import COMPILED as CORE_COMPILED

    if not CORE_COMPILED or __name__ != "wsdoctor.aio._wire" or os.environ.get("WSDOCTOR_NO_SPEEDUPS"):
        return False
    from wsdoctor._compiled import current_build

    return current_build("wsdoctor.aio._wire_c", __file__, "compiled connection", "aio/_wire.py") is not None


# The compiled class replaces the one above (see the module docstring); the test suite
# runs both ways.
COMPILED = False
if not TYPE_CHECKING and _compiled_is_usable():  # pragma: no cover - covered by the default run, not the pure one
    from wsdoctor.aio._wire_c import WireProtocol, write_plain

    COMPILED = True
