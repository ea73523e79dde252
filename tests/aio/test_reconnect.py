"""Reconnection driven by the diagnosis: transient endings are retried, permanent ones raised."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator

import pytest

import wsdoctor
from _helpers import echo
from wsdoctor import WebSocketConnection
from wsdoctor.aio.client import Backoff
from wsdoctor.protocol._handshake import Request

HOST = "127.0.0.1"
QUICK = Backoff(initial_delay=0.01, min_delay=0.01, max_delay=0.05, factor=2.0)


@pytest.fixture
def client_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, "wsdoctor.client")
    return caplog


def retries(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "wsdoctor.client" and "reconnecting in" in r.getMessage()]


class Dropper:
    """A TCP front that hangs up on the first ``drops`` connections, then pipes to ``backend``."""

    def __init__(self, backend: int, drops: int) -> None:
        self.backend = backend
        self.drops = drops
        self.accepted = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.accepted <= self.drops:
            writer.transport.abort()  # a reset, as when a server crashes during a deploy
            return
        up_reader, up_writer = await asyncio.open_connection(HOST, self.backend)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.fixture
async def dropping() -> AsyncIterator[tuple[Dropper, int]]:
    async with wsdoctor.serve(echo, HOST, 0) as backend:
        dropper = Dropper(backend.port_number, drops=3)
        front = await asyncio.start_server(dropper.handle, HOST, 0)
        try:
            yield dropper, front.sockets[0].getsockname()[1]
        finally:
            front.close()


async def test_reconnects_until_the_server_accepts(
    dropping: tuple[Dropper, int], client_log: pytest.LogCaptureFixture
) -> None:
    dropper, port = dropping
    async with asyncio.timeout(20):
        async for ws in wsdoctor.connect(f"ws://{HOST}:{port}/", backoff=QUICK, open_timeout=5):
            await ws.send("at last")
            assert await ws.recv() == "at last"
            await ws.close()
    # Every drop costs one attempt, or is met by the client's probe for a TLS port.
    assert dropper.accepted >= 4
    logged = retries(client_log)
    assert 1 <= len(logged) <= 3
    assert all(r.ending.code == 1006 and r.ending.cause in ("tcp.reset", "tcp.closed") for r in logged)  # type: ignore[attr-defined]
    assert all(0 <= r.delay <= 0.05 for r in logged)  # type: ignore[attr-defined]
    assert "reconnecting in" in logged[0].getMessage() and "[tcp." in logged[0].getMessage()


async def test_refused_then_listening(client_log: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    attempts: list[str] = []

    async def start_later() -> wsdoctor.Server:
        while len(retries(client_log)) < 2:
            await asyncio.sleep(0.01)
        return await wsdoctor.serve(echo, HOST, port)

    async with asyncio.timeout(20):
        starter = asyncio.create_task(start_later())
        async for ws in wsdoctor.connect(f"ws://{HOST}:{port}/", backoff=QUICK):
            attempts.append("open")
            await ws.close()
        server = await starter
        await server.close()
    assert attempts == ["open"]
    assert {r.ending.cause for r in retries(client_log)} == {"tcp.refused"}  # type: ignore[attr-defined]


async def test_stops_on_a_permanent_403(client_log: pytest.LogCaptureFixture) -> None:
    requests: list[str] = []

    def forbid(ws: WebSocketConnection, request: Request) -> tuple[int, str]:
        requests.append(request.target)
        return 403, "no"

    async with asyncio.timeout(20), wsdoctor.serve(echo, HOST, 0, process_request=forbid) as server:
        with pytest.raises(wsdoctor.HandshakeError) as info:
            async for _ in wsdoctor.connect(f"ws://{HOST}:{server.port_number}/", backoff=QUICK):
                pytest.fail("a 403 opens nothing")
    assert info.value.status == 403
    assert requests == ["/"]
    assert retries(client_log) == []


async def test_503_with_retry_after_then_accepted(client_log: pytest.LogCaptureFixture) -> None:
    answers = [(503, [("Retry-After", "1")], "busy"), (429, [("Retry-After", "0")], "slow down")]

    def busy(ws: WebSocketConnection, request: Request) -> object:
        return answers.pop(0) if answers else None

    async with asyncio.timeout(20), wsdoctor.serve(echo, HOST, 0, process_request=busy) as server:
        async for ws in wsdoctor.connect(f"ws://{HOST}:{server.port_number}/", backoff=QUICK):
            await ws.close()
    delays = [r.delay for r in retries(client_log)]  # type: ignore[attr-defined]
    assert len(delays) == 2 and delays[0] >= 1.0 and delays[1] < 1.0


async def test_a_restart_close_reconnects_and_a_policy_close_raises(client_log: pytest.LogCaptureFixture) -> None:
    codes = [1012, 1013, 1008]

    async def handler(ws: WebSocketConnection) -> None:
        await ws.close(codes.pop(0), "bye")

    opened = 0
    async with asyncio.timeout(20), wsdoctor.serve(handler, HOST, 0) as server:
        with pytest.raises(wsdoctor.ConnectionClosedError) as info:
            async for ws in wsdoctor.connect(f"ws://{HOST}:{server.port_number}/", backoff=QUICK):
                opened += 1
                with pytest.raises(wsdoctor.ConnectionClosed):
                    await ws.recv()
    assert opened == 3
    assert info.value.ending.code == 1008
    assert [r.ending.code for r in retries(client_log)] == [1012, 1013]  # type: ignore[attr-defined]


async def test_normal_closure_by_the_server_ends_the_loop() -> None:
    async def handler(ws: WebSocketConnection) -> None:
        await ws.send("only once")
        await ws.close(1000, "done")

    received = []
    async with asyncio.timeout(20), wsdoctor.serve(handler, HOST, 0) as server:
        async for ws in wsdoctor.connect(f"ws://{HOST}:{server.port_number}/", backoff=QUICK):
            received.extend([m async for m in ws])
    assert received == ["only once"]


async def test_leaving_the_body_open_dials_again_and_break_closes() -> None:
    async with asyncio.timeout(20), wsdoctor.serve(echo, HOST, 0) as server:
        seen: list[WebSocketConnection] = []
        loop = wsdoctor.connect(f"ws://{HOST}:{server.port_number}/", backoff=QUICK)
        iterator = aiter(loop)
        async for ws in iterator:  # type: ignore[attr-defined]
            seen.append(ws)
            if len(seen) == 2:
                break
        await iterator.aclose()  # type: ignore[attr-defined]
        assert seen[0].ending is not None and seen[0].ending.code == 1000
        assert seen[1].ending is not None and seen[1].ending.code == 1000


def test_backoff_grows_with_jitter_up_to_the_maximum() -> None:
    delays = Backoff(initial_delay=5.0, min_delay=3.1, max_delay=90.0, factor=1.618, jitter=0.2).delays()
    first = next(delays)
    assert 0 <= first < 5.0
    later = [next(delays) for _ in range(20)]
    assert 3.1 * 0.8 <= later[0] <= 3.1
    assert all(0.8 * 90.0 <= d <= 90.0 for d in later[-5:])
    assert later[3] > later[0]
