"""The opening handshake of RFC 6455 section 4, both roles, sans I/O.

HTTP/1.1 itself (request and status lines, header syntax, bodies, size limits) is
left to h11; this module adds what WebSocket requires on top of it. Every failure
carries an :class:`Ending` whose cause says exactly which rule was broken, and on
the server side the HTTP status to answer with.
"""

from __future__ import annotations

import base64
import hashlib
import http
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import h11

from wsdoctor.protocol._ending import Ending
from wsdoctor.protocol._errors import HandshakeError, NegotiationError, WebSocketError
from wsdoctor.protocol._headers import (
    ExtensionItem,
    InvalidHeader,
    parse_extensions,
    parse_subprotocols,
    parse_token_list,
    serialize_extensions,
    serialize_subprotocols,
)
from wsdoctor.protocol._redact import redact_text
from wsdoctor.protocol._request_head import could_be_simple, parse_simple_request, response_101
from wsdoctor.protocol._uri import WSURI

__all__ = [
    "Accepted",
    "ClientHandshake",
    "HandshakeFailed",
    "Offer",
    "Request",
    "Response",
    "ServerHandshake",
    "accept_key",
    "body_excerpt",
    "looks_like_tls",
    "shown_values",
    "status_failure",
    "tls_port_failure",
]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_BODY = 65536
# How much of a rejection's body is shown: JSON carries this many bytes, one-line
# renderings (the exception's message, the check step line) a shorter, flattened part.
BODY_EXCERPT = 500
_BODY_INLINE = 160


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 4.2.2)."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def _joined(values: list[str] | None) -> str | None:
    """A header's values as one, the way repeated fields combine (RFC 9110 5.3); None when absent."""
    return ", ".join(values) if values else None


class _Headers:
    headers: list[tuple[str, str]]

    def get(self, name: str) -> str | None:
        name = name.lower()
        return _joined([v for k, v in self.headers if k == name])

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k == name]


@dataclass(frozen=True)
class Request(_Headers):
    """An HTTP request as received; header names are lower-cased."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    http_version: str = "1.1"


@dataclass(frozen=True)
class Response(_Headers):
    """An HTTP response as received; header names are lower-cased."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes = b""


@dataclass(frozen=True)
class Accepted:
    """What the server's 101 response negotiated."""

    subprotocol: str | None
    extensions: list[ExtensionItem]
    response: Response


@dataclass(frozen=True)
class Offer:
    """A valid upgrade request, as the server sees it."""

    key: str
    subprotocols: list[str]
    extensions: list[ExtensionItem]
    origin: str | None
    path: str
    request: Request = field(repr=False)


class HandshakeFailed(WebSocketError):
    """The client's upgrade request is not acceptable; answer with ``status``."""

    ending: Ending

    def __init__(
        self,
        status: int,
        body: str,
        ending: Ending,
        headers: Sequence[tuple[str, str]] = (),
        *,
        answer: bool = True,
    ) -> None:
        super().__init__(body.strip(), ending=ending)
        self.status = status
        self.body = redact_text(body)  # it may quote the request's own credentials back
        self.headers = list(headers)
        # False when an HTTP answer would be noise to the peer (a TLS client): just close.
        self.answer = answer


def _header_size(raw: Sequence[tuple[bytes, bytes]]) -> int:
    # h11 bounds only an *incomplete* head; a complete one that arrives in one read is
    # measured here so the limit holds however the bytes were split.
    return sum(len(k) + len(v) + 4 for k, v in raw)


