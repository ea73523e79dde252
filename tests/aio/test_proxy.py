"""Dialling through real forward proxies on loopback: pproxy (HTTP CONNECT, SOCKS5) and tinyproxy."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pproxy
import pytest

import wsdoctor
from _helpers import echo
from wsdoctor.aio._proxy import choose_proxy, parse_proxy_url
from wsdoctor.aio.client import Step
from wsdoctor.diagnose.certs import Pki
from wsdoctor.protocol._uri import parse_uri

HOST = "127.0.0.1"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test states its own proxy variables; none leak in from the machine."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
async def echo_server() -> AsyncIterator[wsdoctor.Server]:
    async with wsdoctor.serve(echo, HOST, 0) as server:
        yield server


async def start_pproxy(listen: str, **extra: object) -> tuple[asyncio.AbstractServer, int]:
    """A pproxy forward proxy in this event loop, on a port the system picks."""
    server = pproxy.Server(listen)
    for name, value in extra.items():
        setattr(server, name, value)
    # authtime -1: pproxy would otherwise trust an address for 30 days after one good password.
    handle = await server.start_server({"rserver": [], "verbose": lambda *args: None, "authtime": -1})
    return handle, handle.sockets[0].getsockname()[1]


@pytest.fixture
async def http_proxy() -> AsyncIterator[int]:
    handle, port = await start_pproxy(f"http://{HOST}:0")
    yield port
    handle.close()


@pytest.fixture
async def auth_proxy() -> AsyncIterator[int]:
    handle, port = await start_pproxy(f"http+socks5://{HOST}:0#alice:s3cret")
    yield port
    handle.close()


@pytest.fixture
async def socks_proxy() -> AsyncIterator[int]:
    handle, port = await start_pproxy(f"socks5://{HOST}:0")
    yield port
    handle.close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[int]:
    """Debian's tinyproxy in the foreground, on loopback, stopped at the end."""
    path = shutil.which("tinyproxy")
    if path is None:
        pytest.fail("Debian's tinyproxy is needed: scripts/test installs it")
    port = closed_port()
    config = tmp_path / "tinyproxy.conf"
    config.write_text(f"Port {port}\nListen {HOST}\nTimeout 10\nMaxClients 8\nAllow {HOST}\nLogLevel Error\n")
    process = subprocess.Popen([path, "-d", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("tinyproxy did not start")
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:  # it lingers over open tunnels: ours only, so stop it hard
            process.kill()
            process.wait(5)


def url(server: wsdoctor.Server, scheme: str = "ws") -> str:
    return f"{scheme}://{HOST}:{server.port_number}/"


async def round_trip(uri: str, **options: object) -> list[Step]:
    steps: list[Step] = []
    async with asyncio.timeout(15), wsdoctor.connect(uri, trace=steps.append, open_timeout=5, **options) as ws:  # type: ignore[arg-type]
        await ws.send("through the proxy")
        assert await ws.recv() == "through the proxy"
    return steps


async def dial_error(uri: str, **options: object) -> wsdoctor.DialError:
    with pytest.raises(wsdoctor.DialError) as info:
        async with asyncio.timeout(15):
            await wsdoctor.connect(uri, open_timeout=5, **options)  # type: ignore[arg-type]
    return info.value


# ------------------------------------------------------------- HTTP CONNECT


async def test_http_connect(echo_server: wsdoctor.Server, http_proxy: int) -> None:
    steps = await round_trip(url(echo_server), proxy=f"http://{HOST}:{http_proxy}")
    assert [s.name for s in steps] == ["dns", "tcp", "proxy", "http", "negotiate"]
    proxy = steps[2]
    assert proxy.ok and proxy.details["answer"].startswith("200")
    assert proxy.details["source"] == "argument"
    assert proxy.details["target"] == f"{HOST}:{echo_server.port_number}"
    assert steps[1].details["peer"].endswith(f"{http_proxy})")  # the TCP step reached the proxy


async def test_http_connect_with_credentials(echo_server: wsdoctor.Server, auth_proxy: int) -> None:
    steps = await round_trip(url(echo_server), proxy=f"http://alice:s3cret@{HOST}:{auth_proxy}")
    proxy = next(s for s in steps if s.name == "proxy")
    assert proxy.ok and "s3cret" not in proxy.details["proxy"]


async def test_407_without_credentials(echo_server: wsdoctor.Server, auth_proxy: int) -> None:
    exc = await dial_error(url(echo_server), proxy=f"http://{HOST}:{auth_proxy}")
    assert exc.ending.cause == "proxy.auth"
    assert "407" in exc.ending.detail and "no credentials" in exc.ending.detail


async def test_407_with_wrong_credentials(echo_server: wsdoctor.Server, auth_proxy: int) -> None:
    exc = await dial_error(url(echo_server), proxy=f"http://alice:wrong@{HOST}:{auth_proxy}")
    assert exc.ending.cause == "proxy.auth"
    assert "refused" in exc.ending.detail and "wrong" not in exc.ending.detail


async def test_proxy_refuses_the_tcp_connection(echo_server: wsdoctor.Server) -> None:
    steps: list[Step] = []
    exc = await dial_error(url(echo_server), proxy=f"http://{HOST}:{closed_port()}", trace=steps.append)
    assert exc.ending.cause == "proxy.refused"
    assert exc.ending.code == 1006
    tcp, proxy = steps[-2:]
    assert tcp.name == "tcp" and not tcp.ok and tcp.details["via"] == "proxy"
    # The proxy step follows, failed, saying which proxy it was and where it came from.
    assert proxy.name == "proxy" and not proxy.ok
    assert (proxy.details["source"], proxy.details["cause"]) == ("argument", "proxy.refused")


async def test_proxy_cannot_reach_the_server(tinyproxy: int) -> None:
    steps: list[Step] = []
    exc = await dial_error(f"ws://{HOST}:{closed_port()}/", proxy=f"http://{HOST}:{tinyproxy}", trace=steps.append)
    assert exc.ending.cause == "proxy.unreachable"
    assert "500" in exc.ending.detail
    assert steps[-1].name == "proxy" and not steps[-1].ok


async def test_tinyproxy_tunnels_a_websocket(echo_server: wsdoctor.Server, tinyproxy: int) -> None:
    steps = await round_trip(url(echo_server), proxy=f"http://{HOST}:{tinyproxy}")
    assert next(s for s in steps if s.name == "proxy").details["answer"].startswith("200")


async def test_proxy_that_closes_without_answering(http_proxy: int) -> None:
    # pproxy hangs up when it cannot reach the server instead of answering 502.
    exc = await dial_error(f"ws://{HOST}:{closed_port()}/", proxy=f"http://{HOST}:{http_proxy}")
    assert exc.ending.cause == "proxy.closed"


async def test_proxy_that_never_answers_times_out() -> None:
    # A proxy that takes the connection and the CONNECT request and then says nothing.
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read(65536)

    server = await asyncio.start_server(silent, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(wsdoctor.DialError) as info:
            async with asyncio.timeout(15):
                await wsdoctor.connect(f"ws://{HOST}:9/", proxy=f"http://{HOST}:{port}", open_timeout=0.5)
        assert info.value.ending.cause == "proxy.timeout"
        assert "did not answer CONNECT" in info.value.ending.detail
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_not_a_proxy(echo_server: wsdoctor.Server) -> None:
    # A WebSocket server is no forward proxy: it answers CONNECT with an HTTP error.
    exc = await dial_error("ws://example.invalid/", proxy=f"http://{HOST}:{echo_server.port_number}")
    assert exc.ending.cause in ("proxy.status", "proxy.denied", "proxy.closed")


# -------------------------------------------------------------------- SOCKS


async def test_socks5(echo_server: wsdoctor.Server, socks_proxy: int) -> None:
    steps = await round_trip(url(echo_server), proxy=f"socks5://{HOST}:{socks_proxy}")
    assert [s.name for s in steps] == ["proxy", "http", "negotiate"]
    assert steps[0].ok and steps[0].details["answer"] == "socks5 tunnel open"


async def test_socks5_with_credentials(echo_server: wsdoctor.Server, auth_proxy: int) -> None:
    await round_trip(url(echo_server), proxy=f"socks5://alice:s3cret@{HOST}:{auth_proxy}")
    exc = await dial_error(url(echo_server), proxy=f"socks5://alice:wrong@{HOST}:{auth_proxy}")
    # pproxy hangs up on a wrong password instead of sending the RFC 1929 failure reply.
    assert exc.ending.cause == "proxy.closed"


async def test_socks5_proxy_refused(echo_server: wsdoctor.Server) -> None:
    exc = await dial_error(url(echo_server), proxy=f"socks5://{HOST}:{closed_port()}")
    assert exc.ending.cause == "proxy.refused"
    assert "Could not connect to proxy" in exc.ending.detail


# -------------------------------------------------------------- environment


async def test_https_proxy_from_the_environment(
    tmp_path: Path, http_proxy: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    pki = Pki(tmp_path)
    monkeypatch.setenv("HTTPS_PROXY", f"http://{HOST}:{http_proxy}")
    monkeypatch.setenv("HTTP_PROXY", f"http://{HOST}:{closed_port()}")  # for ws:// only: must not be used
    async with wsdoctor.serve(echo, HOST, 0, ssl=pki.healthy([HOST])) as server:
        steps = await round_trip(url(server, "wss"), ssl=pki.client_context())
    assert [s.name for s in steps] == ["dns", "tcp", "proxy", "tls", "http", "negotiate"]
    assert steps[2].details["source"] == "HTTPS_PROXY"


async def test_no_proxy_bypasses_and_says_so(echo_server: wsdoctor.Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://{HOST}:{closed_port()}")
    monkeypatch.setenv("NO_PROXY", f"localhost,{HOST}")
    steps = await round_trip(url(echo_server))
    assert steps[0].name == "proxy" and steps[0].ok
    assert steps[0].details["bypassed"] == "HTTP_PROXY"
    assert steps[0].details["no_proxy"] == f"NO_PROXY=localhost,{HOST}"
    assert [s.name for s in steps[1:]] == ["dns", "tcp", "http", "negotiate"]


async def test_environment_proxy_is_used_and_none_disables_it(
    echo_server: wsdoctor.Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALL_PROXY", f"http://{HOST}:{closed_port()}")
    exc = await dial_error(url(echo_server))
    assert exc.ending.cause == "proxy.refused"
    steps = await round_trip(url(echo_server), proxy=None)
    assert "proxy" not in [s.name for s in steps]


def test_choosing_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    secure, plain = parse_uri("wss://example.com/"), parse_uri("ws://example.com:8080/")
    assert choose_proxy(plain, True).proxy is None
    monkeypatch.setenv("http_proxy", "proxy.local:3128")
    monkeypatch.setenv("ALL_PROXY", "socks5h://socks.local")
    assert str(choose_proxy(plain).proxy) == "http://proxy.local:3128"
    assert choose_proxy(plain).source == "http_proxy"
    assert str(choose_proxy(secure).proxy) == "socks5h://socks.local:1080"
    assert choose_proxy(secure).source == "ALL_PROXY"
    monkeypatch.setenv("no_proxy", ".example.com")
    assert choose_proxy(plain).proxy is None and choose_proxy(plain).bypassed == "http_proxy"
    assert choose_proxy(plain, "http://u:p@x:1").source == "argument"
    assert choose_proxy(plain, "").proxy is None and choose_proxy(plain, None).proxy is None
    assert str(parse_proxy_url("http://u:p%40ss@x:1")) == "http://u:***@x:1"
    assert parse_proxy_url("http://u:p%40ss@x:1").password == "p@ss"


@pytest.mark.parametrize("bad", ["ftp://proxy:21", "http://", "http://proxy:notaport"])
async def test_unusable_proxy_url(bad: str, echo_server: wsdoctor.Server) -> None:
    exc = await dial_error(url(echo_server), proxy=bad)
    assert exc.ending.cause == "proxy.unsupported"


# -------------------------------------------------- TLS to the proxy itself


async def test_https_proxy_and_wss_inside(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    handle, port = await start_pproxy(f"http+ssl://{HOST}:0", sslserver=pki.healthy([HOST]))
    try:
        async with wsdoctor.serve(echo, HOST, 0, ssl=pki.healthy([HOST])) as server:
            steps = await round_trip(
                url(server, "wss"),
                ssl=pki.client_context(),
                proxy=f"https://{HOST}:{port}",
                proxy_ssl=pki.client_context(),
            )
            proxy = next(s for s in steps if s.name == "proxy")
            assert proxy.ok and proxy.details["tls"] is True
            exc = await dial_error(url(server, "wss"), ssl=pki.client_context(), proxy=f"https://{HOST}:{port}")
            assert exc.ending.cause == "proxy.tls"  # the system's trust store does not know our CA
    finally:
        handle.close()


async def test_tls_failure_through_a_proxy_keeps_its_cause(tmp_path: Path, http_proxy: int) -> None:
    pki = Pki(tmp_path)
    async with wsdoctor.serve(echo, HOST, 0, ssl=pki.expired([HOST])) as server:
        with pytest.raises(wsdoctor.TLSHandshakeError) as info:
            async with asyncio.timeout(15):
                await wsdoctor.connect(
                    url(server, "wss"), ssl=pki.client_context(), proxy=f"http://{HOST}:{http_proxy}"
                )
    assert (info.value.ending.code, info.value.ending.cause) == (1015, "tls.expired")


async def test_socks_without_python_socks_says_which_extra(
    echo_server: wsdoctor.Server, socks_proxy: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "python_socks", None)  # as if the socks extra were not installed
    exc = await dial_error(url(echo_server), proxy=f"socks5://{HOST}:{socks_proxy}")
    assert exc.ending.cause == "proxy.unsupported"
    assert "socks extra" in exc.ending.detail
