"""Loopback servers that fail in the ways people meet, and the checks that diagnose them.

``wsdoctor demo`` starts each scenario on 127.0.0.1, runs the same step-by-step
check as ``wsdoctor check`` against it, and compares what the check found with what
the scenario set up. It doubles as a smoke test of the whole stack: real sockets,
real TLS with generated certificates, the real client and server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from wsdoctor.aio.connection import WebSocketConnection
from wsdoctor.aio.server import Server, serve
from wsdoctor.diagnose.certs import Pki
from wsdoctor.diagnose.check import CheckResult, run_check
from wsdoctor.protocol._errors import ConnectionClosed
from wsdoctor.protocol._handshake import ServerHandshake

__all__ = ["Outcome", "Scenario", "run_demo", "scenarios"]

HOST = "127.0.0.1"


@dataclass
class Scenario:
    """One broken (or healthy) server and what a correct diagnosis says about it."""

    name: str
    description: str
    expected_code: int
    expected_cause: str
    secure: bool = False
    require_extensions: tuple[str, ...] = ()


@dataclass
class Outcome:
    scenario: Scenario
    result: CheckResult
    url: str

    @property
    def found(self) -> tuple[int, str] | None:
        ending = self.result.ending
        return None if ending is None else (ending.code, ending.cause)

    @property
    def matches(self) -> bool:
        return self.found == (self.scenario.expected_code, self.scenario.expected_cause)


@dataclass
class _Running:
    servers: list[Server] = field(default_factory=list)
    raw: list[asyncio.Server] = field(default_factory=list)


def scenarios() -> list[Scenario]:
    return [
        Scenario("healthy", "a healthy echo server", 1000, "closed.locally"),
        Scenario(
            "mandatory-extension",
            "a server that ignores the required permessage-deflate",
            1010,
            "extension.missing",
            require_extensions=("permessage-deflate",),
        ),
        Scenario("expired-cert", "a wss:// server whose certificate expired", 1015, "tls.expired", secure=True),
        Scenario(
            "untrusted-ca",
            "a wss:// server with a certificate from an unknown CA",
            1015,
            "tls.untrusted",
            secure=True,
        ),
        Scenario(
            "hostname-mismatch",
            "a wss:// server whose certificate names another host",
            1015,
            "tls.hostname",
            secure=True,
        ),
        Scenario(
            "incomplete-chain",
            "a wss:// server that omits its intermediate certificate",
            1015,
            "tls.incomplete_chain",
            secure=True,
        ),
        Scenario("forbidden", "a server that answers the upgrade with HTTP 403", 1006, "http.forbidden"),
        Scenario("no-pong", "a server that stops answering pings", 1011, "keepalive.timeout"),
        Scenario("internal-error", "a server that closes with 1011", 1011, "closed.by_peer"),
    ]


async def _echo(ws: WebSocketConnection) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for message in ws:
            await ws.send(message)


async def _fail_1011(ws: WebSocketConnection) -> None:
    await ws.close(1011, "database unavailable")


def _forbid(ws: WebSocketConnection, request: object) -> tuple[int, str]:
    return 403, "this demo server forbids every upgrade\n"


async def _no_pong(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept the upgrade properly, then read and ignore everything: pings go unanswered."""
    handshake = ServerHandshake()
    try:
        request = None
        while request is None:
            data = await reader.read(65536)
            if not data:
                return
            request = handshake.receive_data(data)
        writer.write(handshake.accept(handshake.validate(request), subprotocol=None, extensions=[]))
        while await reader.read(65536):
            pass
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _start(
    scenario: Scenario, pki: Pki, running: _Running, quiet: logging.Logger
) -> tuple[str, ssl.SSLContext | None]:
    """Start the scenario's server; returns the URL to check and the client's TLS context."""
    names = [HOST]
    common = {"logger": quiet, "ping_interval": None}
    context: ssl.SSLContext | None = None
    client: ssl.SSLContext | None = pki.client_context() if scenario.secure else None
    handler: Callable[[WebSocketConnection], object] = _echo
    options: dict[str, object] = {}
    if scenario.name == "mandatory-extension":
        options["compression"] = None
    elif scenario.name == "expired-cert":
        context = pki.expired(names)
    elif scenario.name == "untrusted-ca":
        context = pki.untrusted(names)
    elif scenario.name == "hostname-mismatch":
        context = pki.healthy(["wrong-host.example"])
    elif scenario.name == "incomplete-chain":
        context = pki.incomplete_chain(names)
    elif scenario.name == "forbidden":
        options["process_request"] = _forbid
    elif scenario.name == "internal-error":
        handler = _fail_1011
    elif scenario.name == "no-pong":
        raw = await asyncio.start_server(_no_pong, HOST, 0)
        running.raw.append(raw)
        return f"ws://{HOST}:{raw.sockets[0].getsockname()[1]}/", None
    server = await serve(handler, HOST, 0, ssl=context, **common, **options)  # type: ignore[arg-type]
    running.servers.append(server)
    scheme = "wss" if scenario.secure else "ws"
    return f"{scheme}://{HOST}:{server.port_number}/{scenario.name}", client


@contextlib.asynccontextmanager
async def _pki() -> AsyncIterator[Pki]:
    with tempfile.TemporaryDirectory(prefix="wsdoctor-demo-") as tmp:
        yield Pki(Path(tmp))


async def run_demo(timeout: float = 3.0, on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Start every scenario, check each one, stop them all; returns the outcomes in order."""
    quiet = logging.getLogger("wsdoctor.demo.servers")
    quiet.propagate = False
    quiet.addHandler(logging.NullHandler())
    outcomes: list[Outcome] = []
    running = _Running()
    async with _pki() as pki:
        try:
            for scenario in scenarios():
                url, client = await _start(scenario, pki, running, quiet)
                result = await run_check(
                    url,
                    ssl_context=client,
                    require_extensions=scenario.require_extensions,
                    timeout=timeout,
                )
                outcome = Outcome(scenario, result, url)
                outcomes.append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)
        finally:
            for server in running.servers:
                await server.close()
            for raw in running.raw:
                raw.close()
                await raw.wait_closed()
    return outcomes