def _decode_headers(raw: Sequence[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in raw]


def _has_token(values: list[str], token: str) -> bool:
    if len(values) == 1 and values[0].lower() == token:
        return True  # the usual single value, without walking the grammar
    try:
        return token in (t.lower() for t in parse_token_list(values))
    except InvalidHeader:
        return False


def _client_failure(cause: str, detail: str, response: Response | None = None) -> HandshakeError:
    return HandshakeError(
        Ending(code=1006, cause=cause, initiator="local", detail=detail),
        status=None if response is None else response.status,
        headers=None if response is None else response.headers,
        body=b"" if response is None else response.body,
    )


def tls_port_failure(detail: str) -> HandshakeError:
    """A ws:// dial that reached a port speaking TLS: the fix is wss://."""
    return HandshakeError(
        Ending(code=1006, cause="http.tls_port", initiator="local", detail=detail),
        f"the port speaks TLS, not plain HTTP: use wss:// ({detail})",
    )


class _FirstBytes:
    """A stream's first bytes, held back until three of them can tell TLS from HTTP.

    Both sides of the handshake check the first bytes for a TLS record (the wrong
    scheme) before any HTTP parser sees them; this is the holding back they share.
    """

    __slots__ = ("held", "waiting")

    def __init__(self) -> None:
        self.held = b""
        self.waiting = True

    def take(self, data: bytes) -> bytes | None:
        """Everything held so far once three bytes have come (then never again); None before."""
        self.held += data
        if len(self.held) < 3:
            return None
        self.waiting = False
        data, self.held = self.held, b""
        return data


def looks_like_tls(data: bytes) -> bool:
    """True when ``data`` starts like a TLS record: a handshake (0x16) or alert (0x15), version 3.x.

    A port that speaks TLS answers a plain-text request with an alert, or a plain port
    receives a ClientHello; either way these three bytes give the wrong scheme away
    before any HTTP parser gets confused by them.
    """
    return len(data) >= 3 and data[0] in (0x15, 0x16) and data[1] == 0x03 and data[2] <= 0x04


def body_excerpt(body: bytes, limit: int = BODY_EXCERPT) -> str:
    """The first ``limit`` bytes of a body as printable text (control bytes escaped)."""
    text = body[:limit].decode("utf-8", errors="replace")
    out = "".join(ch if ch.isprintable() or ch in "\n\t" else f"\\x{ord(ch):02x}" for ch in text)
    return out + ("..." if len(body) > limit else "")


def _inline(text: str, limit: int = _BODY_INLINE) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


_REALM = re.compile(r'realm\s*=\s*(?:"([^"]*)"|([^\s,]+))', re.IGNORECASE)


def _challenge(values: list[str]) -> str:
    """The scheme and realm of each authentication challenge, e.g. ``Basic realm="chat"``."""
    shown = []
    for value in values:
        scheme = value.strip().split(" ", 1)[0].rstrip(",")
        match = _REALM.search(value)
        realm = (match.group(1) if match.group(1) is not None else match.group(2)) if match else None
        shown.append(f'{scheme} realm="{realm}"' if realm is not None else scheme)
    return ", ".join(s for s in shown if s)


# The cause of a non-101 answer, by status: each class of status has its own fix.
_STATUS_CAUSES = {
    400: "http.bad_request",
    401: "http.unauthorized",
    403: "http.forbidden",
    404: "http.not_found",
    407: "http.proxy_auth",
    426: "http.upgrade_required",
    429: "http.too_many_requests",
    502: "http.bad_gateway",
    503: "http.unavailable",
    504: "http.bad_gateway",
}


# What well-known TLS front ends answer when plain HTTP reaches their TLS port (nginx,
# Go's net/http): a 400 that is really "use wss://".
_TLS_PORT_BODIES = (b"plain http request was sent to https port", b"http request to an https server")


def _status_cause(status: int, body: bytes = b"") -> str:
    if status == 400 and any(mark in body[:BODY_EXCERPT].lower() for mark in _TLS_PORT_BODIES):
        return "http.tls_port"
    if status in _STATUS_CAUSES:
        return _STATUS_CAUSES[status]
    if 200 <= status < 300:
        return "http.not_websocket"
    if 300 <= status < 400:
        return "http.redirect"
    if 500 <= status < 600:
        return "http.server_error"
    return "handshake.status"


def shown_values(response: Response) -> dict[str, str]:
    """The values of a refusal that say what to do about it, by header name ("body" for the body)."""
    cause = _status_cause(response.status, response.body)
    shown: dict[str, str] = {}

    def add(label: str, value: str | None) -> None:
        if value:
            shown[label] = _inline(value)

    if cause == "http.redirect":
        add("Location", response.get("location"))
    elif cause in ("http.bad_request", "http.tls_port"):
        add("body", body_excerpt(response.body, _BODY_INLINE * 2))
    elif cause == "http.unauthorized":
        add("WWW-Authenticate", _challenge(response.get_all("www-authenticate")))
    elif cause == "http.proxy_auth":
        add("Proxy-Authenticate", _challenge(response.get_all("proxy-authenticate")))
    elif cause == "http.upgrade_required":
        add("Sec-WebSocket-Version", response.get("sec-websocket-version"))
    elif cause == "http.not_websocket":
        add("Content-Type", response.get("content-type"))
    if cause in ("http.bad_gateway", "http.unavailable", "http.server_error"):
        add("Server", response.get("server"))
    add("Retry-After", response.get("retry-after"))
    return shown


# Placeholder names for the shown values, as the cause texts may use them.
_PLACEHOLDERS = {
    "Location": "location",
    "body": "body",
    "WWW-Authenticate": "challenge",
    "Proxy-Authenticate": "challenge",
    "Sec-WebSocket-Version": "version",
    "Content-Type": "content_type",
    "Server": "server",
    "Retry-After": "retry_after",
}


def status_failure(response: Response) -> HandshakeError:
    """The error for an upgrade answered with a status other than 101.

    Its message starts with the status and reason phrase and carries the values that
    say what to do (an application that only logs the exception still sees them);
    ``ending.details`` holds them by name for the cause texts and the command line.
    """
    status = response.status
    reason = response.reason or reason_phrase(status)
    cause = _status_cause(status, response.body)
    shown = shown_values(response)
    head = f"HTTP {status} {reason}".strip()
    parts = [head] + [f"{name}: {value!r}" if name == "body" else f"{name}: {value}" for name, value in shown.items()]
    detail = "; ".join(parts)
    details = {"status": str(status), "reason": reason}
    details.update({_PLACEHOLDERS[name]: value for name, value in shown.items()})
    ending = Ending(code=1006, cause=cause, initiator="remote", detail=detail, details=details)
    return HandshakeError(
        ending,
        f"server rejected WebSocket connection: {detail} [{cause}]",
        status=status,
        headers=response.headers,
        body=response.body,
    )


class ClientHandshake:
    """The client's side: build the upgrade request, read and check the response."""

    def __init__(
        self,
        uri: WSURI,
        *,
        origin: str | None = None,
        subprotocols: Sequence[str] = (),
        extensions: Sequence[ExtensionItem] = (),
        extra_headers: Sequence[tuple[str, str]] = (),
        user_agent: str | None = "wsdoctor/0.1",
        key: str | None = None,
        max_header_size: int = 16384,
        max_headers: int = 128,
    ) -> None:
        self.uri = uri
        self.origin = origin
        self.subprotocols = list(subprotocols)
        self.extensions = list(extensions)
        self.extra_headers = list(extra_headers)
        self.user_agent = user_agent
        self.key = key or base64.b64encode(os.urandom(16)).decode()
        self.max_headers = max_headers
        self.max_header_size = max_header_size
        self.leftover = b""
        self.request_headers: list[tuple[str, str]] = []
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_header_size)
        self._response: h11.Response | h11.InformationalResponse | None = None
        self._body = bytearray()
        self._first = _FirstBytes()
        # Called once the head of a non-101 response has arrived: the caller then waits
        # only a short while for its body, which exists to say why the upgrade was refused.
        self.on_head: Callable[[], None] | None = None

    def request_bytes(self) -> bytes:
        headers: list[tuple[str, str]] = [
            ("Host", self.uri.host_header),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", self.key),
            ("Sec-WebSocket-Version", "13"),
        ]
        if self.origin is not None:
            headers.append(("Origin", self.origin))
        if self.subprotocols:
            headers.append(("Sec-WebSocket-Protocol", serialize_subprotocols(self.subprotocols)))
        if self.extensions:
            headers.append(("Sec-WebSocket-Extensions", serialize_extensions(self.extensions)))
        if self.uri.user_info is not None:
            user, password = self.uri.user_info
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers.append(("Authorization", f"Basic {token}"))
        if self.user_agent:
            headers.append(("User-Agent", self.user_agent))
        headers.extend(self.extra_headers)
        self.request_headers = headers
        try:
            return self._h11.send(h11.Request(method="GET", target=self.uri.resource, headers=headers))
        except h11.LocalProtocolError as exc:
            raise ValueError(redact_text(f"cannot build the upgrade request: {exc}")) from None

    def receive_data(self, data: bytes) -> Response | None:
        """Feed response bytes; returns the Response once it is complete.

        A TLS record as the first bytes means the URL says ws:// but the port speaks TLS:
        that is reported as such (``http.tls_port``), not as malformed HTTP.
        """
        if self._first.waiting:
            first = self._first.take(data)
            if first is None:
                return None
            data = first
            if looks_like_tls(data):
                raise tls_port_failure(f"the server answered with a TLS record ({data[:3].hex(' ')}), not HTTP")
        if data:  # h11 takes b"" for the end of the stream; that is receive_eof()'s job
            self._h11.receive_data(data)
        return self._next()

    @property
    def head_received(self) -> bool:
        """True once the status line and headers of the final response have arrived."""
        return self._response is not None

    def partial(self) -> Response | None:
        """The response so far (head and the body received), for a body that never ends."""
        return self._build() if self._response is not None else None

    def receive_eof(self) -> Response | None:
        """The server closed the connection: a body read until EOF is now complete."""
        if self._response is None:
            return None
        self._h11.receive_data(b"")
        return self._next(eof=True)

    def _next(self, eof: bool = False) -> Response | None:
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                if eof and self._response is not None:
                    return self._build()
                raise _client_failure("handshake.malformed", f"the response is not valid HTTP/1.1: {exc}") from None
            if isinstance(event, h11.InformationalResponse):
                if event.status_code == 101:
                    self._response = event
                    self.leftover = bytes(self._h11.trailing_data[0])
                    return self._build()
                continue  # 100 Continue and friends are not for us
            if isinstance(event, h11.Response):
                self._response = event
                if self.on_head is not None:
                    self.on_head()
            elif isinstance(event, h11.Data):
                self._body += event.data[: MAX_BODY - len(self._body)]
                if len(self._body) >= MAX_BODY:
                    return self._build()  # enough to explain the refusal; the rest is not read
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return self._build()
            elif event is h11.NEED_DATA:
                if eof:
                    return self._build() if self._response is not None else None
                return None
            else:
                return self._build() if self._response is not None else None

    def _build(self) -> Response:
        response = self._response
        assert response is not None
        headers = _decode_headers(response.headers)
        if len(headers) > self.max_headers:
            raise _client_failure("handshake.malformed", f"the response has more than {self.max_headers} headers")
        if _header_size(response.headers) > self.max_header_size:
            raise _client_failure("handshake.malformed", f"the response headers exceed {self.max_header_size} bytes")
        return Response(response.status_code, response.reason.decode("latin-1"), headers, bytes(self._body))

    def validate(self, response: Response) -> Accepted:
        """Check the response against RFC 6455 4.1; raise with the precise cause otherwise."""
        if response.status != 101:
            raise status_failure(response)
        if not _has_token(response.get_all("upgrade"), "websocket"):
            raise _client_failure(
                "handshake.no_upgrade",
                f"Upgrade header is {response.get('upgrade')!r}, not 'websocket'",
                response,
            )
        if not _has_token(response.get_all("connection"), "upgrade"):
            raise _client_failure(
                "handshake.no_upgrade",
                f"Connection header is {response.get('connection')!r}, not 'Upgrade'",
                response,
            )
        accept = response.get("sec-websocket-accept")
        expected = accept_key(self.key)
        if accept != expected:
            raise _client_failure(
                "handshake.bad_accept", f"Sec-WebSocket-Accept is {accept!r}, expected {expected!r}", response
            )
        try:
            extensions = parse_extensions(response.get_all("sec-websocket-extensions"))
        except InvalidHeader as exc:
            raise _client_failure("handshake.malformed", str(exc), response) from None
        offered = {name for name, _ in self.extensions}
        for name, _ in extensions:
            if name not in offered:
                raise NegotiationError(
                    Ending(
                        code=1006,
                        cause="extension.unrequested",
                        initiator="local",
                        detail=f"the server accepted {name!r}, which the client did not offer",
                    )
                )
        protocols = response.get_all("sec-websocket-protocol")
        subprotocol = None
        if protocols:
            try:
                names = parse_subprotocols(protocols)
            except InvalidHeader as exc:
                raise _client_failure("handshake.malformed", str(exc), response) from None
            if len(names) != 1 or names[0] not in self.subprotocols:
                offered_text = ", ".join(self.subprotocols) or "none"
                raise NegotiationError(
                    Ending(
                        code=1006,
                        cause="subprotocol.mismatch",
                        initiator="local",
                        detail=f"the server chose {', '.join(names)!r}; the client offered: {offered_text}",
                    )
                )
            subprotocol = names[0]
        return Accepted(subprotocol, extensions, response)


