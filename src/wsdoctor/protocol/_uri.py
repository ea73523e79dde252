"""WebSocket URIs (RFC 6455 section 3): ``ws://`` and ``wss://`` only.

A URI is checked whole before anything is dialled: ``urllib.parse`` silently drops
tabs and newlines and keeps spaces, and host names are only checked by the idna codec
when ``getaddrinfo`` runs, so without these checks a bad URI fails after the TCP
connection opened, or inside the resolver, with an error that names neither.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from dataclasses import dataclass, field

from wsdoctor.protocol._errors import WebSocketError
from wsdoctor.protocol._redact import redact_url

__all__ = ["WSURI", "InvalidURI", "parse_uri"]


class InvalidURI(WebSocketError, ValueError):
    """The URI is not a WebSocket URI; the message says what to change."""

    input_cause = "input.uri"


@dataclass(frozen=True)
class WSURI:
    secure: bool
    host: str
    port: int
    resource: str
    user_info: tuple[str, str] | None = field(default=None, repr=False)  # a password: never in a repr

    @property
    def host_header(self) -> str:
        """The Host header: brackets around IPv6 literals, the port only when not the default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.secure else 80
        return host if self.port == default else f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{'wss' if self.secure else 'ws'}://{self.host_header}{self.resource}"


# One DNS label (RFC 1035 2.3.4, with the underscore that service names use).
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?\Z")
_BAD_CHAR = re.compile(r"[\x00-\x20\x7f]")


def _check_chars(uri: str, shown: str) -> None:
    bad = _BAD_CHAR.search(uri)
    if bad is None:
        return
    char, pos = bad.group(), bad.start()
    if char == " ":
        raise InvalidURI(f"{shown!r} contains a space at position {pos}: percent-encode it as %20")
    raise InvalidURI(f"{shown!r} contains a control character ({ord(char):#04x}) at position {pos}")


def _check_host(uri: str, host: str) -> str:
    """The host as it goes to the resolver: an IP literal, or an ASCII (IDNA) name."""
    if ":" in host:
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise InvalidURI(f"{uri!r}: {host!r} is not a valid IPv6 address") from None
        return host
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise InvalidURI(f"{uri!r} has a host name that cannot be encoded (IDNA): {exc}") from None
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253:
        raise InvalidURI(f"{uri!r}: the host name is {len(name)} characters long; DNS allows 253")
    for label in name.split("."):
        if not label:
            raise InvalidURI(f"{uri!r}: the host name {host!r} has an empty label (two dots in a row)")
        if len(label) > 63:
            raise InvalidURI(f"{uri!r}: the host name label {label[:20]}... is {len(label)} characters; DNS allows 63")
        if not _LABEL.match(label):
            raise InvalidURI(f"{uri!r}: the host name label {label!r} may hold only letters, digits and inner hyphens")
    return host


def parse_uri(uri: str) -> WSURI:
    """Parse and check a WebSocket URI; raise :class:`InvalidURI` with a hint otherwise.

    Refused: spaces and control characters anywhere, schemes other than ws and wss,
    a missing host, host names the DNS cannot carry (labels over 63 characters, IDNA
    errors), ports outside 1-65535 and fragments. Non-ASCII characters in the path
    and query are percent-encoded as UTF-8, as browsers do.
    """
    if not isinstance(uri, str):
        raise InvalidURI(f"the URI must be a string, not {type(uri).__name__}")
    shown = redact_url(uri)  # what error messages quote: never the password
    _check_chars(uri, shown)
    try:
        parsed = urllib.parse.urlsplit(uri)
        port = parsed.port
    except ValueError as exc:
        if "out of range" in str(exc):
            raise InvalidURI(f"{shown!r}: the port is out of range; ports go from 1 to 65535") from None
        raise InvalidURI(f"{shown!r} is not a valid URI: {exc}") from None
    if port == 0:
        raise InvalidURI(f"{shown!r}: port 0 cannot be dialled; give a port from 1 to 65535")
    scheme = parsed.scheme.lower()
    if scheme in ("http", "https"):
        hint = "ws" if scheme == "http" else "wss"
        raise InvalidURI(f"{shown!r} is an HTTP URL: use {hint}:// for a WebSocket")
    if scheme not in ("ws", "wss"):
        raise InvalidURI(f"{shown!r} is not a WebSocket URI: it must start with ws:// or wss://")
    if not parsed.hostname:
        raise InvalidURI(f"{shown!r} has no host")
    if parsed.fragment or "#" in uri:  # an empty fragment too, even one followed by a tab
        raise InvalidURI(f"{shown!r} has a fragment, which a WebSocket URI must not have (RFC 6455 3)")
    secure = scheme == "wss"
    host = _check_host(shown, parsed.hostname)
    resource = parsed.path or "/"
    if parsed.query:
        resource += "?" + parsed.query
    if not resource.isascii():
        resource = "".join(c if c.isascii() else urllib.parse.quote(c) for c in resource)
    user_info = None
    if parsed.username is not None or parsed.password is not None:
        user_info = (
            urllib.parse.unquote(parsed.username or ""),
            urllib.parse.unquote(parsed.password or ""),
        )
    return WSURI(secure, host, port if port is not None else (443 if secure else 80), resource, user_info)
