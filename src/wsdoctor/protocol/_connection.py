"""The WebSocket connection state machine, sans I/O.

Theory of operation
-------------------
A :class:`Connection` starts after the opening handshake, in the OPEN state. The I/O
layer feeds it every byte it reads (:meth:`Connection.receive_data`) and gets back
events; it asks it for the bytes of every frame it wants to send (``send_text``,
``send_binary``, ``send_ping``, ``send_close``...) and writes them. Replies the protocol
requires (a Pong for a Ping, the Close frame that answers a Close) are queued by the
core itself and collected with :meth:`Connection.data_to_send`.

Receiving works on one buffer. A frame header is read in place; when the whole frame
is there (the common case for small messages) the payload is unmasked, checked and
turned into an event without further copies. When only part of a data frame has
arrived, the part that is there is processed at once: unmasked, inflated, and checked
as UTF-8, so invalid text fails on its first bad byte rather than at the end of a
long frame, and the buffer never holds more than one frame header plus one read.

Every violation by the peer raises :class:`ProtocolError` internally, carrying the
close code to answer with (1002, 1007, 1009) and a stable cause id. At the
``receive_data`` boundary that error *fails the connection*: the Close frame is
queued, nothing more is read, and the I/O layer is told to close the transport
(:attr:`Connection.should_close_transport`). When the transport is gone the I/O
layer calls :meth:`Connection.receive_eof`, and the core folds everything it saw
(frames sent and received, their order, the failure) into one :class:`Ending`.
"""

from __future__ import annotations

import codecs
import enum
import os
import struct
from typing import TYPE_CHECKING, Any

from wsdoctor.knowledge import is_sendable
from wsdoctor.protocol._ending import CloseFrame, Ending, Initiator
from wsdoctor.protocol._errors import InvalidCloseCode, LocalProtocolError, ProtocolError
from wsdoctor.protocol._events import BinaryMessage, CloseReceived, Event, Ping, Pong, TextMessage
from wsdoctor.protocol._mask import PayloadSink, apply_mask, frame, header, payload_at

if TYPE_CHECKING:
    from wsdoctor.protocol._deflate import PerMessageDeflate

__all__ = ["COMPILED", "Connection", "Opcode", "State", "unmasked_frame"]


class Opcode(enum.IntEnum):
    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