def reason_phrase(status: int) -> str:
    """The standard reason phrase of an HTTP status, or "" for a status with none."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _server_failure(status: int, cause: str, message: str, headers: Sequence[tuple[str, str]] = ()) -> HandshakeFailed:
    return HandshakeFailed(
        status,
        message + "\n",
        Ending(code=1002, cause=cause, initiator="remote", detail=message),
        headers,
    )


class ServerHandshake:
    """The server's side: read and check the upgrade request, then accept or reject it."""

    def __init__(self, *, max_header_size: int = 16384, max_headers: int = 128) -> None:
        self.max_headers = max_headers
        self.max_header_size = max_header_size
        self.leftover = b""
        self._h11: h11.Connection | None = None  # created only when the fast path falls back
        self._request: h11.Request | None = None
        # The fast path (see _request_head) reads a plain request without h11; ``_head``
        # holds its bytes until the head is complete, None once h11 has taken over.
        self._head: bytearray | None = bytearray()
        self._fast = False
        self._first = _FirstBytes()

    def receive_data(self, data: bytes) -> Request | None:
        """Feed request bytes; returns the Request once its head is complete.

        A TLS ClientHello as the first bytes is a client that dialled wss:// to this
        plain port: it is reported as such, and the server closes without an HTTP
        answer, which a TLS client could not read anyway.
        """
        if self._first.waiting:
            first = self._first.take(data)
            if first is None:
                return None
            data = first
            if looks_like_tls(data):
                raise HandshakeFailed(
                    400,
                    "",
                    Ending(
                        code=1015,
                        cause="tls.plain_port",
                        initiator="remote",
                        detail=f"the client sent a TLS record ({data[:3].hex(' ')}) to this plain port",
                    ),
                    answer=False,
                )
        head = self._head
        if head is not None:
            start = max(len(head) - 3, 0)
            head += data
            end = head.find(b"\r\n\r\n", start)
            if end >= 0:
                request = self._fast_request(bytes(head[:end]), bytes(head[end + 4 :]))
                if request is not None:
                    return request
            elif could_be_simple(head, len(head) - len(data)) and len(head) <= self.max_header_size:
                return None
            # Not the simple shape, or not a head at all: h11 reads everything from here.
            self._head = None
            data = bytes(head)
        if data:  # h11 takes b"" for the end of the stream; that is receive_eof()'s job
            self._parser().receive_data(data)
        return self._next()

    def _parser(self) -> h11.Connection:
        if self._h11 is None:
            self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=self.max_header_size)
        return self._h11

    def _fast_request(self, head: bytes, rest: bytes) -> Request | None:
        parsed = parse_simple_request(head)
        if parsed is None:
            return None
        target, headers = parsed
        self._head = None
        self._fast = True
        self.leftover = rest
        if len(head) + 4 > self.max_header_size:
            raise _server_failure(
                431, "handshake.malformed", f"the request headers exceed {self.max_header_size} bytes"
            )
        if len(headers) > self.max_headers:
            raise _server_failure(431, "handshake.malformed", f"the request has more than {self.max_headers} headers")
        return Request("GET", target, headers, "1.1")

    def receive_eof(self) -> Request | None:
        pending = self._first.held + (bytes(self._head) if self._head is not None else b"")
        self._first.held, self._head = b"", None
        if pending:
            self._parser().receive_data(pending)
        self._parser().receive_data(b"")
        return self._next(eof=True)

    def _next(self, eof: bool = False) -> Request | None:
        while True:
            try:
                event = self._parser().next_event()
            except h11.RemoteProtocolError as exc:
                status = exc.error_status_hint
                if status == 400 and "too large" in str(exc).lower():
                    status = 431
                raise _server_failure(
                    status, "handshake.malformed", f"the request is not valid HTTP/1.1: {exc}"
                ) from None
            if isinstance(event, h11.Request):
                self._request = event
                continue
            if event is h11.NEED_DATA and not eof:
                return None
            if self._request is None:
                if eof or isinstance(event, h11.ConnectionClosed):
                    return None
                continue
            if isinstance(event, h11.Data):
                raise _server_failure(400, "handshake.bad_request", "an upgrade request must not have a body")
            self.leftover = bytes(self._parser().trailing_data[0])
            request = self._request
            headers = _decode_headers(request.headers)
            if _header_size(request.headers) > self.max_header_size:
                raise _server_failure(
                    431, "handshake.malformed", f"the request headers exceed {self.max_header_size} bytes"
                )
            if len(headers) > self.max_headers:
                raise _server_failure(
                    431, "handshake.malformed", f"the request has more than {self.max_headers} headers"
                )
            return Request(
                request.method.decode("latin-1"),
                request.target.decode("latin-1"),
                headers,
                request.http_version.decode("latin-1"),
            )

    def validate(self, request: Request) -> Offer:
        """Check the request against RFC 6455 4.2.1; raise HandshakeFailed otherwise."""
        if request.method != "GET":
            raise _server_failure(
                405, "handshake.bad_request", f"method {request.method} is not GET", [("Allow", "GET")]
            )
        if request.http_version != "1.1":
            raise _server_failure(400, "handshake.bad_request", f"HTTP/{request.http_version} is not HTTP/1.1")
        # One pass over the headers instead of one per header looked up.
        fields: dict[str, list[str]] = {}
        for name, value in request.headers:
            values = fields.get(name)
            if values is None:
                fields[name] = [value]
            else:
                values.append(value)
        if "host" not in fields:
            raise _server_failure(400, "handshake.bad_request", "the Host header is missing")
        if not _has_token(fields.get("upgrade", []), "websocket"):
            raise _server_failure(
                426,
                "handshake.bad_request",
                f"Upgrade header is {request.get('upgrade')!r}, not 'websocket': this is a WebSocket endpoint",
                [("Upgrade", "websocket"), ("Connection", "Upgrade")],
            )
        if not _has_token(fields.get("connection", []), "upgrade"):
            raise _server_failure(
                400,
                "handshake.bad_request",
                f"Connection header is {request.get('connection')!r}, not 'Upgrade'",
            )
        version = _joined(fields.get("sec-websocket-version"))
        if version != "13":
            raise _server_failure(
                426,
                "handshake.bad_version",
                f"Sec-WebSocket-Version is {version!r}; this server speaks 13",
                [("Sec-WebSocket-Version", "13")],
            )
        keys = fields.get("sec-websocket-key", [])
        try:
            valid_key = len(keys) == 1 and len(base64.b64decode(keys[0], validate=True)) == 16
        except ValueError:  # binascii.Error, and non-ASCII text (decoded as latin-1 from the wire)
            valid_key = False
        if not valid_key:
            raise _server_failure(400, "handshake.bad_request", f"Sec-WebSocket-Key {keys!r} is not base64 of 16 bytes")
        try:
            subprotocols = parse_subprotocols(fields.get("sec-websocket-protocol", []))
            extensions = parse_extensions(fields.get("sec-websocket-extensions", []))
        except InvalidHeader as exc:
            raise _server_failure(400, "handshake.bad_request", str(exc)) from None
        path = request.target
        return Offer(keys[0], subprotocols, extensions, _joined(fields.get("origin")), path, request)

    def accept(
        self,
        offer: Offer,
        *,
        subprotocol: str | None,
        extensions: list[ExtensionItem],
        extra_headers: Sequence[tuple[str, str]] = (),
    ) -> bytes:
        """The bytes of the 101 response."""
        if self._fast:
            serialized = None if not extensions else serialize_extensions(extensions)
            response = response_101(accept_key(offer.key), subprotocol, serialized, extra_headers)
            if response is not None:
                return response
            # A header h11 must judge: let it see the request it would have parsed.
            self._fast = False
            self._parser().receive_data(_rebuild(offer.request))
            self._parser().next_event()
        headers: list[tuple[str, str]] = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept_key(offer.key)),
        ]
        if subprotocol is not None:
            headers.append(("Sec-WebSocket-Protocol", subprotocol))
        if extensions:
            headers.append(("Sec-WebSocket-Extensions", serialize_extensions(extensions)))
        headers.extend(extra_headers)
        return self._parser().send(
            h11.InformationalResponse(status_code=101, headers=headers, reason=b"Switching Protocols")
        )

    def reject(self, status: int, body: bytes | str = b"", headers: Sequence[tuple[str, str]] = ()) -> bytes:
        """The bytes of a complete HTTP error response, after which the connection closes."""
        data = body.encode() if isinstance(body, str) else body
        all_headers = list(headers)
        names = {k.lower() for k, _ in all_headers}
        if "content-type" not in names:
            all_headers.append(("Content-Type", "text/plain; charset=utf-8"))
        all_headers += [("Content-Length", str(len(data))), ("Connection", "close")]
        reason = reason_phrase(status).encode()
        # The response is serialised by a fresh h11 connection: the request may have been
        # rejected before h11 saw a complete one, and an error response must still go out.
        writer = h11.Connection(h11.SERVER)
        writer.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        writer.next_event()
        out = writer.send(h11.Response(status_code=status, headers=all_headers, reason=reason))
        out += writer.send(h11.Data(data=data)) if data else b""
        out += writer.send(h11.EndOfMessage())
        return out


def _rebuild(request: Request) -> bytes:
    """A request head h11 parses to ``request`` (for the rare fast-path fallback in accept)."""
    lines = [f"{request.method} {request.target} HTTP/{request.http_version}"]
    lines += [f"{name}: {value}" for name, value in request.headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
