"""The failure lab: loopback servers that fail in one chosen way, for testing any client.

Each :class:`Fault` is a server that goes wrong the way real servers do (an expired
certificate, an HTTP 401 on the upgrade, a peer that stops answering pings, a text
message that is not UTF-8...) and what a correct client reports about it: a close
code and a cause id. ``wsdoctor serve --fault NAME`` runs one of them for people who
test their own clients, ``wsdoctor demo`` runs a handful and checks each, and the
tests run every one of them through ``wsdoctor check``.

Certificates come from :class:`~wsdoctor.diagnose.certs.Pki`, made on demand (and
``cryptography`` imported) only for the faults that use TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wsdoctor.aio.connection import WebSocketConnection
from wsdoctor.aio.server import Server, serve
from wsdoctor.protocol._ending import Ending
from wsdoctor.protocol._errors import ConnectionClosed
from wsdoctor.protocol._handshake import Request, ServerHandshake

if TYPE_CHECKING:
    from wsdoctor.diagnose.certs import Pki

__all__ = ["FAULTS", "Fault", "RunningFault", "get_fault", "start_fault"]

HOST = "127.0.0.1"

# Where the HTTP faults' servers accept the upgrade: the target of the 302.
HEALTHY_PATH = "/healthy"

OVERSIZED = 2 * 1024 * 1024  # twice the default max_size of wsdoctor's client (and of websockets')


@dataclass(frozen=True)
class Fault:
    """One way a server fails, and what a correct client reports about it.

    ``require_extensions`` and ``check_args`` are what the client must ask for to see
    the failure (``no-deflate`` only fails a client that requires permessage-deflate).
    """

    name: str
    expected_code: int
    expected_cause: str
    secure: bool = False
    require_extensions: tuple[str, ...] = ()
    check_args: tuple[str, ...] = ()

    def expected_ending(self) -> Ending:
        """The ending a correct client reports, with the HTTP status its texts quote.

        ``http.bad_gateway`` reads "HTTP {status}: ..."; without the status the lab's
        banner would tell the user "HTTP : a proxy ... could not reach".
        """
        answer = _HTTP_ANSWERS.get(self.name)
        details = {"status": str(answer[0])} if answer is not None and self.expected_code == 1006 else {}
        return Ending(code=self.expected_code, cause=self.expected_cause, initiator="remote", details=details)


FAULTS: tuple[Fault, ...] = (
    Fault("healthy", 1000, "closed.locally"),
    Fault(
        "no-deflate",
        1010,
        "extension.missing",
        require_extensions=("permessage-deflate",),
        check_args=("--require-extension", "permessage-deflate"),
    ),
    Fault("expired", 1015, "tls.expired", secure=True),
    Fault("not-yet-valid", 1015, "tls.not_yet_valid", secure=True),
    Fault("untrusted", 1015, "tls.untrusted", secure=True),
    Fault("self-signed", 1015, "tls.self_signed", secure=True),
    Fault("hostname-mismatch", 1015, "tls.hostname", secure=True),
    Fault("incomplete-chain", 1015, "tls.incomplete_chain", secure=True),
    Fault("tls-version", 1015, "tls.version", secure=True),
    Fault("client-cert-required", 1015, "tls.client_cert_required", secure=True),
    Fault("not-tls", 1015, "tls.not_tls", secure=True),
    Fault("http-401", 1006, "http.unauthorized"),
    Fault("http-403", 1006, "http.forbidden"),
    Fault("http-404", 1006, "http.not_found"),
    Fault("http-429", 1006, "http.too_many_requests"),
    Fault("http-502", 1006, "http.bad_gateway"),
    Fault("redirect-302", 1000, "closed.locally"),
    Fault("handshake-timeout", 1006, "handshake.timeout"),
    Fault("no-pong", 1011, "keepalive.timeout"),
    Fault("close-1011", 1011, "closed.by_peer"),
    Fault("close-1013", 1013, "closed.by_peer"),
    Fault("abrupt-close", 1006, "tcp.closed"),
    Fault("invalid-utf8", 1007, "utf8.invalid"),
    Fault("oversized-message", 1009, "message.too_big"),
)


def get_fault(name: str) -> Fault:
    """The fault called ``name``; KeyError names the ones that exist."""
    for fault in FAULTS:
        if fault.name == name:
            return fault
    raise KeyError(f"no fault called {name!r}; choose one of {', '.join(f.name for f in FAULTS)}")


@dataclass
class RunningFault:
    """A fault being served: where to point a client, what to trust, and how to stop it."""

    fault: Fault
    url: str
    ca_file: str | None = None
    client_context: ssl.SSLContext | None = None
    servers: list[Server] = field(default_factory=list)
    raw: list[asyncio.Server] = field(default_factory=list)

    async def close(self) -> None:
        for server in self.servers:
            await server.close()
        for raw in self.raw:
            raw.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(raw.wait_closed(), 5)


# ----------------------------------------------------------------- handlers


async def _echo(ws: WebSocketConnection) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for message in ws:
            await ws.send(message)


def _closer(code: int, reason: str) -> Callable[[WebSocketConnection], Awaitable[None]]:
    async def close(ws: WebSocketConnection) -> None:
        await ws.close(code, reason)

    return close


async def _oversized(ws: WebSocketConnection) -> None:
    with contextlib.suppress(ConnectionClosed):
        await ws.send("x" * OVERSIZED)
        await _echo(ws)


_HTTP_ANSWERS: dict[str, tuple[int, list[tuple[str, str]], str]] = {
    "http-401": (401, [("WWW-Authenticate", 'Bearer realm="wsdoctor lab"')], "a token is required\n"),
    "http-403": (403, [], "this lab server forbids every upgrade\n"),
    "http-404": (404, [], "no WebSocket endpoint at this path\n"),
    "http-429": (429, [("Retry-After", "30")], "too many connections; retry in 30 s\n"),
    # A proxy names itself in Server: the header a correct client shows on a 502.
    "http-502": (502, [("Server", "wsdoctor-lab-proxy")], "the upstream behind this proxy is down\n"),
    "redirect-302": (302, [("Location", HEALTHY_PATH)], f"moved to {HEALTHY_PATH}\n"),
}


def _http_answer(name: str) -> Callable[[WebSocketConnection, Request], Any]:
    """A process_request hook answering ``name``'s status, except on the healthy path."""
    status, headers, body = _HTTP_ANSWERS[name]

    def answer(ws: WebSocketConnection, request: Request) -> tuple[int, list[tuple[str, str]], str] | None:
        if request.target == HEALTHY_PATH:
            return None
        return status, headers, body

    return answer


