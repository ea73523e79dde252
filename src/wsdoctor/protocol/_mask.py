"""Payload masking (RFC 6455 section 5.3), with the C accelerator when it was built.

Masking is the only per-byte loop of the protocol; in pure Python it is done as one
big-integer XOR, which is correct for every length but about a hundred times slower
than the C loop on large payloads (see bench/README.md).
"""

from __future__ import annotations

import os

__all__ = ["SPEEDUPS", "apply_mask", "py_apply_mask"]


def py_apply_mask(data: bytes | bytearray | memoryview, mask: bytes | bytearray | memoryview) -> bytes:
    """XOR ``data`` with the repeating 4-byte ``mask``, in pure Python."""
    n = len(data)
    if n == 0:
        return b""
    key = (bytes(mask) * ((n >> 2) + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


try:
    if os.environ.get("WSDOCTOR_NO_SPEEDUPS"):  # the test suite runs the core both ways
        raise ImportError("disabled by WSDOCTOR_NO_SPEEDUPS")
    from wsdoctor.protocol._speedups import apply_mask

    SPEEDUPS = True
except ImportError:
    apply_mask = py_apply_mask
    SPEEDUPS = False
