"""Opening a WebSocket connection: ``connect()``.

A dial is a sequence of steps (DNS, TCP, TLS, the HTTP upgrade, negotiation) and a
failure is reported by the step that failed: each raises a :class:`DialError` whose
ending names that step in its cause (``dns.not_found``, ``tcp.refused``,
``tls.expired``, ``http.forbidden``, ``extension.missing``...). The same steps,
with their timings and details, are reported to an optional ``trace`` callback;
``wsdoctor check`` is built on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import logging
import os
import random
import socket
import ssl as ssl_module
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal

from wsdoctor.aio._handshake_io import read_handshake
from wsdoctor.aio._proxy import ProxyChoice, ProxySetting, ProxyURL, choose_proxy, http_connect, socks_connect
from wsdoctor.aio._scheme import answers_tls
from wsdoctor.aio._tls import classify_closed_after_handshake, start_client_tls, tls_info
from wsdoctor.aio._tls_policy import TLS_MIN_VERSION, enforce_tls_minimum
from wsdoctor.aio.connection import Limits, WebSocketConnection
from wsdoctor.knowledge import is_transient
from wsdoctor.protocol._arguments import check_extension_names, check_headers, check_subprotocols
from wsdoctor.protocol._deflate import DeflateConfig, ExtensionParamsError, PerMessageDeflate
from wsdoctor.protocol._ending import Ending
from wsdoctor.protocol._errors import (
    DialError,
    HandshakeError,
    InvalidOption,
    NegotiationError,
    TLSHandshakeError,
    WebSocketError,
    closed_exception,
)
from wsdoctor.protocol._handshake import (
    ClientHandshake,
    Response,
    body_excerpt,
    shown_values,
    tls_port_failure,
)
from wsdoctor.protocol._headers import serialize_extensions
from wsdoctor.protocol._redact import redact_headers, redact_text
from wsdoctor.protocol._uri import parse_uri

__all__ = ["Backoff", "Step", "connect"]

Compression = Literal["deflate"] | None


@dataclass
class Step:
    """One step of a dial, as reported to ``trace``: name, outcome, duration, details."""

    name: str
    ok: bool
    ms: float
    details: dict[str, Any] = field(default_factory=dict)


TraceCallback = Callable[[Step], None]

# Once a refusal's status line has arrived, how long its body may take (seconds).
BODY_WAIT = 1.0
# How long the wrong-scheme probe after a silent hang-up may take (seconds).
PROBE_TIMEOUT = 2.0


def _dial_error(code: int, cause: str, detail: str) -> DialError:
    return DialError(Ending(code=code, cause=cause, initiator="local", detail=detail))


def _client_cert_context(
    secure: bool,
    ssl: ssl_module.SSLContext | None,
    cert: str | os.PathLike[str] | None,
    key: str | os.PathLike[str] | None,
) -> ssl_module.SSLContext:
    """A default client context presenting ``cert``; refused before any socket opens."""
    if not secure:
        raise InvalidOption("client_cert= was given for a ws:// URI; client certificates need wss://")
    if ssl is not None:
        raise InvalidOption("pass client_cert= without ssl=, or call ssl.load_cert_chain(cert, key) on your context")
    if cert is None:
        raise InvalidOption("client_key= needs client_cert=")
    context = ssl_module.create_default_context()
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl_module.SSLError) as exc:
        raise InvalidOption(f"cannot load the client certificate {os.fspath(cert)!r}: {exc}") from None
    return context


def _set_nodelay(transport: asyncio.Transport) -> None:
    sock_obj = transport.get_extra_info("socket")
    if sock_obj is not None:
        with contextlib.suppress(OSError):  # not every platform lets us
            sock_obj.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# The statuses a client follows to another URL (RFC 9110 15.4).
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


# A Retry-After longer than this is taken as a mistake rather than waited for.
_MAX_RETRY_AFTER = 3600.0


def _retry_after(headers: Sequence[tuple[str, str]]) -> float | None:
    """The delay a ``Retry-After`` header asks for (seconds or an HTTP date), if any."""
    value = next((v.strip() for k, v in headers if k.lower() == "retry-after"), None)
    if not value:
        return None
    if value.isdigit():
        return min(float(value), _MAX_RETRY_AFTER)
    import email.utils  # an HTTP date is rare, and the module is slow to import

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - datetime.now(UTC)).total_seconds()), _MAX_RETRY_AFTER)


@dataclass(frozen=True)
class Backoff:
    """The delays between reconnection attempts: exponential, with jitter.

    The first delay is random in ``[0, initial_delay)`` so that clients dropped
    together by a restart do not come back together; then ``min_delay`` grows by
    ``factor`` up to ``max_delay``, each shortened by up to ``jitter`` of itself.
    The defaults are websockets' own.
    """

    initial_delay: float = 5.0
    min_delay: float = 3.1
    max_delay: float = 90.0
    factor: float = 1.618
    jitter: float = 0.2

    def delays(self) -> Iterator[float]:
        yield random.random() * self.initial_delay
        delay = self.min_delay
        while True:
            yield min(delay, self.max_delay) * (1.0 - self.jitter * random.random())
            delay = min(delay * self.factor, self.max_delay)


class _Redirect(Exception):
    """Raised inside a dial when the server's answer is a redirect to follow."""

    def __init__(self, status: int, reason: str, location: str, started: float) -> None:
        super().__init__(status, location)
        self.status = status
        self.reason = reason
        self.location = location
        self.started = started