# ------------------------------------------------------- raw (broken) peers


async def _upgrade(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Accept the upgrade properly (no extensions); False when the client went away."""
    handshake = ServerHandshake()
    request = None
    while request is None:
        data = await reader.read(65536)
        if not data:
            return False
        request = handshake.receive_data(data)
    writer.write(handshake.accept(handshake.validate(request), subprotocol=None, extensions=[]))
    await writer.drain()
    return True


async def _drain_input(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass


def _raw(action: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]) -> Any:
    """A bare TCP handler that upgrades, then misbehaves as ``action`` says."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if await _upgrade(reader, writer):
                await action(reader, writer)
        except (ConnectionError, OSError, ValueError):
            pass
        except asyncio.CancelledError:
            # Cancelled at shutdown (Ctrl-C): end quietly. Python 3.11's stream server
            # asks a cancelled handler task for its exception and logs a traceback.
            pass
        finally:
            writer.close()

    return handler


async def _ignore_pings(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _drain_input(reader)  # pings are read and never answered


async def _abrupt(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(0.2)  # let the client see the 101 first
    writer.transport.abort()  # no Close frame: the TCP connection just goes away


async def _bad_utf8(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"\x81\x04ok\xff\xfe")  # a text frame whose payload is not UTF-8
    await writer.drain()
    await _drain_input(reader)


async def _never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        await _drain_input(reader)
    writer.close()


def _tls_refusal(context: ssl.SSLContext) -> Any:
    """A TLS server that refuses every handshake and says why in a TLS alert.

    The asyncio server closes without sending the alert when its handshake fails,
    and a client then only sees the connection drop; done by hand with memory BIOs
    the alert (protocol_version) reaches the client, as it does from real servers.
    """

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing, server_side=True)
        try:
            while data := await reader.read(65536):
                incoming.write(data)
                finished = True
                try:
                    tls.do_handshake()
                except ssl.SSLWantReadError:
                    finished = False
                except ssl.SSLError:
                    pass
                pending = outgoing.read()
                if pending:
                    writer.write(pending)
                    await writer.drain()
                if finished:
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    return handler


def _old_tls_only(pki: Pki, names: list[str]) -> ssl.SSLContext:
    """A server context that speaks only TLS 1.0 and 1.1, which clients refuse today."""
    context = pki.healthy(names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("ALL:@SECLEVEL=0")
    return context


# ------------------------------------------------------------------ starting


async def start_fault(
    fault: Fault,
    pki: Pki | None = None,
    *,
    host: str = HOST,
    port: int = 0,
    logger: logging.Logger | None = None,
) -> RunningFault:
    """Serve ``fault`` on ``host``:``port``; ``pki`` is required for the TLS faults.

    ``logger`` receives the server's connection endings (the lab prints them; the demo
    passes a quiet one).
    """
    name = fault.name
    names = [host]
    options: dict[str, Any] = {"ping_interval": None}
    if logger is not None:
        options["logger"] = logger
    handler: Callable[[WebSocketConnection], Awaitable[None]] = _echo
    context: ssl.SSLContext | None = None
    if fault.secure and name != "not-tls":
        if pki is None:
            raise ValueError(f"the {name} fault needs certificates: pass a Pki")
        context = _server_context(name, pki, names)
    client = pki.client_context() if fault.secure and pki is not None else None
    ca_file = str(pki.ca_file) if fault.secure and pki is not None else None

    raw_handler: Any = None
    if name == "tls-version":
        assert context is not None
        raw_handler = _tls_refusal(context)
    elif name == "no-pong":
        raw_handler = _raw(_ignore_pings)
    elif name == "abrupt-close":
        raw_handler = _raw(_abrupt)
    elif name == "invalid-utf8":
        raw_handler = _raw(_bad_utf8)
    elif name == "handshake-timeout":
        raw_handler = _never_answer
    if raw_handler is not None:
        raw = await asyncio.start_server(raw_handler, host, port)
        url = _url("wss" if fault.secure else "ws", raw.sockets[0].getsockname())
        return RunningFault(fault, url, ca_file, client, raw=[raw])

    if name == "no-deflate":
        options["compression"] = None
    elif name in _HTTP_ANSWERS:
        options["process_request"] = _http_answer(name)
    elif name == "close-1011":
        handler = _closer(1011, "database unavailable")
    elif name == "close-1013":
        handler = _closer(1013, "overloaded, try again later")
    elif name == "oversized-message":
        handler = _oversized
    server = await serve(handler, host, port, ssl=context, **options)
    scheme = "wss" if fault.secure else "ws"
    return RunningFault(fault, _url(scheme, server.sockets[0].getsockname()), ca_file, client, servers=[server])


def _server_context(name: str, pki: Pki, names: list[str]) -> ssl.SSLContext:
    if name == "expired":
        return pki.expired(names)
    if name == "not-yet-valid":
        return pki.not_yet_valid(names)
    if name == "untrusted":
        return pki.untrusted(names)
    if name == "self-signed":
        return pki.self_signed(names)
    if name == "hostname-mismatch":
        return pki.healthy(["wrong-host.example"])
    if name == "incomplete-chain":
        return pki.incomplete_chain(names)
    if name == "tls-version":
        return _old_tls_only(pki, names)
    if name == "client-cert-required":
        return pki.requiring_client_cert(names)
    return pki.healthy(names)


def _url(scheme: str, sockname: Any) -> str:
    host, port = sockname[0], sockname[1]
    return f"{scheme}://[{host}]:{port}/" if ":" in str(host) else f"{scheme}://{host}:{port}/"
