"""The caller's arguments, checked before any socket opens.

A bad argument found after dialling costs a DNS lookup and a TCP connection, and
surfaces as a confusing network failure or as a traceback from deep inside h11 or
the idna codec. Everything an application passes to ``connect()`` or ``serve()``
is therefore checked here, up front, and refused with a typed error
(:class:`InvalidHeader`, :class:`InvalidSubprotocol`, :class:`InvalidOption`) whose
message names the argument and says what it accepts.

Headers the opening handshake writes itself (``Host``, ``Upgrade``, ``Connection``,
every ``Sec-WebSocket-*``) cannot be given as extra headers: a second copy would make
the request ambiguous or wrong, so the message names the option that sets each one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

from wsdoctor.protocol._errors import InvalidOption
from wsdoctor.protocol._headers import InvalidHeader, InvalidSubprotocol

__all__ = ["check_extension_names", "check_headers", "check_size", "check_subprotocols", "check_timeout"]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# A field value (RFC 7230 3.2): visible ASCII, spaces and tabs; no CR, LF, NUL or DEL.
_BAD_VALUE_CHAR = re.compile(r"[^\t\x20-\x7e]")

_OWNED = {
    "host": "it comes from the URL, so put the host and port there (server_hostname= changes only the name "
    "checked in the TLS certificate)",
    "upgrade": "the WebSocket handshake writes it",
    "connection": "the WebSocket handshake writes it",
    "sec-websocket-key": "the handshake generates a fresh random key for every connection",
    "sec-websocket-version": "the handshake always sends 13",
    "sec-websocket-accept": "it is a response header that the server computes",
    "sec-websocket-protocol": "offer subprotocols with subprotocols= (--subprotocol on the command line)",
    "sec-websocket-extensions": "extensions come from compression= and deflate= (require one with "
    "require_extensions=, --require-extension on the command line)",
    "content-length": "the upgrade request has no body",
    "transfer-encoding": "the upgrade request has no body",
}


def _describe(value: object) -> str:
    return f"{value!r} ({type(value).__name__})"


def _check_value(name: str, value: str) -> None:
    bad = _BAD_VALUE_CHAR.search(value)
    if bad is not None:
        char = bad.group()
        if char in "\r\n":
            what = "a line break (CR or LF), which would inject a header"
        elif 0xDC80 <= ord(char) <= 0xDCFF:
            # A command-line byte that was not UTF-8 (surrogateescape): show the byte itself.
            what = f"the byte {ord(char) - 0xDC00:#04x} (not UTF-8)"
        elif ord(char) > 0x7E:
            what = f"the non-ASCII character {char!r}"
        else:
            what = f"the control character {char!r}"
        raise InvalidHeader(f"the value of {name} contains {what} at position {bad.start()}")


def check_headers(
    headers: Iterable[tuple[str, str]],
    *,
    origin: str | None = None,
    has_user_info: bool = False,
) -> list[tuple[str, str]]:
    """The extra request headers, checked; surrounding whitespace of values is dropped.

    Raises :class:`InvalidHeader` for a name that is not a token, a value with CR, LF
    or another control character (header injection), a header the handshake owns, an
    ``Origin`` when ``origin=`` is given too, an ``Authorization`` when the URL holds
    credentials, or a ``User-Agent`` given twice. A single ``User-Agent`` is allowed:
    the caller uses it instead of the default one.
    """
    if origin is not None:
        if not isinstance(origin, str):
            raise InvalidHeader(f"origin= must be a string, not {_describe(origin)}")
        _check_value("Origin", origin)
    checked: list[tuple[str, str]] = []
    seen_user_agent = False
    for item in headers:
        if not (isinstance(item, tuple | list) and len(item) == 2 and all(isinstance(x, str) for x in item)):
            raise InvalidHeader(f"each extra header must be a (name, value) pair of strings, not {item!r}")
        name, value = item
        if not _TOKEN.match(name):
            raise InvalidHeader(f"{name!r} is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)")
        lower = name.lower()
        if lower in _OWNED or lower.startswith("sec-websocket-"):
            hint = _OWNED.get(lower, "it belongs to the WebSocket handshake")
            raise InvalidHeader(f"{name} cannot be given as an extra header: {hint}")
        _check_value(name, value)
        if lower == "origin" and origin is not None:
            raise InvalidHeader("Origin is given both as origin= and as an extra header: keep one")
        if lower == "authorization" and has_user_info:
            raise InvalidHeader("Authorization is given as an extra header and as credentials in the URL: keep one")
        if lower == "user-agent":
            if seen_user_agent:
                raise InvalidHeader("User-Agent is given twice: give it once (it replaces the default)")
            seen_user_agent = True
        checked.append((name, value.strip(" \t")))
    return checked


def _check_tokens(names: Sequence[str], what: str, error: type[InvalidHeader]) -> list[str]:
    if isinstance(names, str):
        raise error(f"{what}s must be a list of names, not the string {names!r}")
    checked = []
    for name in names:
        if not isinstance(name, str):
            raise error(f"{what} {_describe(name)} is not a string")
        if not _TOKEN.match(name):
            problem = "empty" if not name else "not an RFC 7230 token (no spaces, commas, quotes or slashes)"
            raise error(f"{what} {name!r} is {problem}")
        checked.append(name)
    return checked


def check_subprotocols(names: Sequence[str]) -> list[str]:
    """Subprotocol names, each an RFC 7230 token as Sec-WebSocket-Protocol requires (RFC 6455 4.1)."""
    return _check_tokens(names, "subprotocol", InvalidSubprotocol)


def check_extension_names(names: Sequence[str]) -> list[str]:
    """Extension names (``require_extensions``), each a token like those in Sec-WebSocket-Extensions."""
    return _check_tokens(names, "extension name", InvalidHeader)


def check_timeout(name: str, value: object, *, optional: bool = False, allow_zero: bool = False) -> float | None:
    """A number of seconds: finite, not negative, and not zero unless ``allow_zero``.

    ``None`` is accepted when ``optional`` (it turns the timer off); NaN would make
    every comparison false and infinity would wait forever, so both are refused.
    """
    off = " or None to turn it off" if optional else ""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidOption(f"{name} must be a number of seconds{off}, not {_describe(value)}")
    seconds = float(value)
    if math.isnan(seconds):
        raise InvalidOption(f"{name} is NaN: give a number of seconds{off}")
    if math.isinf(seconds):
        raise InvalidOption(f"{name} is infinite: give a finite number of seconds{off}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        least = "0 seconds or more" if allow_zero else "more than 0 seconds"
        raise InvalidOption(f"{name} must be {least}, not {value!r}")
    return seconds


def check_size(name: str, value: object, *, optional: bool = False, minimum: int = 1) -> int | None:
    """A count of bytes or messages: an integer of at least ``minimum`` (``None`` for no limit when ``optional``)."""
    if value is None and optional:
        return None
    unlimited = " or None for no limit" if optional else ""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOption(f"{name} must be an integer{unlimited}, not {_describe(value)}")
    if value < minimum:
        raise InvalidOption(f"{name} must be at least {minimum}{unlimited}, not {value}")
    return value
