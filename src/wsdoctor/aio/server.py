"""Accepting WebSocket connections: ``serve()``.

Each accepted TCP connection goes through TLS (when configured, done per connection
so that a client's failed TLS handshake is caught and logged with its cause), the
HTTP upgrade (bounded by ``open_timeout``), the application's ``process_request``
hook, the origin allow-list and negotiation; then the handler runs. Whatever
happens, the connection's ending is logged on the ``wsdoctor.server`` logger, with
the ending itself in the record (``record.ending``) for handlers that render it.
"""

from __future__ import annotations

import _socket
import asyncio
import dataclasses
import errno
import inspect
import logging
import socket
import ssl as ssl_module
import time
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Literal

from wsdoctor.aio._handshake_io import read_handshake
from wsdoctor.aio._tls import classify_server_tls_error
from wsdoctor.aio._tls_policy import TLS_MIN_VERSION, enforce_tls_minimum
from wsdoctor.aio.connection import Limits, WebSocketConnection
from wsdoctor.protocol._arguments import check_subprotocols
from wsdoctor.protocol._deflate import DeflateConfig, server_response
from wsdoctor.protocol._ending import Ending
from wsdoctor.protocol._errors import ConnectionClosed, InvalidOption
from wsdoctor.protocol._handshake import HandshakeFailed, Request, ServerHandshake, reason_phrase

__all__ = ["Server", "raise_descriptor_limit", "serve"]

try:
    import resource
except ImportError:  # pragma: no cover - not on Windows
    resource = None  # type: ignore[assignment]

# Accept errors that mean the process or the system ran out of something (descriptors,
# buffers): accepting again at once would fail the same way, so accepting pauses.
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# How long accepting pauses after such an error; pending clients wait in the backlog.
ACCEPT_PAUSE = 0.1
# Accepts per wake-up of the listening socket: a burst is served without starving the
# connections already open.
_ACCEPT_BATCH = 64
# Seconds without a failed accept() that end an episode (and its single log line).
_EPISODE_GAP = 1.0
_BACKLOG = 1024
# Seconds a client turned away by max_connections is asked to wait (HTTP 503 Retry-After).
RETRY_AFTER = 5


class _Accepted(socket.socket):
    """An accepted connection's socket, for ``connect_accepted_socket()``.

    ``socket.socket`` turns ``family`` and ``type`` into enum members on every read,
    and the event loop reads them three times per connection; here they are the plain
    integers the C socket holds (equal to the enum members, as IntEnums are).
    """

    __slots__ = ()
    family = _socket.socket.family  # type: ignore[assignment]
    type = _socket.socket.type  # type: ignore[assignment]
    proto = _socket.socket.proto


Handler = Callable[[WebSocketConnection], Awaitable[None]]
Rejection = tuple[int, str | bytes] | tuple[int, Sequence[tuple[str, str]], str | bytes]
ProcessRequest = Callable[[WebSocketConnection, Request], Awaitable[Rejection | None] | Rejection | None]


