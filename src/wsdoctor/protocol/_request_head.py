"""A fast path for the well-formed upgrade request, and the 101 response from a template.

h11 parses any HTTP/1.1 request correctly, but its generality (an event state machine,
header objects validated one by one) costs more than the rest of an opening
handshake. Nearly every upgrade request a server sees is the same dozen lines: a GET
line, a handful of ``Name: value`` headers, CRLF line ends, no body. This module
recognises exactly that shape with two regular expressions and hands anything else
(other methods or versions, bare LF line ends, folded lines, a body, unusual bytes,
oversized heads) back to h11, so odd and hostile input still gets h11's verdict and
the same error as before. Accepted requests yield the same values h11 would give:
lower-cased names, values without surrounding whitespace, latin-1 text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

__all__ = ["could_be_simple", "parse_simple_request", "response_101"]

# RFC 7230 3.1.1 and 3.2, restricted to what well-formed clients send: visible ASCII in
# the target, a token as the name, visible ASCII, obs-text, spaces and tabs in the lines
# (so no obs-fold, no bare CR or LF). Each is the set of bytes translate() deletes.
_VCHAR = bytes(range(0x21, 0x7F))
_FIELD_BYTES = b" \t" + _VCHAR + bytes(range(0x80, 0x100))
_TOKEN = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# What h11 accepts in a header we send: ASCII only (it encodes str values as ASCII).
_VALUE = re.compile(r"(?:[\x21-\x7e]+(?:[ \t]+[\x21-\x7e]+)*)?")
_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Headers that give a request a body or change how it is read: h11 handles those.
_SLOW_NAMES = frozenset((b"content-length", b"transfer-encoding", b"expect"))


_NOT_IN_HEAD = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\n\n")


def could_be_simple(head: bytearray, new: int) -> bool:
    """Whether an incomplete head (``head[new:]`` just arrived) may still take the fast path.

    False hands it to h11 at once, so that what is plainly not HTTP (a TLS hello on a
    plain port, binary noise) is answered as soon as h11 would, not at the size limit.
    """
    if not head.startswith(b"GET "[: len(head)]):
        return False
    return _NOT_IN_HEAD.search(head, max(new - 1, 0)) is None


def parse_simple_request(head: bytes) -> tuple[str, list[tuple[str, str]]] | None:
    """(target, headers) for a plain GET upgrade head (without its final CRLF CRLF), else None.

    None means "not the simple shape": the caller gives the bytes to h11 instead.

    The checks are ``bytes.translate()`` deletions (a byte-class test in C, one pass per
    part) rather than a regular expression per line: a regex walks its character classes
    byte by byte in the matcher, which cost more than the rest of the parse.
    """
    lines = head.split(b"\r\n")
    if b"".join(lines).translate(None, _FIELD_BYTES):
        return None  # a bare CR or LF, a control byte, DEL: h11 knows how lenient to be
    line = lines[0]
    if not (line.startswith(b"GET ") and line.endswith(b" HTTP/1.1")):
        return None
    target = line[4:-9]
    if not target or target.translate(None, _VCHAR):
        return None
    headers: list[tuple[str, str]] = []
    hosts = 0
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name.translate(None, _TOKEN):
            return None  # no colon, or a name that is not a token (spaces, obs-fold)
        name = name.lower()
        if name in _SLOW_NAMES:
            return None
        if name == b"host":
            hosts += 1
        headers.append((name.decode("ascii"), value.strip(b" \t").decode("latin-1")))
    if hosts != 1:
        return None  # h11 words the missing or repeated Host header
    return target.decode("ascii"), headers


@lru_cache(maxsize=64)
def _tail(extra: tuple[tuple[str, str], ...]) -> bytes | None:
    """The serialised extra headers and final CRLF, or None when one is not valid."""
    parts = []
    for name, value in extra:
        if not _NAME.fullmatch(name) or not _VALUE.fullmatch(value):
            return None
        parts.append(f"{name}: {value}\r\n")
    parts.append("\r\n")
    return "".join(parts).encode("ascii")


_HEAD_101 = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "


def response_101(
    accept: str, subprotocol: str | None, extensions: str | None, extra: Sequence[tuple[str, str]]
) -> bytes | None:
    """The 101 response, byte for byte what h11 writes; None when h11 must validate a header.

    The server's own headers (``Server``, ``extra_headers``) are the same on every
    connection, so their serialisation is checked and built once and cached.
    """
    tail = _tail(tuple(extra))
    if tail is None:
        return None
    middle = ""
    if subprotocol is not None:
        if not _VALUE.fullmatch(subprotocol):
            return None
        middle += f"Sec-WebSocket-Protocol: {subprotocol}\r\n"
    if extensions is not None:
        if not _VALUE.fullmatch(extensions):
            return None
        middle += f"Sec-WebSocket-Extensions: {extensions}\r\n"
    return b"".join((_HEAD_101, accept.encode("ascii"), b"\r\n", middle.encode("ascii"), tail))
