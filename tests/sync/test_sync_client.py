"""The synchronous client against real servers running in a thread of their own."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest

import wsdoctor
import wsdoctor.sync
from _helpers import echo
from wsdoctor import WebSocketConnection
from wsdoctor.diagnose.certs import Pki
from wsdoctor.protocol._handshake import Request

HOST = "127.0.0.1"
Handler = Callable[[WebSocketConnection], Awaitable[None]]


class ServerThread:
    """A wsdoctor server on its own event loop and thread, so that blocking calls cannot stall it."""

    def __init__(self, handler: Handler, port: int = 0, **options: object) -> None:
        self.port = port
        self.loop = asyncio.new_event_loop()
        self.started: Future[int] = Future()
        self.stop = asyncio.Event()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(handler, options),))

    async def _main(self, handler: Handler, options: dict[str, object]) -> None:
        try:
            async with wsdoctor.serve(handler, HOST, self.port, **options) as server:
                self.started.set_result(server.port_number)
                await self.stop.wait()
        except BaseException as exc:  # reported to the test through the future
            if not self.started.done():
                self.started.set_exception(exc)

    def __enter__(self) -> int:
        self.thread.start()
        return self.started.result(timeout=10)

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def echo_port() -> Iterator[int]:
    with ServerThread(echo) as port:
        yield port


def test_send_recv_ping_close(echo_port: int) -> None:
    with wsdoctor.sync.connect(f"ws://{HOST}:{echo_port}/", open_timeout=5) as ws:
        assert ws.open and ws.extensions == ["permessage-deflate"]
        ws.send("héllo")
        assert ws.recv(timeout=5) == "héllo"
        ws.send(b"\x00\xff")
        assert ws.recv(timeout=5) == b"\x00\xff"
        assert 0 < ws.ping(timeout=5) < 5
    assert ws.ending is not None and ws.ending.ok
    assert (ws.ending.code, ws.ending.cause) == (1000, "closed.locally")
    with pytest.raises(wsdoctor.ConnectionClosedOK):
        ws.send("after close")
    assert ws.close() is ws.ending  # closing again returns the same ending


def test_recv_timeout_loses_nothing(echo_port: int) -> None:
    with wsdoctor.sync.connect(f"ws://{HOST}:{echo_port}/") as ws:
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.05)
        ws.send("late")
        assert ws.recv(timeout=5) == "late"


def test_no_asyncio_in_the_caller(echo_port: int) -> None:
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    threads = threading.active_count()
    ws = wsdoctor.sync.connect(f"ws://{HOST}:{echo_port}/").open()
    assert [t.name for t in threading.enumerate()].count("wsdoctor-sync") == 1
    ws.close()
    assert threading.active_count() == threads  # the background thread is gone, and its resolver's


def test_iteration_ends_on_normal_closure_and_raises_otherwise() -> None:
    async def talk(ws: WebSocketConnection) -> None:
        for i in range(3):
            await ws.send(str(i))
        await ws.close(1000 if ws.path == "/ok" else 1011, "done")

    with ServerThread(talk) as port:
        with wsdoctor.sync.connect(f"ws://{HOST}:{port}/ok") as ws:
            assert list(ws) == ["0", "1", "2"]
        assert ws.ending is not None and (ws.ending.code, ws.ending.cause) == (1000, "closed.by_peer")

        received = []
        with pytest.raises(wsdoctor.ConnectionClosedError) as info, wsdoctor.sync.connect(f"ws://{HOST}:{port}/") as ws:
            for message in ws:
                received.append(message)
        assert received == ["0", "1", "2"]
        assert info.value.ending.code == 1011 and info.value.ending.reason == "done"


def test_dial_errors_are_the_asyncio_ones(tmp_path: Path) -> None:
    with pytest.raises(wsdoctor.DialError) as refused:
        wsdoctor.sync.connect(f"ws://{HOST}:1/", open_timeout=5).open()
    assert refused.value.ending.cause == "tcp.refused"

    pki = Pki(tmp_path)
    with ServerThread(echo, ssl=pki.expired([HOST])) as port:
        with pytest.raises(wsdoctor.TLSHandshakeError) as expired:
            wsdoctor.sync.connect(f"wss://{HOST}:{port}/", ssl=pki.client_context(), open_timeout=5).open()
    assert (expired.value.ending.code, expired.value.ending.cause) == (1015, "tls.expired")

    with ServerThread(echo, ssl=pki.healthy([HOST])) as port:
        with wsdoctor.sync.connect(f"wss://{HOST}:{port}/", ssl=pki.client_context()) as ws:
            ws.send("secure")
            assert ws.recv(timeout=5) == "secure"

    with pytest.raises(ValueError):
        wsdoctor.sync.connect("ws://example.com/", compression="brotli")


def test_required_extension_missing_sends_1010() -> None:
    with ServerThread(echo, compression=None) as port:
        with pytest.raises(wsdoctor.NegotiationError) as info:
            wsdoctor.sync.connect(f"ws://{HOST}:{port}/", require_extensions=["permessage-deflate"]).open()
    assert (info.value.ending.code, info.value.ending.cause) == (1010, "extension.missing")


def test_peer_gone_then_calls_raise_with_the_ending() -> None:
    async def vanish(ws: WebSocketConnection) -> None:
        assert ws.transport is not None
        ws.transport.abort()

    with ServerThread(vanish) as port:
        ws = wsdoctor.sync.connect(f"ws://{HOST}:{port}/").open()
        with pytest.raises(wsdoctor.ConnectionClosedError) as info:
            ws.recv(timeout=5)
        assert info.value.ending.code == 1006
        deadline = time.monotonic() + 5
        while not ws.closed and time.monotonic() < deadline:
            time.sleep(0.01)
        ending = ws.close()
        assert ending.code == 1006
        with pytest.raises(wsdoctor.ConnectionClosedError):
            ws.recv()


def test_a_dropped_connection_stops_its_thread(echo_port: int) -> None:
    import gc

    threads = threading.active_count()
    ws = wsdoctor.sync.connect(f"ws://{HOST}:{echo_port}/").open()
    ws.send("bye")
    del ws
    gc.collect()
    assert threading.active_count() == threads


def test_same_options_as_asyncio_proxy_and_redirects() -> None:
    """A proxy (pproxy, on an event loop thread of its own) and a redirect, through the blocking client."""
    import pproxy

    loop = asyncio.new_event_loop()
    started: Future[asyncio.AbstractServer] = Future()

    async def start() -> None:
        handle = await pproxy.Server(f"http://{HOST}:0").start_server({"rserver": [], "verbose": lambda *a: None})
        started.set_result(handle)

    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop)

    def moved(ws: WebSocketConnection, request: Request) -> object:
        return (307, [("Location", "/here")], "") if request.target == "/old" else None

    try:
        handle = started.result(timeout=10)
        proxy_port = handle.sockets[0].getsockname()[1]
        steps: list[wsdoctor.aio.Step] = []
        with ServerThread(echo, process_request=moved) as port:
            uri = f"ws://{HOST}:{port}/old"
            with wsdoctor.sync.connect(uri, proxy=f"http://{HOST}:{proxy_port}", trace=steps.append) as ws:
                ws.send("via proxy")
                assert ws.recv(timeout=5) == "via proxy"
        names = [s.name for s in steps]
        assert names.count("proxy") == 2 and "redirect" in names
        loop.call_soon_threadsafe(handle.close)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


# ------------------------------------------------------------- reconnection

QUICK = wsdoctor.aio.Backoff(initial_delay=0.01, min_delay=0.01, max_delay=0.05, factor=2.0)


def retries(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "wsdoctor.client" and "reconnecting in" in r.getMessage()]


def test_for_loop_reconnects_until_the_server_listens(caplog: pytest.LogCaptureFixture) -> None:
    """Refused twice, then a server starts on that port: two retries logged, then one connection."""
    caplog.set_level(logging.INFO, "wsdoctor.client")
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    server = ServerThread(echo, port=port)

    class StartOnSecondRetry(logging.Handler):
        seen = 0

        def emit(self, record: logging.LogRecord) -> None:
            self.seen += "reconnecting in" in record.getMessage()
            if self.seen == 2:
                server.__enter__()

    logger = logging.getLogger("wsdoctor.client")
    starter = StartOnSecondRetry()
    logger.addHandler(starter)
    opened = []
    try:
        for ws in wsdoctor.sync.connect(f"ws://{HOST}:{port}/", backoff=QUICK, open_timeout=5):
            ws.send("at last")
            opened.append(ws.recv(timeout=5))
            ws.close()
    finally:
        logger.removeHandler(starter)
        if server.thread.is_alive():
            server.__exit__()
    assert opened == ["at last"]
    logged = retries(caplog)
    assert len(logged) == 2 and {r.ending.cause for r in logged} == {"tcp.refused"}  # type: ignore[attr-defined]
    assert "[tcp.refused]" in logged[0].getMessage()


def test_for_loop_retries_transient_closes_and_raises_on_a_permanent_one(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "wsdoctor.client")
    codes = [1012, 1011, 1008]

    async def handler(ws: WebSocketConnection) -> None:
        await ws.close(codes.pop(0), "bye")

    opened = 0
    with ServerThread(handler) as port:
        with pytest.raises(wsdoctor.ConnectionClosedError) as info:
            for ws in wsdoctor.sync.connect(f"ws://{HOST}:{port}/", backoff=QUICK):
                opened += 1
                with pytest.raises(wsdoctor.ConnectionClosed):
                    ws.recv(timeout=5)
    assert opened == 3
    assert (info.value.ending.code, info.value.ending.reason) == (1008, "bye")
    logged = retries(caplog)
    assert [r.ending.code for r in logged] == [1012, 1011]  # type: ignore[attr-defined]
    assert all(0 <= r.delay <= 0.05 for r in logged)  # type: ignore[attr-defined]


def test_for_loop_stops_on_a_403_and_honours_retry_after(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "wsdoctor.client")
    answers: list[object] = [(503, [("Retry-After", "1")], "busy"), (403, [], "no")]

    def gate(ws: WebSocketConnection, request: Request) -> object:
        return answers.pop(0)

    with ServerThread(echo, process_request=gate) as port:
        with pytest.raises(wsdoctor.HandshakeError) as info:
            for _ in wsdoctor.sync.connect(f"ws://{HOST}:{port}/", backoff=QUICK):
                pytest.fail("neither answer opens a connection")
    assert info.value.status == 403 and answers == []
    [retry] = retries(caplog)
    assert retry.ending.cause.startswith("http.") and retry.delay >= 1.0  # type: ignore[attr-defined]


def test_for_loop_ends_on_normal_closure_and_dials_again_when_left_open(echo_port: int) -> None:
    async def once(ws: WebSocketConnection) -> None:
        await ws.send("only once")
        await ws.close(1000, "done")

    with ServerThread(once) as port:
        received = []
        for ws in wsdoctor.sync.connect(f"ws://{HOST}:{port}/", backoff=QUICK):
            received.extend(ws)
        assert received == ["only once"]

    seen: list[wsdoctor.sync.ClientConnection] = []
    for ws in wsdoctor.sync.connect(f"ws://{HOST}:{echo_port}/", backoff=QUICK):
        seen.append(ws)
        if len(seen) == 3:
            ws.close()
            break
    assert [s.ending is not None and s.ending.code for s in seen] == [1000, 1000, 1000]
    assert [t.name for t in threading.enumerate()].count("wsdoctor-sync") == 0
