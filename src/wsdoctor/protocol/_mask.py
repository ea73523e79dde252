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
    "apply_mask",
    "frame",
    "header",
    "payload_at",
    "py_apply_mask",
    "py_frame",
    "py_header",
    "py_payload_at",
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


try:
    if os.environ.get("WSDOCTOR_NO_SPEEDUPS"):  # the test suite runs the core both ways
        raise ImportError("disabled by WSDOCTOR_NO_SPEEDUPS")
    from wsdoctor.protocol._speedups import apply_mask, frame, header, payload_at

    SPEEDUPS = True
except ImportError:
    apply_mask = py_apply_mask
    frame = py_frame
    header = py_header
    payload_at = py_payload_at
    SPEEDUPS = False
