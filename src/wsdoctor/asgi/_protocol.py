"""uvicorn's ``--ws`` protocol class on wsdoctor's core: ASGI on one side, a WebSocketConnection on the other.

Theory of operation
-------------------
uvicorn's HTTP protocol reads a request, sees ``Upgrade: websocket`` and hands the
socket over: it builds this class with its ``config``, ``server_state`` and
``app_state``, calls ``connection_made(transport)``, feeds the request bytes it
already read through ``data_received``, and finally switches the transport to us.
From there this class *is* the connection: it subclasses :class:`WebSocketConnection`,
so frames, limits, keepalive, backpressure and the ending are exactly those of
``wsdoctor.serve``.

``connection_made`` starts one task that reads the upgrade request again with the
core's handshake parser (it checks RFC 6455 4.2.1 the same way ``serve`` does),
builds the ASGI scope and runs the application. The application decides what
answers the upgrade: ``websocket.accept`` (with a subprotocol and extra headers) sends
the 101, ``websocket.close`` before accepting answers 403, and the denial response
extension (``websocket.http.response.start``/``body``) sends any HTTP response.

When the connection ends, whatever ended it, its ending is logged on
``uvicorn.error`` with the code, the cause and the fix, and the application's next
``receive()`` gets ``websocket.disconnect`` with the peer's code and reason. On
shutdown uvicorn calls :meth:`WebSocketProtocol.shutdown`: open connections get Close
1012 (Service Restart), as with uvicorn's own implementations.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote

from uvicorn.protocols.utils import ClientDisconnected, get_local_addr, get_remote_addr, is_ssl

from wsdoctor.aio._handshake_io import read_handshake
from wsdoctor.aio.connection import Limits, WebSocketConnection
from wsdoctor.protocol._deflate import DeflateConfig, server_response
from wsdoctor.protocol._ending import Ending
from wsdoctor.protocol._errors import ConnectionClosed
from wsdoctor.protocol._handshake import HandshakeFailed, Offer, ServerHandshake

if TYPE_CHECKING:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

__all__ = ["WebSocketProtocol"]

Message = MutableMapping[str, Any]
# An application should return None; one that returns something else is logged, as uvicorn does.
ASGIApp = Callable[[Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

# Headers that the response a denial builds sets by itself: the body is sent whole.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


class WebSocketProtocol(WebSocketConnection):
    """``uvicorn app:app --ws wsdoctor.asgi:WebSocketProtocol``: the app's WebSockets served by wsdoctor.

    Every ``ws_*`` setting of uvicorn applies: ``ws_max_size`` (per message, after
    inflation), ``ws_max_queue``, ``ws_ping_interval``, ``ws_ping_timeout`` (0 or None
    disables) and ``ws_per_message_deflate``.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.app = cast(ASGIApp, config.loaded_app)
        self.app_state = app_state
        self.server_state = server_state
        self.root_path = config.root_path
        self.limits = Limits(
            ping_interval=config.ws_ping_interval or None,
            ping_timeout=config.ws_ping_timeout or None,
            max_size=config.ws_max_size,
            max_queue=config.ws_max_queue,
        )
        super().__init__(
            is_client=False,
            max_queue=self.limits.max_queue,
            write_limit=self.limits.write_limit,
            ping_interval=self.limits.ping_interval,
            ping_timeout=self.limits.ping_timeout,
            close_timeout=self.limits.close_timeout,
            logger=logging.getLogger("uvicorn.error"),
        )
        self.deflate = DeflateConfig() if config.ws_per_message_deflate else None
        self.scope: dict[str, Any] = {}
        self.scheme = "ws"
        self.server: tuple[str, int | None] | None = None
        self.client: tuple[str, int] | None = None
        self._handshake = ServerHandshake()
        self._offer: Offer | None = None
        self._connect_sent = False
        self._decided = asyncio.Event()  # the app accepted or refused the upgrade
        self._denial: tuple[int, list[tuple[str, str]], bytearray] | None = None
        self._answered = False  # an HTTP response (not a 101) went out
        self._closing_server = False
        self._task: asyncio.Task[None] | None = None

    # ----------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        t = cast(asyncio.Transport, transport)
        self.server = get_local_addr(t)
        self.client = get_remote_addr(t)
        self.scheme = "wss" if is_ssl(t) else "ws"
        self.server_state.connections.add(cast(Any, self))
        self._task = self._loop.create_task(self._serve())
        self.server_state.tasks.add(self._task)
        self._task.add_done_callback(self.server_state.tasks.discard)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.server_state.connections.discard(cast(Any, self))
        self._decided.set()

    def shutdown(self) -> None:
        """uvicorn is stopping: Close 1012 to open connections, 500 to those still in the upgrade."""
        self._closing_server = True
        if self.core is not None:
            self.local_close_with_cause(1012, "", "server.shutdown", "the ASGI server is shutting down")
        elif not self._answered and self.transport is not None:
            self._reject(500, b"Internal Server Error", (), None)

    # ------------------------------------------------------- the connection

    async def _serve(self) -> None:
        try:
            if await self._read_request():
                await self._run_app()
            ending = await self.wait_closed()
            self._log_ending(ending)
        except Exception:  # pragma: no cover - a bug of ours; never let it reach uvicorn's loop
            self.logger.exception("unexpected error while serving a WebSocket")
            if self.transport is not None:
                self.transport.abort()

    async def _read_request(self) -> bool:
        """Parse and check the upgrade request uvicorn handed over; True when the app should run."""
        try:
            async with asyncio.timeout(self.limits.open_timeout):
                request = await read_handshake(self, self._handshake)
            if request is None:
                if self.transport is not None:
                    self.transport.close()
                return False
            self._offer = self._handshake.validate(request)
        except TimeoutError:
            self._reject(408, b"", (), Ending(code=1006, cause="handshake.timeout", initiator="remote"))
            return False
        except HandshakeFailed as exc:
            body = exc.body.encode() if isinstance(exc.body, str) else exc.body
            self._reject(exc.status, body, list(exc.headers), exc.ending)
            return False
        self.path = request.target
        self.request_headers = request.headers
        raw_path, _, query = request.target.partition("?")
        self.scope = {
            "type": "websocket",
            "asgi": {"version": self.config.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": self.scheme,
            "server": self.server,
            "client": self.client,
            "root_path": self.root_path,
            "path": self.root_path + unquote(raw_path),
            "raw_path": (self.root_path + raw_path).encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in request.headers],
            "subprotocols": list(self._offer.subprotocols),
            "state": self.app_state.copy(),
            # The connection itself, for wsdoctor.Hub and broadcast() to reach it directly.
            "extensions": {"websocket.http.response": {}, "wsdoctor": {"connection": self}},
        }
        return True

    async def _run_app(self) -> None:
        try:
            result: object = await self.app(self.scope, self.asgi_receive, self.asgi_send)  # type: ignore[func-returns-value]
        except ClientDisconnected:
            return
        except ConnectionClosed:
            return  # the connection's own ending says why
        except Exception as exc:
            self.logger.error("Exception in ASGI application", exc_info=exc)
            if self.core is not None:
                if not self.closed:
                    await self.fail(1011, "handler.error", f"{type(exc).__name__}: {exc}")
            elif not self._answered:
                self._reject(
                    500, b"Internal Server Error", (), _ending("handler.error", f"{type(exc).__name__}: {exc}")
                )
            return
        if result is not None:
            self.logger.error("ASGI callable should return None, but returned %r.", result)
        if self.core is None:
            if not self._answered:
                self.logger.error("ASGI callable returned without completing the handshake.")
                self._reject(500, b"Internal Server Error", (), _ending("asgi.incomplete", ""))
            elif self.transport is not None:
                self.transport.close()
        elif not self.closed:
            await self.close(1000)

    # ------------------------------------------------------------ ASGI side

    async def asgi_receive(self) -> Message:
        """The next ASGI event: connect first, then messages, then disconnect (repeated if asked again)."""
        if not self._connect_sent:
            self._connect_sent = True
            return {"type": "websocket.connect"}
        await self._decided.wait()
        if self.core is None:
            return {"type": "websocket.disconnect", "code": 1006, "reason": ""}
        try:
            message = await self.recv()
        except ConnectionClosed as exc:
            return {"type": "websocket.disconnect", "code": exc.ending.code, "reason": exc.ending.reason}
        if isinstance(message, str):
            return {"type": "websocket.receive", "text": message}
        return {"type": "websocket.receive", "bytes": message}

    async def asgi_send(self, message: Message) -> None:
        """Carry out one ASGI send event; anything out of order raises RuntimeError, as the spec asks."""
        kind = message["type"]
        if self.transport is None or self._closed.done():
            raise ClientDisconnected()
        if self.core is None and not self._answered and self._denial is None:
            if kind == "websocket.accept":
                self._accept(message.get("subprotocol"), message.get("headers") or [])
            elif kind == "websocket.close":
                self.logger.info('%s - "WebSocket %s" 403', _peer(self.client), self.path)
                self._reject(403, b"", (), _ending("asgi.rejected", "the application closed before accepting"))
            elif kind == "websocket.http.response.start":
                status = int(message["status"])
                if not 100 <= status < 600:
                    raise RuntimeError(f"Invalid HTTP status code '{status}' in response.")
                headers = [
                    (k.decode("latin-1"), v.decode("latin-1"))
                    for k, v in message.get("headers") or []
                    if k.decode("latin-1").lower() not in _FRAMING_HEADERS
                ]
                self._denial = (status, headers, bytearray())
            else:
                raise RuntimeError(
                    "Expected ASGI message 'websocket.accept', 'websocket.close' or "
                    f"'websocket.http.response.start' but got {kind!r}."
                )
            return
        if self._denial is not None:
            if kind != "websocket.http.response.body":
                raise RuntimeError(f"Expected ASGI message 'websocket.http.response.body' but got {kind!r}.")
            status, headers, body = self._denial
            body += message.get("body", b"")
            if not message.get("more_body", False):
                self._denial = None
                self.logger.info('%s - "WebSocket %s" %d', _peer(self.client), self.path, status)
                self._reject(status, bytes(body), headers, _ending("asgi.rejected", f"HTTP {status}"))
            return
        if self.core is None or self.core.close_sent is not None:
            raise RuntimeError(f"Unexpected ASGI message {kind!r}, after sending 'websocket.close'.")
        if kind == "websocket.send":
            data = message.get("bytes")
            if data is None:
                data = message.get("text")
            if data is None:
                raise RuntimeError("websocket.send needs 'text' or 'bytes'")
            try:
                await self.send(data)
            except ConnectionClosed:
                raise ClientDisconnected() from None
        elif kind == "websocket.close":
            code = message.get("code", 1000)
            self.local_close_with_cause(int(code), message.get("reason") or "", "closed.locally")
        else:
            raise RuntimeError(f"Expected ASGI message 'websocket.send' or 'websocket.close', but got {kind!r}.")

    # ------------------------------------------------------------ internals

    def _accept(self, subprotocol: str | None, headers: list[tuple[bytes, bytes]]) -> None:
        offer = self._offer
        assert offer is not None and self.transport is not None
        if self._closing_server or self.transport.is_closing():
            return
        response_extensions, codec = server_response(self.deflate, offer.extensions)
        extra = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self.server_state.default_headers]
        extra += [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]
        self.transport.write(
            self._handshake.accept(offer, subprotocol=subprotocol, extensions=response_extensions, extra_headers=extra)
        )
        self.logger.info('%s - "WebSocket %s" [accepted]', _peer(self.client), self.path)
        self.subprotocol = subprotocol
        self.extensions = [name for name, _ in response_extensions]
        self.offered_extensions = offer.extensions
        self.attach(self.limits.new_core(is_client=False, deflate=codec), self._handshake.leftover)
        self._decided.set()

    def _reject(self, status: int, body: bytes, headers: Any, ending: Ending | None) -> None:
        self._answered = True
        self._decided.set()
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(self._handshake.reject(status, body, headers))
            transport.close()
        if ending is not None:
            self._log_ending(ending, logging.INFO if status < 400 or ending.cause == "asgi.rejected" else None)

    def _log_ending(self, ending: Ending, level: int | None = None) -> None:
        if self.ending_logged:
            return
        self.ending_logged = True
        ending = ending.with_role("server")  # the log speaks to whoever runs the server
        if level is None:
            level = logging.INFO if ending.ok or ending.cause == "server.shutdown" else logging.WARNING
        self.logger.log(
            level,
            '%s - "WebSocket %s" ended: %s Cause: %s. Fix: %s',
            _peer(self.client),
            self.path,
            ending,
            ending.cause,
            ending.fix,
            extra={"ending": ending, "peer": self.client, "path": self.path},
        )


def _ending(cause: str, detail: str) -> Ending:
    return Ending(code=1006, cause=cause, initiator="local", detail=detail)


def _peer(client: tuple[str, int] | None) -> str:
    if client is None:
        return ""
    host, port = client
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
