"""The exception family: one root, and every exception carries an ending.

Applications catch :class:`WebSocketError` to catch everything wsdoctor raises, or a
subclass for one kind of ending. Whatever they catch, ``exc.ending`` tells the whole
story (code, cause, frames, explanation), so a handler never has to guess from a type.

``ending`` is never ``None``. An error raised before any byte was sent (a bad URL, a
header the handshake owns, a NaN timeout) carries an ending too: code 1006, because
no Close frame was exchanged, initiator ``local`` and an ``input.*`` cause whose fix
says what to change. Such argument errors are also :class:`ValueError`, so code that
already catches ``ValueError`` around its arguments keeps working.
"""

from __future__ import annotations

from typing import ClassVar

from wsdoctor.protocol._ending import Ending
from wsdoctor.protocol._redact import redact_headers, redact_text

__all__ = [
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "DialError",
    "HandshakeError",
    "InvalidCloseCode",
    "InvalidOption",
    "LocalProtocolError",
    "NegotiationError",
    "ProtocolError",
    "TLSHandshakeError",
    "WebSocketError",
]


class WebSocketError(Exception):
    """The root of every exception wsdoctor raises on purpose.

    ``ending`` is always set: when the raiser gives none, the error describes an
    attempt that never reached the wire, with code 1006 and the class's
    ``input_cause``, so ``exc.ending.code`` works in every ``except`` block.
    """

    ending: Ending
    input_cause: ClassVar[str] = "input.other"

    def __init__(self, message: str | None = None, *, ending: Ending | None = None) -> None:
        # Messages quote what they were given (a URL, an h11 complaint about a header):
        # credentials in them are masked here, once for every exception.
        if message is not None:
            message = redact_text(message)
        if ending is None:
            ending = Ending(code=1006, cause=self.input_cause, initiator="local", detail=message or "")
        self.ending = ending
        self.message = message
        super().__init__(message if message is not None else str(ending))

    def __str__(self) -> str:
        if self.message is not None:
            return self.message
        return str(self.ending)


class ConnectionClosed(WebSocketError):
    """The connection is closed: raised by ``send``/``recv`` once the connection has ended."""

    ending: Ending

    def __init__(self, ending: Ending, message: str | None = None) -> None:
        super().__init__(message, ending=ending)

    @property
    def code(self) -> int:
        return self.ending.code

    @property
    def reason(self) -> str:
        return self.ending.reason


class ConnectionClosedOK(ConnectionClosed):
    """The connection ended through a clean close handshake with 1000 or 1001."""


class ConnectionClosedError(ConnectionClosed):
    """The connection ended any other way: an error code, a protocol error, a lost socket."""


def closed_exception(ending: Ending) -> ConnectionClosed:
    """The right ``ConnectionClosed`` subclass for an ending."""
    return ConnectionClosedOK(ending) if ending.ok else ConnectionClosedError(ending)


class DialError(WebSocketError):
    """Opening a connection failed: DNS, TCP, TLS, the HTTP upgrade, or negotiation."""

    ending: Ending

    def __init__(self, ending: Ending, message: str | None = None) -> None:
        super().__init__(message, ending=ending)

    @property
    def code(self) -> int:
        return self.ending.code


class TLSHandshakeError(DialError):
    """The TLS handshake failed; the ending has code 1015 and a ``tls.*`` cause."""


class HandshakeError(DialError):
    """The HTTP upgrade failed: a status other than 101, a bad Sec-WebSocket-Accept, no Upgrade.

    ``status``, ``headers`` and ``body`` hold what the server sent, when it sent anything;
    credential headers (``Set-Cookie``...) have their values masked, since exceptions end
    up in logs and bug reports.
    """

    def __init__(
        self,
        ending: Ending,
        message: str | None = None,
        *,
        status: int | None = None,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(ending, message)
        self.status = status
        self.headers = redact_headers(headers or [])
        self.body = body


class NegotiationError(DialError):
    """The upgrade succeeded but what was negotiated is unacceptable.

    Cause ``extension.missing`` (1010, a Close frame was sent), ``extension.unrequested``
    or ``subprotocol.mismatch`` (the connection failed without a Close frame).
    """


class ProtocolError(WebSocketError):
    """The peer broke RFC 6455 or RFC 7692.

    ``code`` is the close code to send back and ``cause`` the stable id of the
    violation; the connection turns this into its ending and a Close frame.
    """

    def __init__(self, code: int, cause: str, message: str) -> None:
        self.code = code
        self.cause = cause
        super().__init__(message, ending=Ending(code=code, cause=cause, initiator="local", detail=message))


class LocalProtocolError(WebSocketError, ValueError):
    """The application asked for something the protocol forbids (sending after close, ...)."""


class InvalidCloseCode(LocalProtocolError):
    """The application tried to send a close code that may not appear on the wire."""

    input_cause = "input.close_code"


class InvalidOption(WebSocketError, ValueError):
    """An option has a value it cannot take (a NaN timeout, a negative size...).

    Raised by ``connect()`` and ``serve()`` when they are called, before any socket
    opens; the message names the option and what it accepts.
    """

    input_cause = "input.option"