class connect:
    """Open a WebSocket connection to ``uri``.

    Use ``async with connect(uri) as ws:`` (closes on exit) or ``ws = await
    connect(uri)``. Every failure raises a :class:`DialError` subclass whose
    ``.ending`` says which step failed and how to fix it.

    ``require_extensions`` names extensions the application cannot work without:
    when the server's 101 response does not negotiate one of them, the client sends
    Close 1010 naming the missing ones (RFC 6455 7.4.1) and raises
    :class:`NegotiationError` with cause ``extension.missing``.

    ``client_cert`` and ``client_key`` (PEM files; the key may sit in the certificate's
    file) present a client certificate to a server that requires one (mutual TLS),
    loaded into a default context. With your own ``ssl`` context, call its
    ``load_cert_chain(cert, key)`` instead. A server that requires a certificate and
    gets none ends the dial with 1015 ``tls.client_cert_required``.

    ``proxy`` is a proxy URL (``http://user:pass@host:3128``, ``https://...``,
    ``socks5://...``), ``None`` to dial directly, or ``True`` (the default) to take it
    from ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` unless ``NO_PROXY`` names the
    host; ``proxy_ssl`` is the TLS context for an ``https://`` proxy. Up to
    ``max_redirects`` redirects (301, 302, 303, 307, 308) are followed, never from
    ``wss://`` to ``ws://`` (cause ``redirect.downgrade``); 0 follows none.

    ``async for ws in connect(uri):`` reconnects: see :meth:`__aiter__`.
    """

    def __init__(
        self,
        uri: str,
        *,
        ssl: ssl_module.SSLContext | None = None,
        tls_min_version: ssl_module.TLSVersion = TLS_MIN_VERSION,
        server_hostname: str | None = None,
        client_cert: str | os.PathLike[str] | None = None,
        client_key: str | os.PathLike[str] | None = None,
        compression: Compression = "deflate",
        deflate: DeflateConfig | None = None,
        require_extensions: Sequence[str] = (),
        subprotocols: Sequence[str] = (),
        extra_headers: Sequence[tuple[str, str]] = (),
        origin: str | None = None,
        user_agent: str | None = "wsdoctor/0.1",
        open_timeout: float = 10.0,
        close_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        max_size: int | None = 1 << 20,
        max_frame_size: int | None = None,
        max_queue: int | None = 16,
        write_limit: int = 1 << 16,
        proxy: ProxySetting = True,
        proxy_ssl: ssl_module.SSLContext | None = None,
        max_redirects: int = 10,
        backoff: Backoff | None = None,
        trace: TraceCallback | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        # Every argument is checked here, when connect() is called: a bad one raises a
        # WebSocketError that is also a ValueError, before any DNS lookup or socket.
        if compression not in ("deflate", None):
            raise InvalidOption(f"compression must be 'deflate' or None, not {compression!r}")
        self.uri = uri
        self.wsuri = parse_uri(uri)
        if ssl is not None and not self.wsuri.secure:
            raise InvalidOption("ssl= was given for a ws:// URI; use wss:// for TLS")
        if client_cert is not None or client_key is not None:
            ssl = _client_cert_context(self.wsuri.secure, ssl, client_cert, client_key)
        self.ssl = ssl
        self.tls_min_version = tls_min_version
        self.server_hostname = server_hostname
        self.deflate = (deflate or DeflateConfig()) if compression == "deflate" else None
        self.require_extensions = check_extension_names(require_extensions)
        if self.require_extensions and self.deflate is None and "permessage-deflate" in self.require_extensions:
            raise InvalidOption("permessage-deflate is required but compression=None does not offer it")
        self.subprotocols = check_subprotocols(subprotocols)
        self.extra_headers = check_headers(extra_headers, origin=origin, has_user_info=self.wsuri.user_info is not None)
        self.origin = origin
        # A User-Agent among the extra headers replaces the default one instead of adding a second.
        if any(name.lower() == "user-agent" for name, _ in self.extra_headers):
            user_agent = None
        self.user_agent = user_agent
        self.trace = trace
        self.proxy = proxy
        self.proxy_ssl = proxy_ssl
        self.max_redirects = max_redirects
        self.backoff = backoff or Backoff()
        self._via_proxy = False
        self.limits = Limits(
            open_timeout=open_timeout,
            close_timeout=close_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            max_size=max_size,
            max_frame_size=max_frame_size,
            max_queue=max_queue,
            write_limit=write_limit,
        )
        self.logger = logger or logging.getLogger("wsdoctor.client")
        self.connection: WebSocketConnection | None = None

    # -------------------------------------------------------------- awaiting

    def __await__(self) -> Generator[Any, None, WebSocketConnection]:
        return self._open().__await__()

    async def __aenter__(self) -> WebSocketConnection:
        return await self._open()

    async def _open(self) -> WebSocketConnection:
        """Dial; every ending raised from here is told from the client's side."""
        try:
            return await self._dial()
        except WebSocketError as exc:
            if exc.ending is not None:
                exc.ending = exc.ending.with_role("client")
            raise

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.connection is not None:
            await self.connection.close()

    # ---------------------------------------------------------- reconnecting

    async def __aiter__(self) -> AsyncIterator[WebSocketConnection]:
        """``async for ws in connect(uri):`` a new connection each time the last one ended.

        The ending decides (see :func:`wsdoctor.knowledge.is_transient`): a transient
        one (refused, reset, a 1001/1011/1012/1013/1014 close, a 429 or 5xx answer)
        is retried after an exponential, jittered delay (``backoff``), honouring a
        ``Retry-After`` header; a permanent one (an untrusted certificate, a 403, a
        1008 close) is raised; a normal closure (1000) ends the loop. Each retry is
        logged on the client's logger with the ending and the delay. Leaving the
        loop body while the connection is still open closes it and dials again at once.
        """
        delays = self.backoff.delays()
        while True:
            try:
                ws = await self._dial()
            except DialError as exc:
                delay = self._retry_delay(exc.ending, delays, exc)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                continue
            delays = self.backoff.delays()  # a connection opened: start over from short delays
            fresh = False
            try:
                yield ws
            finally:
                if ws.open:
                    fresh = True
                    await ws.close()
            if fresh:
                continue
            ending = await ws.wait_closed()
            delay = self._retry_delay(ending, delays)
            if delay is None:
                if ending.ok or (ending.code == 1000 and ending.initiator == "local"):
                    return
                raise closed_exception(ending)
            await asyncio.sleep(delay)

    def _retry_delay(self, ending: Ending, delays: Iterator[float], exc: DialError | None = None) -> float | None:
        """How long to wait before dialling again, or None when the ending is permanent."""
        status = exc.status if isinstance(exc, HandshakeError) else None
        if not is_transient(ending.cause, ending.code, status):
            return None
        delay = next(delays)
        if isinstance(exc, HandshakeError):
            retry_after = _retry_after(exc.headers)
            if retry_after is not None:
                delay = max(delay, retry_after)
        detail = f" ({ending.detail})" if ending.detail else ""
        self.logger.info(
            "%s [%s]%s; reconnecting in %.2f s",
            ending.sentence(),
            ending.cause,
            detail,
            delay,
            extra={"ending": ending, "delay": delay},
        )
        return delay

    # ----------------------------------------------------------------- steps

    def _report(self, name: str, ok: bool, started: float, **details: Any) -> None:
        if self.trace is not None:
            # A trace is for printing (wsdoctor check, its --json): no credentials in it.
            if "headers" in details:
                details["headers"] = redact_headers(details["headers"])
            if isinstance(details.get("error"), str):
                details["error"] = redact_text(details["error"])
            self.trace(Step(name, ok, (time.perf_counter() - started) * 1000.0, details))

    async def _dial(self) -> WebSocketConnection:
        """Dial, following redirects: each hop is a whole new dial to the new URL."""
        hops = 0
        while True:
            try:
                return await self._dial_once()
            except _Redirect as redirect:
                hops += 1
                hop = {"status": redirect.status, "reason": redirect.reason, "location": redirect.location}
                try:
                    if hops > self.max_redirects:
                        raise _dial_error(
                            1006,
                            "redirect.too_many",
                            f"more than {self.max_redirects} redirects; the last one was to {redirect.location}",
                        ) from None
                    self._follow(redirect)
                except DialError as exc:
                    self._report("redirect", False, redirect.started, error=exc.ending.detail, **hop)
                    raise
                self._report("redirect", True, redirect.started, to=self.uri, **hop)

    async def _dial_once(self) -> WebSocketConnection:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.open_timeout
        wsuri = self.wsuri
        ws = self.limits.new_connection(is_client=True, logger=self.logger)
        choice = self._choose_proxy()
        self._via_proxy = choice.proxy is not None
        if choice.proxy is None:
            transport, address = await self._open_tcp(ws, wsuri.host, wsuri.port, deadline)
        else:
            transport, address = await self._open_proxy(ws, choice, deadline)
        try:
            return await self._after_tcp(ws, transport, deadline, address)
        except BaseException:
            if ws.transport is not None:
                ws.transport.abort()
            raise

    async def _open_tcp(
        self, ws: WebSocketConnection, host: str, port: int, deadline: float, proxy: ProxyURL | None = None
    ) -> tuple[asyncio.Transport, str]:
        """The DNS and TCP steps, to the server or, when there is one, to the proxy."""
        loop = asyncio.get_running_loop()
        via = {"via": "proxy"} if proxy is not None else {}

        # DNS
        started = time.perf_counter()
        try:
            async with asyncio.timeout_at(deadline):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError:
            self._report("dns", False, started, error="timeout", **via)
            raise _dial_error(1006, "dns.timeout", f"no answer for {host!r} within the open timeout") from None
        except socket.gaierror as exc:
            self._report("dns", False, started, error=str(exc), **via)
            whose = "the proxy host " if proxy is not None else ""
            cause = "dns.temporary" if exc.errno == socket.EAI_AGAIN else "dns.not_found"
            raise _dial_error(1006, cause, f"{whose}{host!r}: {exc.strerror or exc}") from None
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        self._report("dns", True, started, host=host, addresses=addresses, **via)

        # TCP: each address in turn, as the resolver ordered them.
        started = time.perf_counter()
        transport: asyncio.Transport | None = None
        address = host
        last_exc: BaseException | None = None
        for family, type_, proto, _, sockaddr in infos:
            try:
                async with asyncio.timeout_at(deadline):
                    sock = socket.socket(family, type_, proto)
                    sock.setblocking(False)
                    try:
                        await loop.sock_connect(sock, sockaddr)
                    except BaseException:
                        sock.close()
                        raise
                    raw, _ = await loop.create_connection(lambda: ws, sock=sock)
                    transport = raw
                    address = str(sockaddr[0])
                    break
            except TimeoutError as exc:
                last_exc = exc
                break
            except OSError as exc:
                last_exc = exc
        if transport is None:
            self._report("tcp", False, started, error=str(last_exc), **via)
            if proxy is not None:
                raise self._proxy_tcp_error(proxy, last_exc) from None
            raise self._tcp_error(last_exc) from None
        _set_nodelay(transport)
        self._report("tcp", True, started, peer=str(transport.get_extra_info("peername")), **via)
        return transport, address

    async def _closed_before_answer(self, ws: WebSocketConnection, address: str, deadline: float) -> DialError:
        """The server hung up on the upgrade request: a TLS port, a client certificate, or a server that gave up.

        Most TLS servers close without a word on a plain-text request; one TLS handshake
        (unverified, short) tells that case apart and turns it into "use wss://". On
        wss://, a TLS 1.3 server that requires a client certificate refuses it only now,
        after the handshake: that is a 1015, not a closed connection.
        """
        wsuri = self.wsuri
        if self._via_proxy:
            # The server's address is the proxy's business: no direct probe, and either may have hung up.
            return HandshakeError(
                Ending(
                    code=1006,
                    cause="tcp.closed",
                    initiator="remote",
                    detail="the server, or the proxy in between, closed the connection before answering the upgrade "
                    "request",
                )
            )
        if wsuri.secure:
            tls_ending = await classify_closed_after_handshake(
                ws.lost_error,
                host=address,
                port=wsuri.port,
                server_hostname=self.server_hostname or wsuri.host,
                timeout=max(0.001, deadline - asyncio.get_running_loop().time()),
            )
            if tls_ending is not None:
                return TLSHandshakeError(tls_ending)
        else:
            remaining = deadline - asyncio.get_running_loop().time()
            version = await answers_tls(
                address, wsuri.port, self.server_hostname or wsuri.host, max(0.2, min(PROBE_TIMEOUT, remaining))
            )
            if version is not None:
                return tls_port_failure(
                    f"the server hung up on the plain HTTP request, and {wsuri.host}:{wsuri.port} "
                    f"completes a TLS handshake ({version})"
                )
        return HandshakeError(
            Ending(
                code=1006,
                cause="tcp.closed",
                initiator="remote",
                detail="the server closed the connection before answering the upgrade request",
            )
        )

    def _tcp_error(self, exc: BaseException | None) -> DialError:
        host, port = self.wsuri.host, self.wsuri.port
        if isinstance(exc, TimeoutError):
            return _dial_error(
                1006, "tcp.timeout", f"{host}:{port} did not accept within {self.limits.open_timeout:g} s"
            )
        if isinstance(exc, ConnectionRefusedError):
            return _dial_error(1006, "tcp.refused", f"nothing is listening on {host}:{port}")
        if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return _dial_error(1006, "tcp.unreachable", f"{host}:{port}: {exc.strerror}")
        return _dial_error(1006, "tcp.reset", f"{host}:{port}: {exc}")

    def _proxy_tcp_error(self, proxy: ProxyURL, exc: BaseException | None) -> DialError:
        if isinstance(exc, TimeoutError):
            return _dial_error(
                1006, "proxy.timeout", f"the proxy {proxy} did not accept within {self.limits.open_timeout:g} s"
            )
        if isinstance(exc, ConnectionRefusedError):
            return _dial_error(1006, "proxy.refused", f"nothing is listening at the proxy {proxy}")
        return _dial_error(1006, "proxy.refused", f"cannot connect to the proxy {proxy}: {exc}")

    # ------------------------------------------------------------- proxies

    def _choose_proxy(self) -> ProxyChoice:
        choice = choose_proxy(self.wsuri, self.proxy)
        if choice.proxy is None and choice.bypassed:
            # Said out loud, because "why is my proxy variable ignored?" is a real question.
            self._report(
                "proxy", True, time.perf_counter(), bypassed=choice.bypassed, no_proxy=choice.no_proxy, direct=True
            )
        return choice

    async def _open_proxy(
        self, ws: WebSocketConnection, choice: ProxyChoice, deadline: float
    ) -> tuple[asyncio.Transport, str]:
        """The proxy step: a tunnel to the server through an HTTP or SOCKS proxy."""
        loop = asyncio.get_running_loop()
        proxy = choice.proxy
        assert proxy is not None
        wsuri = self.wsuri
        about: dict[str, Any] = {"proxy": str(proxy), "source": choice.source, "target": f"{wsuri.host}:{wsuri.port}"}
        if proxy.is_socks:
            started = time.perf_counter()
            try:
                sock = await socks_connect(proxy, wsuri.host, wsuri.port, max(0.001, deadline - loop.time()))
            except DialError as exc:
                self._report("proxy", False, started, cause=exc.ending.cause, error=exc.ending.detail, **about)
                raise
            try:
                transport, _ = await loop.create_connection(lambda: ws, sock=sock)
            except OSError as exc:
                sock.close()
                self._report("proxy", False, started, error=str(exc), **about)
                raise _dial_error(1006, "proxy.closed", f"{proxy}: {exc}") from None
            _set_nodelay(transport)
            self._report("proxy", True, started, answer=f"{proxy.scheme} tunnel open", **about)
            return transport, wsuri.host

        started = time.perf_counter()
        try:
            transport, _ = await self._open_tcp(ws, proxy.host, proxy.port, deadline, proxy=proxy)
        except DialError as exc:
            # Which proxy, and from which variable, matters most when it cannot be reached.
            self._report("proxy", False, started, cause=exc.ending.cause, error=exc.ending.detail, **about)
            raise
        started = time.perf_counter()
        try:
            if proxy.scheme == "https":
                transport = await self._proxy_tls(ws, transport, proxy, deadline)
                about["tls"] = True
            answer = await http_connect(ws, transport, proxy, wsuri.host, wsuri.port, deadline)
        except DialError as exc:
            transport.abort()
            self._report("proxy", False, started, cause=exc.ending.cause, error=exc.ending.detail, **about)
            raise
        self._report("proxy", True, started, answer=f"{answer.status} {answer.reason}".strip(), **about)
        # The server's address is the proxy's business; TLS diagnostics use the host name.
        return transport, wsuri.host

    async def _proxy_tls(
        self, ws: WebSocketConnection, transport: asyncio.Transport, proxy: ProxyURL, deadline: float
    ) -> asyncio.Transport:
        loop = asyncio.get_running_loop()
        context = self.proxy_ssl or ssl_module.create_default_context()
        try:
            async with asyncio.timeout_at(deadline):
                new = await loop.start_tls(transport, ws, context, server_hostname=proxy.host)
        except (ssl_module.SSLError, OSError, TimeoutError) as exc:
            transport.abort()
            raise _dial_error(1006, "proxy.tls", f"TLS with the proxy {proxy} failed: {exc}") from None
        assert new is not None
        ws.transport = new
        return new

    # ----------------------------------------------------------- redirects

    def _check_redirect(self, response: Response, started: float) -> None:
        """Raise ``_Redirect`` when the answer to the upgrade is a redirect to follow."""
        if self.max_redirects <= 0 or response.status not in _REDIRECTS:
            return
        location = response.get("location")
        if not location:
            return  # a redirect without a target is just an HTTP error
        raise _Redirect(response.status, response.reason, location, started)

    def _follow(self, redirect: _Redirect) -> None:
        """Point this dial at the redirect's target, refusing a TLS downgrade."""
        current = self.wsuri
        base = f"{'https' if current.secure else 'http'}://{current.host_header}{current.resource}"
        try:
            target = urllib.parse.urljoin(base, redirect.location.strip())
            scheme, sep, rest = target.partition("://")
        except ValueError as exc:
            raise _dial_error(1006, "redirect.bad_location", f"Location {redirect.location!r}: {exc}") from None
        scheme = {"http": "ws", "https": "wss"}.get(scheme.lower(), scheme.lower())
        if not sep or scheme not in ("ws", "wss"):
            raise _dial_error(
                1006, "redirect.bad_location", f"Location {redirect.location!r} is not a WebSocket or HTTP URL"
            )
        if current.secure and scheme == "ws":
            raise _dial_error(
                1006,
                "redirect.downgrade",
                f"{current} redirected ({redirect.status}) to {redirect.location!r}, which is not encrypted",
            )
        try:
            new = parse_uri(f"{scheme}://{rest}")
        except (WebSocketError, ValueError) as exc:
            raise _dial_error(1006, "redirect.bad_location", f"Location {redirect.location!r}: {exc}") from None
        same_origin = (new.secure, new.host, new.port) == (current.secure, current.host, current.port)
        if same_origin and new.user_info is None and current.user_info is not None:
            new = dataclasses.replace(new, user_info=current.user_info)
        if not same_origin:
            # Credentials meant for one server are not handed to another one.
            self.extra_headers = [(k, v) for k, v in self.extra_headers if k.lower() != "authorization"]
            if new.host != current.host:
                self.server_hostname = None
        self.wsuri = new
        self.uri = str(new)

    async def _after_tcp(
        self, ws: WebSocketConnection, transport: asyncio.Transport, deadline: float, address: str
    ) -> WebSocketConnection:
        loop = asyncio.get_running_loop()
        wsuri = self.wsuri

        # TLS
        if wsuri.secure:
            started = time.perf_counter()
            context = self.ssl or ssl_module.create_default_context()
            enforce_tls_minimum(context, self.tls_min_version)
            try:
                transport = await start_client_tls(
                    transport,
                    ws,
                    context,
                    server_hostname=self.server_hostname or wsuri.host,
                    port=wsuri.port,
                    timeout=max(0.001, deadline - loop.time()),
                    host=address,
                    probe=not self._via_proxy,
                )
            except DialError as exc:
                self._report("tls", False, started, cause=exc.ending.cause, error=exc.ending.detail)
                raise
            ws.transport = transport
            transport.set_write_buffer_limits(high=self.limits.write_limit)
            ssl_object = transport.get_extra_info("ssl_object")
            details: dict[str, Any] = {}
            if ssl_object is not None:
                info = tls_info(ssl_object)
                details = {"version": info.version, "cipher": info.cipher, "chain": info.chain}
            self._report("tls", True, started, **details)

        # HTTP upgrade
        started = time.perf_counter()
        offers = self.deflate.client_offers() if self.deflate is not None else []
        handshake = ClientHandshake(
            wsuri,
            origin=self.origin,
            subprotocols=self.subprotocols,
            extensions=offers,
            extra_headers=self.extra_headers,
            user_agent=self.user_agent,
        )
        transport.write(handshake.request_bytes())
        try:
            async with asyncio.timeout_at(deadline) as reading:

                def head_arrived() -> None:
                    # The status is known; its body only says why, so it gets a short while.
                    if not reading.expired():
                        reading.reschedule(min(deadline, loop.time() + BODY_WAIT))

                handshake.on_head = head_arrived
                response = await read_handshake(ws, handshake)
        except TimeoutError:
            response = handshake.partial()
            if response is None:
                self._report("http", False, started, error="timeout")
                raise HandshakeError(
                    Ending(
                        code=1006,
                        cause="handshake.timeout",
                        initiator="local",
                        detail=f"no complete HTTP response within {self.limits.open_timeout:g} s",
                    )
                ) from None
        except WebSocketError as exc:
            ending = exc.ending
            error = ending.detail if ending is not None and ending.detail else str(exc)
            self._report("http", False, started, error=error, cause=None if ending is None else ending.cause)
            raise
        if response is None:
            hung_up = await self._closed_before_answer(ws, address, deadline)
            self._report("http", False, started, error=hung_up.ending.detail, cause=hung_up.ending.cause)
            raise hung_up
        self._check_redirect(response, started)
        try:
            accepted = handshake.validate(response)
        except WebSocketError as exc:
            ending = exc.ending
            shown = shown_values(response) if response.status != 101 else {}
            self._report(
                "http",
                False,
                started,
                status=response.status,
                reason=response.reason,
                headers=response.headers,
                body=body_excerpt(response.body),
                shown=shown,
                cause=None if ending is None else ending.cause,
                **({} if response.status != 101 or ending is None else {"error": ending.detail}),
            )
            raise exc from None
        self._report("http", True, started, status=response.status, reason=response.reason, headers=response.headers)

        # Negotiation
        started = time.perf_counter()
        codec: PerMessageDeflate | None = None
        negotiated: list[str] = []
        for name, params in accepted.extensions:
            if name == "permessage-deflate" and self.deflate is not None and codec is None:
                try:
                    codec = self.deflate.client_accept(params)
                except ExtensionParamsError as exc:
                    self._report("negotiate", False, started, error=str(exc))
                    raise NegotiationError(
                        Ending(
                            code=1006,
                            cause="extension.bad_params",
                            initiator="local",
                            detail=f"{serialize_extensions([(name, params)])}: {exc}",
                        )
                    ) from None
                negotiated.append(name)
            else:
                self._report("negotiate", False, started, error=f"unexpected extension {name}")
                raise NegotiationError(
                    Ending(
                        code=1006,
                        cause="extension.unrequested",
                        initiator="local",
                        detail=f"the server answered with {name!r}, which was not offered or is repeated",
                    )
                )
        core = self.limits.new_core(is_client=True, deflate=codec)
        ws.subprotocol = accepted.subprotocol
        ws.extensions = negotiated
        ws.response_headers = response.headers
        ws.request_headers = handshake.request_headers
        ws.path = wsuri.resource
        missing = [name for name in self.require_extensions if name not in negotiated]
        ws.attach(core, handshake.leftover)
        self.connection = ws
        details = {
            "extensions": negotiated,
            "offered": serialize_extensions(offers) if offers else "",
            "subprotocol": accepted.subprotocol,
            "subprotocols_offered": self.subprotocols,
            "required": self.require_extensions,
        }
        if missing:
            self._report("negotiate", False, started, missing=missing, **details)
            names = ", ".join(missing)
            reason = f"missing extensions: {names}"
            encoded = reason.encode()[:123]
            ws.local_close_with_cause(1010, encoded.decode(errors="ignore"), "extension.missing", detail=names)
            ending = await ws.wait_closed()
            self.connection = None
            raise NegotiationError(ending)
        self._report("negotiate", True, started, **details)
        return ws
