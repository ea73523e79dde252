"""Payload masking (RFC 6455 section 5.3), with the C accelerator when it was built.

Masking is the only per-byte loop of the protocol; in pure Python it is done as one
big-integer XOR, which is correct for every length but about a hundred times slower
than the C loop on large payloads (see bench/README.md).
"""

from __future__ import annotations

import os
import struct

__all__ = [
    "SPEEDUPS",
    "PayloadSink",
    "PyPayloadSink",
    "apply_mask",
    "frame",
    "header",
    "payload_at",
    "py_apply_mask",
    "py_frame",
    "py_header",
    "py_payload_at",
    "py_try_send",
    "py_try_sendv",
    "try_send",
    "try_sendv",
]

_pack_h2 = struct.Struct("!BB").pack
_pack_h4 = struct.Struct("!BBH").pack
_pack_h10 = struct.Struct("!BBQ").pack


def py_apply_mask(data: bytes | bytearray | memoryview, mask: bytes | bytearray | memoryview) -> bytes:
    """XOR ``data`` with the repeating 4-byte ``mask``, in pure Python."""
    n = len(data)
    if n == 0:
        return b""
    key = (bytes(mask) * ((n >> 2) + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def py_payload_at(buffer: bytes | bytearray | memoryview, start: int, end: int, masked: int) -> bytes:
    """``buffer[start:end]`` as bytes, unmasked with the 4 bytes before it when ``masked``."""
    if start < (4 if masked else 0) or end < start or end > len(buffer):
        raise ValueError("payload_at(): start and end are outside the buffer")
    with memoryview(buffer) as view:
        if masked:
            return py_apply_mask(view[start:end], view[start - 4 : start])
        return bytes(view[start:end])


def _header(first_byte: int, n: int, mask_bit: int) -> bytes:
    if not 0 <= first_byte <= 255 or n < 0:
        raise ValueError("header(): the first byte must be 0-255 and the length not negative")
    if n < 126:
        return _pack_h2(first_byte, mask_bit | n)
    if n < 65536:
        return _pack_h4(first_byte, mask_bit | 126, n)
    return _pack_h10(first_byte, mask_bit | 127, n)


def py_header(first_byte: int, length: int) -> bytes:
    """An unmasked frame's header for a payload of ``length`` bytes."""
    return _header(first_byte, length, 0)


def py_frame(first_byte: int, payload: bytes | bytearray | memoryview, key: bytes | None) -> bytes:
    """One whole frame: the header, then the payload, masked with ``key`` unless it is None."""
    if key is None:
        return _header(first_byte, len(payload), 0) + payload
    if len(key) != 4:
        raise ValueError("mask must contain 4 bytes")
    return b"".join((_header(first_byte, len(payload), 0x80), key, py_apply_mask(payload, key)))


class PyPayloadSink:
    """A large frame's payload assembled as it arrives, unmasked (see _speedups.c).

    The pure-Python version appends to a ``bytearray`` and copies it into ``bytes`` once at
    the end. It offers no view to read into (:meth:`view` returns None): a ``bytearray`` of
    the announced length would be zero-filled, so resident, at the header, which would let
    a peer's announcement cost memory its data never brings. The C version allocates the
    delivered ``bytes`` uninitialised and is read into directly.
    """

    __slots__ = ("_data", "_key", "_length", "_taken")

    def __init__(self, length: int, key: bytes | None) -> None:
        if length < 0:
            raise ValueError("PayloadSink: the length cannot be negative")
        if key is not None and len(key) != 4:
            raise ValueError("mask must contain 4 bytes")
        self._data = bytearray()
        self._length = length
        self._key = key
        self._taken = False

    @property
    def remaining(self) -> int:
        return self._length - len(self._data)

    def _room(self, n: int) -> None:
        if self._taken:
            raise ValueError("PayloadSink: the payload was already taken")
        if n < 0 or n > self._length - len(self._data):
            raise ValueError("PayloadSink: more bytes than the payload has room for")

    def write(self, buffer: bytes | bytearray | memoryview, start: int, end: int) -> None:
        """Append ``buffer[start:end]``, unmasked."""
        if start < 0 or end < start or end > len(buffer):
            raise ValueError("write(): start and end are outside the buffer")
        self._room(end - start)
        with memoryview(buffer) as view:
            chunk = view[start:end]
            key = self._key
            if key is not None:
                at = len(self._data)
                self._data += py_apply_mask(chunk, bytes(key[(at + i) & 3] for i in range(4)))
            else:
                self._data += chunk

    def filled(self, n: int) -> None:
        """Nothing can have been read into a view this version never gives."""
        self._room(n)
        if n:
            raise ValueError("PayloadSink: this version offers no view to read into")

    def view(self) -> memoryview | None:
        """None: read into a buffer of your own and :meth:`write` from it."""
        if self._taken:
            raise BufferError("PayloadSink: the payload was already taken")
        return None

    def take(self) -> bytes:
        """The complete payload, once."""
        if self._taken or len(self._data) != self._length:
            raise ValueError("take(): the payload is not complete, or was already taken")
        self._taken = True
        data = bytes(self._data)
        self._data = bytearray()
        return data


def py_try_send(fd: int, data: bytes | bytearray | memoryview) -> int:
    """Send ``data`` on the non-blocking socket ``fd`` now: the bytes the kernel took, or -1 for none.

    -1 covers a full socket buffer and every error alike: the caller then hands the data to
    its transport, which buffers it or reports the error in its own way. (Python ignores
    SIGPIPE, so a peer that is gone raises here rather than ending the process.)
    """
    return py_try_sendv(fd, b"", data)


def py_try_sendv(fd: int, head: bytes, payload: bytes | bytearray | memoryview) -> int:
    """py_try_send() of ``head`` followed by ``payload``, in one system call (writev)."""
    if fd < 0 or not (head or payload):
        return -1
    try:
        sent = os.writev(fd, [head, payload])
    except OSError:
        return -1
    return sent if sent > 0 else -1


try:
    if os.environ.get("WSDOCTOR_NO_SPEEDUPS"):  # the test suite runs the core both ways
        raise ImportError("disabled by WSDOCTOR_NO_SPEEDUPS")
    from wsdoctor.protocol._speedups import (
        PayloadSink,
        apply_mask,
        frame,
        header,
        payload_at,
        try_send,
        try_sendv,
    )

    SPEEDUPS = True
except ImportError:
    try_send = py_try_send
    try_sendv = py_try_sendv
    apply_mask = py_apply_mask
    frame = py_frame
    header = py_header
    payload_at = py_payload_at
    PayloadSink = PyPayloadSink  # type: ignore[misc,assignment]
    SPEEDUPS = False
