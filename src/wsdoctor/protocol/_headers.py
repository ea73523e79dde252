"""The WebSocket header grammars: RFC 6455 sections 4.3 and 9.1, on RFC 7230 tokens.

The grammar is written once as regular expressions (the ABNF, in one place) and the
parsers walk a header value with them, so every malformed value gets an error that
says where it went wrong instead of being half-accepted.
"""

from __future__ import annotations

import re

from wsdoctor.protocol._errors import WebSocketError

__all__ = [
    "ExtensionItem",
    "InvalidHeader",
    "InvalidSubprotocol",
    "parse_extensions",
    "parse_subprotocols",
    "parse_token_list",
    "serialize_extensions",
    "serialize_subprotocols",
]

ExtensionItem = tuple[str, list[tuple[str, str | None]]]

# RFC 7230 3.2.6
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\t\x20-\x7e\x80-\xff])*"'
_OWS = re.compile(r"[ \t]*")
_token_re = re.compile(_TOKEN)
_quoted_re = re.compile(_QUOTED)
_token_full = re.compile(_TOKEN + r"\Z")
_unescape = re.compile(r"\\(.)")


class InvalidHeader(WebSocketError, ValueError):
    """A header does not follow its grammar, or an extra header is not the caller's to set.

    The handshake turns a malformed header *received* from the peer into a
    :class:`HandshakeError`; one that escapes to the application is the application's
    own argument, hence the ``input.header`` cause of its ending.
    """

    input_cause = "input.header"


class InvalidSubprotocol(InvalidHeader):
    """A subprotocol name is not an RFC 7230 token, so it cannot go in Sec-WebSocket-Protocol."""

    input_cause = "input.subprotocol"


def _skip_ows(value: str, pos: int) -> int:
    match = _OWS.match(value, pos)
    assert match is not None
    return match.end()


def _expect_token(value: str, pos: int, what: str, header: str) -> tuple[str, int]:
    match = _token_re.match(value, pos)
    if match is None:
        raise InvalidHeader(f"{header}: expected {what} at position {pos} in {value!r}")
    return match.group(), match.end()


def _split_list(values: list[str], header: str) -> list[tuple[str, int]]:
    """(value, start) for each value; commas are handled by the callers' walkers."""
    return [(v, 0) for v in values]


def parse_extensions(values: list[str]) -> list[ExtensionItem]:
    """Parse every Sec-WebSocket-Extensions header line into (name, params) items."""
    header = "Sec-WebSocket-Extensions"
    items: list[ExtensionItem] = []
    for value in values:
        pos = 0
        end = len(value)
        while True:
            pos = _skip_ows(value, pos)
            if pos < end and value[pos] == ",":  # empty list element (RFC 7230 7)
                pos += 1
                continue
            if pos >= end:
                break
            name, pos = _expect_token(value, pos, "an extension name", header)
            params: list[tuple[str, str | None]] = []
            pos = _skip_ows(value, pos)
            while pos < end and value[pos] == ";":
                pos = _skip_ows(value, pos + 1)
                pname, pos = _expect_token(value, pos, "a parameter name", header)
                pos = _skip_ows(value, pos)
                pvalue: str | None = None
                if pos < end and value[pos] == "=":
                    pos = _skip_ows(value, pos + 1)
                    if pos < end and value[pos] == '"':
                        match = _quoted_re.match(value, pos)
                        if match is None:
                            raise InvalidHeader(f"{header}: unterminated quoted string in {value!r}")
                        pvalue = _unescape.sub(r"\1", match.group()[1:-1])
                        if not _token_full.match(pvalue):
                            raise InvalidHeader(
                                f"{header}: the quoted value {match.group()} is not a token (RFC 6455 9.1)"
                            )
                        pos = match.end()
                    else:
                        pvalue, pos = _expect_token(value, pos, "a parameter value", header)
                    pos = _skip_ows(value, pos)
                params.append((pname, pvalue))
            items.append((name, params))
            if pos < end:
                if value[pos] != ",":
                    raise InvalidHeader(f"{header}: unexpected {value[pos]!r} at position {pos} in {value!r}")
                pos += 1
    return items


def serialize_extensions(items: list[ExtensionItem]) -> str:
    """The header value for a list of (name, params) items."""
    return ", ".join("; ".join([name, *(p if v is None else f"{p}={v}" for p, v in params)]) for name, params in items)


def parse_token_list(values: list[str], header: str = "header") -> list[str]:
    """A comma-separated list of tokens (Connection, Upgrade, Sec-WebSocket-Protocol)."""
    tokens: list[str] = []
    for value in values:
        pos, end = 0, len(value)
        while True:
            pos = _skip_ows(value, pos)
            if pos < end and value[pos] == ",":
                pos += 1
                continue
            if pos >= end:
                break
            token, pos = _expect_token(value, pos, "a token", header)
            # Upgrade allows product/version; keep the whole product token.
            if pos < end and value[pos] == "/":
                version, pos = _expect_token(value, pos + 1, "a version", header)
                token = f"{token}/{version}"
            tokens.append(token)
            pos = _skip_ows(value, pos)
            if pos < end:
                if value[pos] != ",":
                    raise InvalidHeader(f"{header}: unexpected {value[pos]!r} at position {pos} in {value!r}")
                pos += 1
    return tokens


def parse_subprotocols(values: list[str]) -> list[str]:
    return parse_token_list(values, "Sec-WebSocket-Protocol")


def serialize_subprotocols(names: list[str]) -> str:
    for name in names:
        if not _token_full.match(name):
            raise InvalidSubprotocol(f"subprotocol {name!r} is not a valid token")
    return ", ".join(names)
