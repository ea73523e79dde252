"""WebSocket URIs (RFC 6455 section 3): ``ws://`` and ``wss://`` only."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field

from wsdoctor.protocol._errors import WebSocketError
from wsdoctor.protocol._redact import redact_url

__all__ = ["WSURI", "InvalidURI", "parse_uri"]


class InvalidURI(WebSocketError, ValueError):
    """The URI is not a WebSocket URI; the message says what to change."""


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


def parse_uri(uri: str) -> WSURI:
    """Parse and check a WebSocket URI; raise :class:`InvalidURI` with a hint otherwise."""
    shown = redact_url(uri)  # what error messages quote: never the password
    try:
        parsed = urllib.parse.urlsplit(uri)
        port = parsed.port
    except ValueError as exc:
        raise InvalidURI(f"{shown!r} is not a valid URI: {exc}") from None
    scheme = parsed.scheme.lower()
    if scheme in ("http", "https"):
        hint = "ws" if scheme == "http" else "wss"
        raise InvalidURI(f"{shown!r} is an HTTP URL: use {hint}:// for a WebSocket")
    if scheme not in ("ws", "wss"):
        raise InvalidURI(f"{shown!r} is not a WebSocket URI: it must start with ws:// or wss://")
    if not parsed.hostname:
        raise InvalidURI(f"{shown!r} has no host")
    if parsed.fragment or uri.endswith("#"):
        raise InvalidURI(f"{shown!r} has a fragment, which a WebSocket URI must not have (RFC 6455 3)")
    secure = scheme == "wss"
    host = parsed.hostname
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidURI(f"{shown!r} has a host name that cannot be encoded") from None
    resource = parsed.path or "/"
    if parsed.query:
        resource += "?" + parsed.query
    user_info = None
    if parsed.username is not None or parsed.password is not None:
        user_info = (
            urllib.parse.unquote(parsed.username or ""),
            urllib.parse.unquote(parsed.password or ""),
        )
    return WSURI(secure, host, port if port is not None else (443 if secure else 80), resource, user_info)