class Server:
    """A listening WebSocket server; build it with :func:`serve`.

    ``ssl`` serves ``wss://``. For mutual TLS, make that context require client
    certificates (``context.verify_mode = ssl.CERT_REQUIRED`` and
    ``context.load_verify_locations(cafile=...)`` with the CA that issues them, as
    ``wsdoctor serve --tls-client-ca`` does): a client without one, or with one from
    another CA, fails the TLS handshake before any HTTP, sees 1015
    ``tls.client_cert_required``, and the failure is logged here with its cause. The
    handler reads the verified certificate with
    ``ws.transport.get_extra_info("peercert")``.
    """

    def __init__(
        self,
        handler: Handler,
        host: str | Sequence[str] | None = "127.0.0.1",
        port: int = 8765,
        *,
        ssl: ssl_module.SSLContext | None = None,
        tls_min_version: ssl_module.TLSVersion = TLS_MIN_VERSION,
        compression: Literal["deflate"] | None = "deflate",
        deflate: DeflateConfig | None = None,
        subprotocols: Sequence[str] = (),
        origins: Sequence[str | None] | None = None,
        process_request: ProcessRequest | None = None,
        extra_headers: Sequence[tuple[str, str]] = (),
        server_header: str | None = "wsdoctor/0.1",
        open_timeout: float = 10.0,
        close_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        max_size: int | None = 1 << 20,
        max_frame_size: int | None = None,
        max_queue: int | None = 16,
        write_limit: int = 1 << 16,
        max_connections: int | None = None,
        logger: logging.Logger | None = None,
        sock: socket.socket | None = None,
    ) -> None:
        if compression not in ("deflate", None):
            raise InvalidOption(f"compression must be 'deflate' or None, not {compression!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise InvalidOption(f"port must be an integer from 0 to 65535 (0 picks a free one), not {port!r}")
        self.handler = handler
        self.host = host
        self._port = port
        self.ssl = ssl
        if ssl is not None:
            enforce_tls_minimum(ssl, tls_min_version)
        self.deflate = (deflate or DeflateConfig()) if compression == "deflate" else None
        self.subprotocols = check_subprotocols(subprotocols)
        self.origins = None if origins is None else list(origins)
        self.process_request = process_request
        self.extra_headers = list(extra_headers)
        if server_header:
            self.extra_headers.append(("Server", server_header))
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
        if max_connections is not None and max_connections < 1:
            raise ValueError(f"max_connections must be at least 1 (or None for no cap), not {max_connections}")
        self.max_connections = max_connections
        self.logger = logger or logging.getLogger("wsdoctor.server")
        self.sock = sock
        # Connections past the upgrade and not yet ended: what max_connections counts.
        self.established: set[WebSocketConnection] = set()
        self.connections: set[WebSocketConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._listeners: list[socket.socket] = []
        self._loop: asyncio.AbstractEventLoop  # set by start()
        self._failed_accepts = 0  # in the current episode of failed accepts
        self._episode_end: asyncio.TimerHandle | None = None
        self._closing = False
        self._closed = asyncio.Event()

    # ------------------------------------------------------------- lifecycle

    async def start(self) -> Server:
        # The server accepts by itself, with or without TLS, and hands each socket to
        # connect_accepted_socket. Owning the accept loop is what lets it report a failed
        # TLS handshake with its cause, and meet descriptor exhaustion with one log line
        # and a short pause instead of a traceback per failed accept().
        self._loop = asyncio.get_running_loop()
        self._listeners = [self.sock] if self.sock is not None else await _listen(self.host, self._port)
        for listener in self._listeners:
            listener.setblocking(False)
            listener.listen(_BACKLOG)
            self._loop.add_reader(listener.fileno(), self._accept_ready, listener)
        return self

    def _accept_ready(self, listener: socket.socket) -> None:
        # As socket.accept() does, the new socket takes the listener's family and protocol
        # (asyncio's own loop sets TCP_NODELAY only where the protocol says TCP).
        family = _Accepted.family.__get__(listener)
        proto = _Accepted.proto.__get__(listener)
        for _ in range(_ACCEPT_BATCH):
            if self._closing:
                return
            try:
                # socket.accept() would wrap the descriptor through properties that convert
                # family and type to enums, and set its blocking mode; the event loop's
                # transport sets non-blocking mode itself.
                fd, address = listener._accept()  # type: ignore[attr-defined]
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the client gave up while waiting in the backlog
            except OSError as exc:
                self._accept_failed(listener, exc)
                return
            conn = _Accepted(family, socket.SOCK_STREAM, proto, fd)
            task = self._loop.create_task(self._accept_one(conn, address))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _accept_failed(self, listener: socket.socket, exc: OSError) -> None:
        """Pause accepting after a failed accept(); say so once per episode, not once per failure.

        An episode lasts until accept() has gone ``_EPISODE_GAP`` seconds without failing,
        so a server hovering at its limit logs one line, not one per pause.
        """
        self._loop.remove_reader(listener.fileno())
        self._failed_accepts += 1
        if self._episode_end is not None:
            self._episode_end.cancel()
        self._episode_end = self._loop.call_later(_EPISODE_GAP, self._episode_over)
        if self._failed_accepts == 1:
            name = errno.errorcode.get(exc.errno or 0, "error")
            if exc.errno in _EXHAUSTED:
                limits = descriptor_limits()
                limit = f"descriptor limit {limits[0]} (hard {limits[1]})" if limits else "descriptor limit unknown"
                self.logger.warning(
                    "cannot accept connections: %s (%s); %d connections open, %s; "
                    "accepting pauses %g s at a time until descriptors are free",
                    exc.strerror,
                    name,
                    len(self._tasks),
                    limit,
                    ACCEPT_PAUSE,
                )
            else:
                self.logger.warning(
                    "cannot accept connections: %s (%s); accepting pauses %g s", exc.strerror, name, ACCEPT_PAUSE
                )
        self._loop.call_later(ACCEPT_PAUSE, self._resume_accepting, listener)

    def _episode_over(self) -> None:
        self._episode_end = None
        failed, self._failed_accepts = self._failed_accepts, 0
        if not self._closing:
            self.logger.info(
                "accepting again: %d connections open; accept() failed %d times in that episode",
                len(self._tasks),
                failed,
            )

    def _resume_accepting(self, listener: socket.socket) -> None:
        if not self._closing and listener.fileno() != -1:
            self._loop.add_reader(listener.fileno(), self._accept_ready, listener)

    async def _accept_one(self, conn: socket.socket, address: Any) -> None:
        ws = self._new_connection()
        ws.remote_address = address
        self.connections.add(ws)
        try:
            if self.ssl is None:
                await self._loop.connect_accepted_socket(lambda: ws, conn)
            else:
                await self._loop.connect_accepted_socket(
                    lambda: ws, conn, ssl=self.ssl, ssl_handshake_timeout=self.limits.open_timeout
                )
        except (OSError, TimeoutError, ssl_module.SSLError) as exc:
            conn.close()
            self.connections.discard(ws)
            if self.ssl is not None:
                self._log_ending(ws, _unopened(classify_server_tls_error(exc)))
            else:
                ending = Ending(code=1006, cause="tcp.reset", initiator="remote", detail=str(exc), opened=False)
                self._log_ending(ws, ending)
            return
        await self._run(ws)

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """Every listening socket (one per address family and host); empty until started."""
        return tuple(self._listeners)

    @property
    def port(self) -> int:
        """The port actually bound once started (so ``port=0`` tells which one); before, the one asked for.

        With several listening sockets (several hosts, ``port=0``) each may have its own
        port: ``server.sockets`` or ``server.urls`` give them all.
        """
        sockets = self.sockets
        if not sockets:
            return self._port
        return int(sockets[0].getsockname()[1])

    @property
    def port_number(self) -> int:
        """The same as :attr:`port`, under its older name."""
        return self.port

    @property
    def urls(self) -> list[str]:
        scheme = "wss" if self.ssl is not None else "ws"
        urls = []
        for sock in self.sockets:
            host, port = sock.getsockname()[:2]
            urls.append(f"{scheme}://[{host}]:{port}/" if ":" in host else f"{scheme}://{host}:{port}/")
        return urls

    async def serve_forever(self) -> None:
        """Serve until :meth:`close` is called (or the task is cancelled)."""
        await self._closed.wait()

    async def close(self, code: int = 1001, reason: str = "server shutting down") -> None:
        """Stop accepting, close every connection with a Close frame, and wait (bounded).

        Each connection gets ``code`` (1001 Going Away by default) and up to
        ``close_timeout`` seconds to finish its close handshake; stragglers are then
        aborted, so this always returns.
        """
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        if self._episode_end is not None:
            self._episode_end.cancel()
        for listener in self._listeners:
            if listener.fileno() != -1:
                self._loop.remove_reader(listener.fileno())
                listener.close()
        for ws in list(self.connections):
            if ws.core is not None:
                ws.local_close_with_cause(code, reason, "server.shutdown", detail=reason)
            elif ws.transport is not None:
                ws.transport.close()
        if self.connections:
            await asyncio.wait(
                [asyncio.ensure_future(ws.wait_closed()) for ws in self.connections],
                timeout=self.limits.close_timeout + 1.0,
            )
        for ws in list(self.connections):
            if ws.transport is not None and not ws.closed:
                ws.transport.abort()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.limits.close_timeout)
        for task in list(self._tasks):
            task.cancel()
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def __aenter__(self) -> Server:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __await__(self) -> Any:
        return self.start().__await__()

    # ----------------------------------------------------------- connections

    def _new_connection(self) -> WebSocketConnection:
        return self.limits.new_connection(is_client=False, logger=self.logger, loop=self._loop)

    async def _run(self, ws: WebSocketConnection) -> None:
        try:
            # connect_accepted_socket() returned after connection_made(): the transport is set.
            opened = await self._open(ws)
            if opened:
                await self._run_handler(ws)
            ending = await ws.wait_closed()
            # A client that left before its upgrade was answered (a TCP health check, a
            # scanner) never had a WebSocket connection: its ending's texts say so.
            self._log_ending(ws, ending if opened else _unopened(ending))
        except Exception:  # pragma: no cover - a bug of ours; never let it kill the server
            self.logger.exception("unexpected error while serving %s", ws.remote_address)
            if ws.transport is not None:
                ws.transport.abort()
        finally:
            self.connections.discard(ws)
            self.established.discard(ws)

    async def _open(self, ws: WebSocketConnection) -> bool:
        """Run TLS and the upgrade; True when the handler should run."""
        transport = ws.transport
        assert transport is not None
        handshake = ServerHandshake()
        try:
            request = await read_handshake(ws, handshake, self._loop.time() + self.limits.open_timeout)
        except TimeoutError:
            self._reject_and_log(
                ws,
                handshake,
                408,
                "the opening handshake did not complete in time\n",
                Ending(
                    code=1006,
                    cause="handshake.timeout",
                    initiator="remote",
                    detail=f"no complete upgrade request within {self.limits.open_timeout:g} s",
                ),
            )
            return False
        except HandshakeFailed as exc:
            if not exc.answer:
                transport.close()
                self._log_ending(ws, _unopened(exc.ending))
                return False
            self._reject_and_log(ws, handshake, exc.status, exc.body, exc.ending, list(exc.headers))
            return False
        if request is None:
            transport.close()
            return False
        ws.path = request.target
        ws.request_headers = request.headers

        if self.max_connections is not None and len(self.established) >= self.max_connections:
            # Turned away before any work is done for it: a full server stays responsive
            # to the connections it already has.
            self._reject_and_log(
                ws,
                handshake,
                503,
                "the server is at its connection limit; retry later\n",
                Ending(
                    code=1006,
                    cause="server.full",
                    initiator="local",
                    detail=f"{len(self.established)} connections open, max_connections={self.max_connections}",
                ),
                [("Retry-After", str(RETRY_AFTER))],
            )
            return False

        if self.process_request is not None:
            try:
                answer = self.process_request(ws, request)
                result = await answer if inspect.isawaitable(answer) else answer
            except Exception as exc:
                # A bug in the hook is the server's, not the client's: answer 500 (not a
                # dropped connection the client cannot explain) and keep the traceback.
                self.logger.error(
                    "process_request failed on %s %s: %r", format_peer(ws.remote_address), ws.path, exc, exc_info=exc
                )
                self._reject_and_log(
                    ws,
                    handshake,
                    500,
                    "the server failed while handling the request\n",
                    Ending(
                        code=1006,
                        cause="handler.error",
                        initiator="local",
                        detail=f"process_request raised {type(exc).__name__}: {exc}",
                    ),
                )
                return False
            if result is not None:
                status, headers, body = _unpack_rejection(result)
                self._reject_and_log(
                    ws,
                    handshake,
                    status,
                    body,
                    Ending(
                        code=1006,
                        cause="handshake.rejected",
                        initiator="local",
                        detail=f"process_request answered HTTP {status} {reason_phrase(status)}",
                    ),
                    headers,
                )
                return False

        try:
            offer = handshake.validate(request)
        except HandshakeFailed as exc:
            self._reject_and_log(ws, handshake, exc.status, exc.body, exc.ending, list(exc.headers))
            return False

        if self.origins is not None and offer.origin not in self.origins:
            self._reject_and_log(
                ws,
                handshake,
                403,
                "origin not allowed\n",
                Ending(
                    code=1006,
                    cause="handshake.origin",
                    initiator="local",
                    detail=f"origin {offer.origin!r} is not in the allow-list",
                ),
            )
            return False

        subprotocol = next((p for p in self.subprotocols if p in offer.subprotocols), None)
        response_extensions, codec = server_response(self.deflate, offer.extensions)
        transport.write(
            handshake.accept(
                offer,
                subprotocol=subprotocol,
                extensions=response_extensions,
                extra_headers=self.extra_headers,
            )
        )
        ws.subprotocol = subprotocol
        ws.extensions = [name for name, _ in response_extensions]
        ws.offered_extensions = offer.extensions
        if self._closing:
            transport.close()
            return False
        self.established.add(ws)
        ws.attach(
            self.limits.new_core(is_client=False, deflate=codec),
            handshake.leftover,
        )
        return True

    async def _run_handler(self, ws: WebSocketConnection) -> None:
        try:
            await self.handler(ws)
        except ConnectionClosed:
            return  # the connection's own ending says why; it is logged by _run
        except Exception as exc:
            if not ws.closed:
                self.logger.error("handler failed on %s: %r", ws.remote_address, exc, exc_info=exc)
                await ws.fail(1011, "handler.error", f"{type(exc).__name__}: {exc}")
            return
        if not ws.closed:
            await ws.close(1000)

    def _reject_and_log(
        self,
        ws: WebSocketConnection,
        handshake: ServerHandshake,
        status: int,
        body: str | bytes,
        ending: Ending | None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        transport = ws.transport
        if transport is not None and not transport.is_closing():
            transport.write(handshake.reject(status, body, headers))
            transport.close()
        if ending is not None:
            # A request answered with a success status (a page, a health check) is not a failure.
            self._log_ending(ws, _unopened(ending), logging.INFO if status < 400 else None, http_status=status)

    def _log_ending(
        self, ws: WebSocketConnection, ending: Ending, level: int | None = None, *, http_status: int | None = None
    ) -> None:
        """Log how a connection ended, once; the record carries what a log line needs.

        ``record.ending``, ``peer`` and ``path``; ``duration`` (seconds since accept),
        ``messages_in`` and ``messages_out``; ``http_status`` when the upgrade was answered
        with a plain HTTP response instead (a rejection, or ``process_request``'s answer).
        """
        if ws.ending_logged:
            return
        ws.ending_logged = True
        ending = ending.with_role("server")
        if level is None:
            level = logging.INFO if ending.ok else logging.WARNING
        self.logger.log(
            level,
            "%s %s ended: %s",
            format_peer(ws.remote_address),
            ws.path,
            ending,
            extra={
                "ending": ending,
                "peer": ws.remote_address,
                "path": ws.path,
                "duration": time.monotonic() - ws.started,
                "messages_in": ws.messages_in,
                "messages_out": ws.messages_out,
                "http_status": http_status,
            },
        )


def _unopened(ending: Ending) -> Ending:
    """An ending logged before the upgrade completed: its texts say the connection never opened."""
    return dataclasses.replace(ending, opened=False)


def format_peer(address: Any) -> str:
    """A socket address as logs show it: host:port, with IPv6 hosts in brackets."""
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)


def _unpack_rejection(result: Rejection) -> tuple[int, list[tuple[str, str]], str | bytes]:
    if len(result) == 2:
        status, body = result
        return int(status), [], body
    status, headers, body = result
    return int(status), list(headers), body


def serve(
    handler: Handler,
    host: str | Sequence[str] | None = "127.0.0.1",
    port: int = 8765,
    **kwargs: Any,
) -> Server:
    """Start a WebSocket server: ``async with serve(handler, host, port) as server``.

    ``await serve(...)`` works too and returns the started :class:`Server`. Options are
    those of :class:`Server`.
    """
    return Server(handler, host, port, **kwargs)


async def _listen(host: str | Sequence[str] | None, port: int) -> list[socket.socket]:
    """Bound, listening sockets for every address of ``host`` (all interfaces for None)."""
    loop = asyncio.get_running_loop()
    hosts = [host] if host is None or isinstance(host, str) else list(host)
    infos = []
    for h in hosts:
        infos += await loop.getaddrinfo(h, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    listeners = []
    seen = set()
    try:
        for family, type_, proto, _, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, type_, proto)
            listeners.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(_BACKLOG)
    except OSError:
        for sock in listeners:
            sock.close()
        raise
    return listeners


def descriptor_limits() -> tuple[int, int] | None:
    """The process's soft and hard limits on open file descriptors (None where unknown)."""
    if resource is None:  # pragma: no cover - not on Windows
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft, hard


def raise_descriptor_limit() -> tuple[int, int, int] | None:
    """Raise the soft descriptor limit to the hard one: every connection costs a descriptor.

    Returns ``(soft before, soft after, hard)``, or None where limits are unknown. A
    server left at a distribution's soft default (often 1024) runs out long before the
    machine does; the hard limit is what the administrator actually allows.
    """
    limits = descriptor_limits()
    if limits is None:  # pragma: no cover - not on Windows
        return None
    soft, hard = limits
    target = hard
    if hard == resource.RLIM_INFINITY:
        # An infinite hard limit cannot be a soft one on every system; take a large finite one.
        target = max(soft, 1 << 20)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft, soft, hard
    return soft, target if target > soft else soft, hard