class State(enum.Enum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


# Looked up once: an enum member read through its class costs more than a frame header.
_CLOSED = State.CLOSED

_OP_CONT, _OP_TEXT, _OP_BINARY = 0x0, 0x1, 0x2
_OP_CLOSE, _OP_PING, _OP_PONG = 0x8, 0x9, 0xA
_KNOWN_OPCODES = frozenset((0x0, 0x1, 0x2, 0x8, 0x9, 0xA))

_unpack_u64 = struct.Struct("!Q").unpack_from

_Utf8Decoder = codecs.getincrementaldecoder("utf-8")

# A binary message in one frame of at least _SINK_MIN bytes that has not all arrived is
# received into its final bytes object (a PayloadSink) rather than assembled from pieces
# afterwards: one copy of the payload instead of two, and no allocation per read. The whole
# length is allocated at the header, uninitialised, so a page costs memory only once data
# lands in it; max_size bounds that length, and _SINK_MAX bounds it when max_size is None
# (a longer frame is assembled as it arrives). Text keeps the incremental decoder, which
# fails a message at its first invalid byte rather than at its end.
_SINK_MIN = 1 << 14
_SINK_MAX = 1 << 24
# sink_view() offers the transport the rest of the payload to read into only while at least
# this much is missing: a read that stops at the frame's end cannot take the next frames
# with it, which for a small tail costs more than copying it.
_SINK_DIRECT = 1 << 14


# Masking keys must be unpredictable (RFC 6455 10.3): they come from os.urandom, but
# fetched 256 keys at a time, since one system call per frame cost more than the rest
# of building a small frame.
_KEYS_AT_ONCE = 1024
_keys = b""
_key_at = 0


def _masking_key() -> bytes:
    global _keys, _key_at
    at = _key_at
    if at + 4 > len(_keys):
        _keys = os.urandom(_KEYS_AT_ONCE)
        at = 0
    _key_at = at + 4
    return _keys[at : at + 4]


def unmasked_frame(opcode: int, payload: bytes | bytearray | memoryview, rsv1: bool = False) -> bytes:
    """One final, unmasked frame: what a server sends, identical for every connection.

    Broadcasting builds it once and writes the same bytes to each connection.
    """
    return frame((0xC0 if rsv1 else 0x80) | opcode, payload, None)


def _check_utf8_pending(decoder: codecs.IncrementalDecoder) -> None:
    """Fail fast on an encoded UTF-16 surrogate, the one case CPython's decoder buffers.

    CPython rejects every other invalid sequence at its first impossible byte, but
    holds ``ED A0``-``ED BF`` until a third byte arrives; RFC 3629 says those two bytes
    can already never start a valid character.
    """
    pending = decoder.getstate()[0]
    if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
        raise ProtocolError(1007, "utf8.invalid", "invalid UTF-8 in a text message (encoded surrogate)")


def _header(src: bytes | bytearray | memoryview, pos: int, n: int) -> int:
    """A frame header's first two bytes and its 16-bit length (0 until its bytes are here) in one int.

    ``b0 << 24 | b1 << 16 | length``. Compiled, the .pxd types the bytearray branch (the
    asyncio layer's read buffer and the core's own buffer, every read the package makes), so
    that these reads are C reads; indexing an untyped buffer costs a Python call per byte,
    more than the rest of a small frame's header. Other buffers (a sans-I/O caller's bytes or
    views) are indexed as they are.
    """
    if type(src) is bytearray:
        ba = src
        b1 = ba[pos + 1]
        word = ba[pos] << 24 | b1 << 16
        if (b1 & 0x7F) == 126 and n - pos >= 4:
            word |= ba[pos + 2] << 8 | ba[pos + 3]
        return word
    b1 = src[pos + 1]
    word = src[pos] << 24 | b1 << 16
    if (b1 & 0x7F) == 126 and n - pos >= 4:
        word |= src[pos + 2] << 8 | src[pos + 3]
    return word


class Connection:
    """One open WebSocket connection's protocol state, for either role.

    ``max_size`` bounds a whole message *after* inflation and ``max_frame_size`` one
    frame on the wire; ``None`` disables a bound (not recommended facing the internet).
    """

    def __init__(
        self,
        is_client: bool,
        *,
        deflate: PerMessageDeflate | None = None,
        max_size: int | None = 1 << 20,
        max_frame_size: int | None = None,
    ) -> None:
        self.is_client = is_client
        self.deflate = deflate
        self.max_size = max_size
        self.max_frame_size = max_frame_size
        self.state = State.OPEN
        self.close_sent: CloseFrame | None = None
        self.close_received: CloseFrame | None = None
        self.received_first: bool | None = None
        self.ending: Ending | None = None
        self._mask_bit = 0x80 if is_client else 0
        self._expect_masked = not is_client
        self._buf = bytearray()
        self._out = bytearray()
        self._failure: tuple[int, str, str] | None = None
        self._pending_close: bytes | None = None
        # When True, the Close frame that answers a peer's violation waits for
        # commit_failure(); when False (the default) data_to_send() includes it.
        self.defer_failure = False
        self._local_cause: str | None = None
        self._local_detail = ""
        # The message being received: opcode (0 = none), parts, size so far.
        self._msg_opcode = 0
        self._msg_compressed = False
        self._msg_size = 0
        self._msg_wire_size = 0
        self._parts: list[bytes] = []
        self._text_parts: list[str] = []
        self._decoder: codecs.IncrementalDecoder | None = None
        # The data frame whose payload is still arriving.
        self._frame_remaining = 0
        self._frame_fin = False
        self._frame_mask: bytes | None = None
        self._frame_offset = 0
        self._sink: PayloadSink | None = None  # that frame's payload, when it is a sink's
        self._plain = False  # set by receive_data / receive_plain for the call in progress

    # ------------------------------------------------------------------ sending

    def send_text(self, text: str) -> bytes:
        """The bytes of one text message."""
        return self._send_message(_OP_TEXT, text.encode())

    def send_binary(self, data: bytes | bytearray | memoryview) -> bytes:
        """The bytes of one binary message."""
        return self._send_message(_OP_BINARY, data)

    def _send_message(self, opcode: int, payload: bytes | bytearray | memoryview) -> bytes:
        self._check_sendable("a message")
        rsv1 = False
        if self.deflate is not None:
            compressed = self.deflate.compress(payload)
            if compressed is not None:
                payload, rsv1 = compressed, True
        return self._frame(opcode, payload, True, rsv1)

    def _check_sendable(self, what: str) -> None:
        """Refuse to build anything once our Close frame is out or the connection is closed."""
        if self.close_sent is not None or self.state is _CLOSED:
            raise LocalProtocolError(f"cannot send {what} after the Close frame was sent")

    def header_for(self, opcode: int, payload: bytes) -> bytes | None:
        """The header alone of one whole message's frame, when the payload goes out as it is.

        For large messages: writing the header and the caller's own ``bytes`` together
        (one ``writelines``, one system call) saves copying the payload into a new frame.
        None when the frame must be built whole instead: a client masks its payload, and a
        compressor rewrites it.
        """
        if self._mask_bit or self.deflate is not None:
            return None
        self._check_sendable("a message")
        return header(0x80 | opcode, len(payload))

    def send_frame(
        self, opcode: int, payload: bytes | bytearray | memoryview, *, fin: bool = True, rsv1: bool = False
    ) -> bytes:
        """The bytes of one raw frame: for fragmented sending and for testing peers.

        No compression is applied and no fragmentation rule is checked: the caller
        owns the sequence of frames it builds this way.
        """
        self._check_sendable("a frame")
        return self._frame(opcode, payload, fin, rsv1)

    def send_ping(self, payload: bytes = b"") -> bytes:
        """The bytes of a Ping; the payload must fit in a control frame (125 bytes)."""
        return self._control_frame(_OP_PING, payload)

    def send_pong(self, payload: bytes = b"") -> bytes:
        """The bytes of an unsolicited Pong (a heartbeat that expects no reply)."""
        return self._control_frame(_OP_PONG, payload)

    def _control_frame(self, opcode: int, payload: bytes) -> bytes:
        if len(payload) > 125:
            raise LocalProtocolError(f"a control frame payload is at most 125 bytes, got {len(payload)}")
        self._check_sendable("a control frame")
        return self._frame(opcode, payload, True, False)

    def send_close(
        self, code: int | None = 1000, reason: str = "", *, cause: str | None = None, detail: str = ""
    ) -> bytes:
        """The bytes of our Close frame, starting (or answering) the close handshake.

        ``code=None`` sends an empty Close frame (seen by the peer as 1005). Codes that
        may never be on the wire (1005, 1006, 1015, reserved ranges) raise
        :class:`InvalidCloseCode`. ``cause`` overrides the cause id of the ending
        (``server.shutdown``, ``extension.missing``, ...).
        """
        if self.close_sent is not None:
            raise LocalProtocolError("the Close frame was already sent")
        if self.state is _CLOSED:
            raise LocalProtocolError("the connection is closed")
        payload = self._close_payload(code, reason)
        self.close_sent = CloseFrame(code, reason)
        if self.close_received is None:
            self.received_first = False
            self.state = State.CLOSING
            self._local_cause = cause
            self._local_detail = detail
        return self._frame(_OP_CLOSE, payload, True, False)

    @staticmethod
    def _close_payload(code: int | None, reason: str) -> bytes:
        if code is None:
            if reason:
                raise InvalidCloseCode("a Close frame without a status code cannot carry a reason")
            return b""
        if not is_sendable(code):
            from wsdoctor.knowledge import explain

            entry = explain(code)
            raise InvalidCloseCode(
                f"close code {code} ({entry.name}) may not be sent in a Close frame: "
                "use 1000-1003, 1007-1014 or 3000-4999"
            )
        encoded = reason.encode()
        if len(encoded) > 123:
            raise InvalidCloseCode(f"a close reason is at most 123 bytes of UTF-8, got {len(encoded)}")
        return code.to_bytes(2, "big") + encoded

    def fail(self, code: int, cause: str, detail: str = "") -> None:
        """Fail the connection from our side (keepalive timeout, handler error, ...).

        Queues a Close frame with ``code`` unless one was already sent; the I/O layer
        then flushes :meth:`data_to_send` and closes the transport.
        """
        self._fail(code, cause, detail)
        self.commit_failure()

    def _fail(self, code: int, cause: str, detail: str) -> None:
        if self._failure is None and self.state is not _CLOSED:
            self._failure = (code, cause, detail)
            if self.close_sent is None and self.close_received is None:
                self._pending_close = self._frame(_OP_CLOSE, self._close_payload(code, ""), True, False)
            self.state = State.CLOSING
        # A new buffer, not clear(): a view of the old one may still be alive in the
        # traceback of the ProtocolError that brought us here, and clear() would raise.
        self._buf = bytearray()
        self._frame_remaining = 0

    @property
    def failure_pending(self) -> bool:
        """A peer's violation was found but our Close frame is not queued yet (see defer_failure)."""
        return self._pending_close is not None

    def commit_failure(self) -> None:
        """Queue the Close frame of a failure; from here on nothing else may be sent.

        With ``defer_failure`` set, the I/O layer calls this once the application has
        had its turn to answer the messages that arrived before the violation, so that
        those answers go out ahead of the Close frame.
        """
        pending = self._pending_close
        if pending is not None and self._failure is not None:
            self._pending_close = None
            self._out += pending
            self.close_sent = CloseFrame(self._failure[0], "")
            self.received_first = False

    def _frame(self, opcode: int, payload: bytes | bytearray | memoryview, fin: bool, rsv1: bool) -> bytes:
        b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
        # Header and payload in one allocation (protocol/_mask.py).
        return frame(b0, payload, _masking_key() if self._mask_bit else None)

    def data_to_send(self) -> bytes:
        """Bytes the core queued by itself (Pong replies, the answering Close frame)."""
        if self._pending_close is not None and not self.defer_failure:
            self.commit_failure()
        if not self._out:
            return b""
        out = bytes(self._out)
        self._out.clear()
        return out

    @property
    def has_data_to_send(self) -> bool:
        return bool(self._out) or (self._pending_close is not None and not self.defer_failure)

    @property
    def close_handshake_done(self) -> bool:
        """Both Close frames have crossed: the TCP connection should now be closed."""
        return self.close_sent is not None and self.close_received is not None

    @property
    def should_close_transport(self) -> bool:
        """The I/O layer should flush and close the transport now.

        True after a failure, and after a complete close handshake. RFC 6455 7.1.1
        has the server close TCP first; a client waits for that (bounded by its close
        timeout) before closing on its own, which the I/O layer handles.
        """
        return (self._failure is not None and self._pending_close is None) or self.close_handshake_done

    @property
    def failed(self) -> bool:
        return self._failure is not None

    # ---------------------------------------------------------------- receiving

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Feed bytes read from the transport; returns the events they complete.

        ``data`` may be a view of the caller's reusable read buffer: nothing the core
        keeps (events, partial messages, leftover bytes) refers to it after this returns.
        """
        self._plain = False
        return self._receive(data, len(data))

    def receive_plain(self, data: bytes | bytearray | memoryview) -> list[Event | str | bytes]:
        """Like :meth:`receive_data`, but a complete data message is its value, not an event.

        A text message is its ``str`` and a binary one its ``bytes``; control frames are
        still events. This is the asyncio layer's hot path: it saves building an event
        object per message only to take its ``data`` out again.
        """
        self._plain = True
        return self._receive(data, len(data))

    def _receive(self, data: bytes | bytearray | memoryview, n: int) -> list[Any]:
        """The events in the first ``n`` bytes of ``data`` (the asyncio layer passes its whole
        read buffer and the count read, which saves a view per read)."""
        events: list[Any] = []
        if self.close_received is not None or self._failure is not None or self.state is _CLOSED:
            return events  # RFC 6455 5.5.1: nothing after a Close frame; nothing after failing
        buf = self._buf
        if buf:
            buf += data if n == len(data) else data[:n]
            src: bytes | bytearray | memoryview = buf
            n = len(buf)
        else:
            src = data
        try:
            pos = self._parse(src, n, events)
        except ProtocolError as exc:
            self._fail(exc.code, exc.cause, str(exc))
            return events
        if src is buf:
            del buf[:pos]
        elif pos < n and self.close_received is None:
            buf += memoryview(src)[pos:n]
        return events

    def _parse(self, src: bytes | bytearray | memoryview, n: int, events: list[Any]) -> int:
        # No view of src is held across the parse (a frame's partial payload takes one of
        # its own, dropped at once): _receive() resizes its bytearray afterwards.
        pos = 0
        while pos < n:
            remaining = self._frame_remaining
            if remaining:
                take = n - pos
                if remaining < take:
                    take = remaining
                sink = self._sink
                if sink is not None:
                    sink.write(src, pos, pos + take)
                    pos += take
                    self._frame_remaining = remaining - take
                    if remaining == take:
                        self._sink = None
                        self._data(sink.take(), True, events)
                    continue
                chunk = memoryview(src)[pos : pos + take]
                pos += take
                self._frame_remaining = remaining - take
                mask = self._frame_mask
                if mask is not None:
                    off = self._frame_offset
                    if off:
                        mask = mask[off:] + mask[:off]
                    self._frame_offset = (off + take) & 3
                    self._data(apply_mask(chunk, mask), self._frame_fin and not self._frame_remaining, events)
                else:
                    self._data(chunk, self._frame_fin and not self._frame_remaining, events)
                continue
            if n - pos < 2:
                break
            word = _header(src, pos, n)
            b0 = word >> 24
            b1 = (word >> 16) & 0xFF
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            length = b1 & 0x7F
            masked = b1 & 0x80
            hlen = 2
            if length == 126:
                hlen = 4
            elif length == 127:
                hlen = 10
            if masked:
                hlen += 4
            if b0 & 0x70:
                self._check_rsv(b0, opcode)
            if (2 < opcode < 8) or opcode > 10:  # not one of _KNOWN_OPCODES
                raise ProtocolError(1002, "protocol.bad_opcode", f"unknown opcode {opcode:#x}")
            if (masked != 0) != self._expect_masked:
                if masked:
                    raise ProtocolError(1002, "protocol.masked_frame", "a server must not mask its frames")
                raise ProtocolError(1002, "protocol.unmasked_frame", "a client must mask every frame")
            if opcode >= 8:
                if not fin:
                    raise ProtocolError(1002, "protocol.fragmented_control", "control frames cannot be fragmented")
                if length > 125:
                    raise ProtocolError(
                        1002, "protocol.control_too_long", "a control frame payload is at most 125 bytes"
                    )
            if n - pos < hlen:
                break
            if length == 126:
                length = word & 0xFFFF
            elif length == 127:
                length = _unpack_u64(src, pos + 2)[0]
                if length >> 63:
                    raise ProtocolError(1002, "protocol.bad_length", "the 64-bit payload length has its top bit set")
            if opcode >= 8:
                if length > n - pos - hlen:
                    break
                start = pos + hlen
                pos = start + length
                self._control(opcode, payload_at(src, start, pos, masked), events)
                if self.close_received is not None:
                    return n  # nothing after a Close frame is read
                continue
            self._start_data_frame(opcode, b0, length)
            start = pos + hlen
            if length <= n - start:  # the whole payload is here (compared so as not to overflow)
                end = start + length
                pos = end
                # The payload as bytes in one allocation, unmasked (protocol/_mask.py).
                self._data(payload_at(src, start, end, masked), bool(fin), events)
            else:
                pos = start
                self._frame_remaining = length
                self._frame_fin = bool(fin)
                self._frame_mask = bytes(src[start - 4 : start]) if masked else None
                self._frame_offset = 0
                if fin and opcode == _OP_BINARY and not self._msg_compressed and _SINK_MIN <= length <= _SINK_MAX:
                    self._sink = PayloadSink(length, self._frame_mask)
        return pos

    def sink_view(self) -> memoryview | None:
        """Where the transport may read the rest of a large frame straight into, or None.

        When a large binary frame is partly received, its payload is filling its final
        bytes object; reading the rest directly into it (then :meth:`sink_received`) saves
        the copy out of the read buffer. None when there is no such frame, or when little
        of it is missing, or without the C extension: then read into a buffer of your own and
        call :meth:`receive_data`.
        """
        sink = self._sink
        if sink is None or sink.remaining < _SINK_DIRECT or self._failure is not None:
            return None
        return sink.view()  # None from the pure-Python sink, which is never read into

    def sink_received(self, n: int) -> list[Any]:
        """``n`` bytes were read into the last :meth:`sink_view`; the events they complete.

        Messages come as :meth:`receive_data` gives them, or as their values after
        :meth:`receive_plain` (the last of the two called decides).
        """
        events: list[Any] = []
        sink = self._sink
        if sink is None:
            raise LocalProtocolError("sink_received() without a sink_view() to read into")
        sink.filled(n)
        remaining = self._frame_remaining - n
        self._frame_remaining = remaining
        if not remaining:
            self._sink = None
            self._data(sink.take(), True, events)
        return events

    def _check_rsv(self, b0: int, opcode: int) -> None:
        if b0 & 0x30:
            raise ProtocolError(1002, "protocol.reserved_bits", "RSV2/RSV3 set but no extension defines them")
        if self.deflate is None:
            raise ProtocolError(1002, "protocol.reserved_bits", "RSV1 set but no extension was negotiated")
        if opcode not in (_OP_TEXT, _OP_BINARY):
            raise ProtocolError(
                1002,
                "protocol.reserved_bits",
                "RSV1 may only be set on the first frame of a data message (RFC 7692 6.1)",
            )

    def _start_data_frame(self, opcode: int, b0: int, length: int) -> None:
        if opcode == _OP_CONT:
            if not self._msg_opcode:
                raise ProtocolError(
                    1002,
                    "protocol.unexpected_continuation",
                    "a continuation frame arrived with no message started",
                )
        else:
            if self._msg_opcode:
                raise ProtocolError(
                    1002,
                    "protocol.expected_continuation",
                    "a new data frame arrived before the previous message was finished",
                )
            self._msg_opcode = opcode
            self._msg_compressed = bool(b0 & 0x40)
            self._msg_size = 0
            self._msg_wire_size = 0
        if self.max_frame_size is not None and length > self.max_frame_size:
            raise ProtocolError(
                1009,
                "frame.too_big",
                f"a frame of {length} bytes exceeds max_frame_size={self.max_frame_size}",
            )
        if self.max_size is not None:
            wire = self._msg_wire_size + length
            self._msg_wire_size = wire
            if wire > self.max_size:
                raise ProtocolError(
                    1009, "message.too_big", f"a message of over {self.max_size} bytes exceeds max_size"
                )

    def _data(self, payload: bytes | memoryview, fin: bool, events: list[Any]) -> None:
        if self._msg_compressed:
            assert self.deflate is not None
            limit = (1 << 62) if self.max_size is None else self.max_size - self._msg_size
            payload = self.deflate.decompress(payload, fin, limit)
            self._msg_size += len(payload)
        if self._msg_opcode == _OP_TEXT:
            decoder = self._decoder
            if fin and decoder is None:
                try:
                    text = str(payload, "utf-8")
                    events.append(text if self._plain else TextMessage(text))
                except UnicodeDecodeError:
                    raise ProtocolError(1007, "utf8.invalid", "a text message is not valid UTF-8") from None
                self._msg_opcode = 0
                return
            if decoder is None:
                decoder = self._decoder = _Utf8Decoder()
            try:
                self._text_parts.append(decoder.decode(payload, fin))
            except UnicodeDecodeError:
                raise ProtocolError(1007, "utf8.invalid", "a text message is not valid UTF-8") from None
            if fin:
                text = "".join(self._text_parts)
                events.append(text if self._plain else TextMessage(text))
                self._text_parts.clear()
                self._decoder = None
                self._msg_opcode = 0
            else:
                _check_utf8_pending(decoder)
        else:
            # Already bytes in the usual case (payload_at made it); bytes() of bytes is not free
            # (a lookup and call of __bytes__), so it is only asked of a memoryview.
            data = payload if type(payload) is bytes else bytes(payload)
            if fin and not self._parts:
                events.append(data if self._plain else BinaryMessage(data))
                self._msg_opcode = 0
                return
            self._parts.append(data)
            if fin:
                data = b"".join(self._parts)
                events.append(data if self._plain else BinaryMessage(data))
                self._parts.clear()
                self._msg_opcode = 0

    def _control(self, opcode: int, payload: bytes, events: list[Any]) -> None:
        if opcode == _OP_PING:
            if self.close_sent is None:
                self._out += self._frame(_OP_PONG, payload, True, False)
            events.append(Ping(payload))
        elif opcode == _OP_PONG:
            events.append(Pong(payload))
        else:
            code, reason = self._parse_close(payload)
            self.close_received = CloseFrame(code, reason)
            if self.close_sent is None:
                self.received_first = True
                self.state = State.CLOSING
                echo = b"" if code is None else code.to_bytes(2, "big")
                self._out += self._frame(_OP_CLOSE, echo, True, False)
                self.close_sent = CloseFrame(code, "")
            events.append(CloseReceived(code, reason))

    @staticmethod
    def _parse_close(payload: bytes) -> tuple[int | None, str]:
        if not payload:
            return None, ""
        if len(payload) == 1:
            raise ProtocolError(1002, "protocol.bad_close_payload", "a Close frame payload of exactly one byte")
        code = int.from_bytes(payload[:2], "big")
        if not is_sendable(code):
            raise ProtocolError(1002, "protocol.bad_close_code", f"close code {code} is not allowed on the wire")
        try:
            reason = payload[2:].decode()
        except UnicodeDecodeError:
            raise ProtocolError(1007, "protocol.bad_close_reason", "the close reason is not valid UTF-8") from None
        return code, reason

    def receive_eof(self, cause: str | None = None, detail: str = "") -> Ending:
        """The transport is gone; fold what happened into the connection's ending.

        ``cause`` lets the I/O layer say how it went (``tcp.reset``, ``close.timeout``)
        when no Close frame explains it. Calling it again returns the same ending.
        """
        if self.ending is not None:
            return self.ending
        self.state = State.CLOSED
        sent, received = self.close_sent, self.close_received
        initiator: Initiator
        if self._failure is not None:
            code, fcause, fdetail = self._failure
            ending = Ending(
                code=code,
                cause=fcause,
                initiator="local",
                sent=sent,
                received=received,
                received_first=self.received_first,
                clean=False,
                detail=fdetail,
            )
        elif sent is not None and received is not None:
            clean = True
            if self.received_first:
                initiator = "remote"
                code = 1005 if received.code is None else received.code
                reason = received.reason
                if received.code is None:
                    ccause = "closed.no_status"
                elif received.code == 1010:
                    ccause = "extension.missing"
                else:
                    ccause = "closed.by_peer"
                cdetail = detail or received.reason
            else:
                initiator = "local"
                code = 1005 if sent.code is None else sent.code
                reason = sent.reason
                ccause = self._local_cause or "closed.locally"
                cdetail = self._local_detail or detail
            ending = Ending(
                code=code,
                cause=ccause,
                reason=reason,
                initiator=initiator,
                sent=sent,
                received=received,
                received_first=self.received_first,
                clean=clean,
                detail=cdetail,
            )
        elif received is not None:
            ending = Ending(
                code=1005 if received.code is None else received.code,
                cause="closed.by_peer",
                reason=received.reason,
                initiator="remote",
                sent=sent,
                received=received,
                received_first=True,
                clean=False,
                detail=detail,
            )
        else:
            ending = Ending(
                code=1006,
                cause=cause or ("close.timeout" if sent is not None else "tcp.closed"),
                initiator="local" if sent is not None else "remote",
                sent=sent,
                received=None,
                received_first=self.received_first,
                clean=False,
                detail=detail,
            )
        self.ending = ending
        return ending


# The compiled core: this very file, built by Cython into _connection_c (see setup.py
# and _connection.pxd). When it is there and was built from this file as it is now (its
# SOURCE_DIGEST), it replaces the classes above, so that every importer gets the same
# Connection, Opcode and State; WSDOCTOR_NO_SPEEDUPS=1 keeps the pure-Python ones (the
# test suite runs both ways).
COMPILED = False
_WANTED = __name__ == "wsdoctor.protocol._connection" and not os.environ.get("WSDOCTOR_NO_SPEEDUPS")
if not TYPE_CHECKING and _WANTED:  # pragma: no cover - covered by the default run, not the pure one
    from wsdoctor._compiled import current_build

    _built = current_build("wsdoctor.protocol._connection_c", __file__, "compiled core", "protocol/_connection.py")
    if _built is not None:
        from wsdoctor.protocol._connection_c import Connection, Opcode, State

        COMPILED = True
