"""Following redirects from the upgrade: real servers on loopback that answer 3xx."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

import wsdoctor
from _helpers import echo
from wsdoctor import WebSocketConnection
from wsdoctor.aio.client import Step
from wsdoctor.diagnose.certs import Pki
from wsdoctor.protocol._handshake import Request

HOST = "127.0.0.1"
Routes = dict[str, tuple[int, str]]


def redirecting(routes: Routes, seen: list[tuple[str, list[tuple[str, str]]]] | None = None) -> Callable[..., object]:
    """A process_request hook answering ``path -> (status, Location)``; other paths upgrade."""

    def process_request(ws: WebSocketConnection, request: Request) -> object:
        if seen is not None:
            seen.append((request.target, list(request.headers)))
        if request.target in routes:
            status, location = routes[request.target]
            return status, [("Location", location)], ""
        return None

    return process_request


@pytest.fixture
async def routes() -> AsyncIterator[tuple[Routes, wsdoctor.Server]]:
    table: Routes = {}
    async with wsdoctor.serve(echo, HOST, 0, process_request=redirecting(table)) as server:
        yield table, server


def base(server: wsdoctor.Server, scheme: str = "ws") -> str:
    return f"{scheme}://{HOST}:{server.port_number}"


async def echo_through(uri: str, **options: object) -> tuple[list[Step], wsdoctor.connect]:
    steps: list[Step] = []
    dial = wsdoctor.connect(uri, trace=steps.append, open_timeout=5, **options)  # type: ignore[arg-type]
    async with asyncio.timeout(15), dial as ws:
        await ws.send("hop")
        assert await ws.recv() == "hop"
    return steps, dial


async def dial_error(uri: str, **options: object) -> tuple[wsdoctor.DialError, list[Step]]:
    steps: list[Step] = []
    with pytest.raises(wsdoctor.DialError) as info:
        async with asyncio.timeout(15):
            await wsdoctor.connect(uri, open_timeout=5, trace=steps.append, **options)  # type: ignore[arg-type]
    return info.value, steps


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_relative_location(routes: tuple[Routes, wsdoctor.Server], status: int) -> None:
    table, server = routes
    table["/old"] = (status, "/new?x=1")
    steps, dial = await echo_through(base(server) + "/old")
    names = [s.name for s in steps]
    assert names == ["dns", "tcp", "redirect", "dns", "tcp", "http", "negotiate"]
    hop = steps[2]
    assert hop.details["status"] == status and hop.details["location"] == "/new?x=1"
    assert dial.uri == base(server) + "/new?x=1"


async def test_absolute_location_to_another_server_and_http_scheme(routes: tuple[Routes, wsdoctor.Server]) -> None:
    table, first = routes
    seen: list[tuple[str, list[tuple[str, str]]]] = []
    async with wsdoctor.serve(echo, HOST, 0, process_request=redirecting({}, seen)) as second:
        port = second.port_number
        table["/moved"] = (308, f"http://{HOST}:{port}/here")
        table["/start"] = (302, "moved")  # relative to the directory: /moved
        steps, dial = await echo_through(base(first) + "/start", extra_headers=[("Authorization", "Bearer t")])
    locations = [s.details["location"] for s in steps if s.name == "redirect"]
    assert locations == ["moved", f"http://{HOST}:{port}/here"]
    assert dial.uri == f"ws://{HOST}:{port}/here"
    # The credentials meant for the first server are not handed to the second one.
    assert seen[0][0] == "/here"
    assert not any(name.lower() == "authorization" for name, _ in seen[0][1])


async def test_too_many_redirects(routes: tuple[Routes, wsdoctor.Server]) -> None:
    table, server = routes
    table["/loop"] = (302, "/loop")
    exc, steps = await dial_error(base(server) + "/loop", max_redirects=3)
    assert exc.ending.cause == "redirect.too_many"
    assert "more than 3 redirects" in exc.ending.detail
    assert [s.name for s in steps].count("redirect") == 4  # three followed, the fourth refused


async def test_default_limit_is_ten(routes: tuple[Routes, wsdoctor.Server]) -> None:
    table, server = routes
    table["/loop"] = (307, "/loop")
    exc, steps = await dial_error(base(server) + "/loop")
    assert exc.ending.cause == "redirect.too_many"
    assert [s.name for s in steps].count("redirect") == 11


async def test_zero_disables_following(routes: tuple[Routes, wsdoctor.Server]) -> None:
    table, server = routes
    table["/old"] = (301, "/new")
    exc, steps = await dial_error(base(server) + "/old", max_redirects=0)
    assert isinstance(exc, wsdoctor.HandshakeError) and exc.status == 301
    assert "redirect" not in [s.name for s in steps]


async def test_a_redirect_without_location_is_an_http_error(routes: tuple[Routes, wsdoctor.Server]) -> None:
    table, server = routes
    table["/old"] = (302, "")
    exc, _ = await dial_error(base(server) + "/old")
    assert isinstance(exc, wsdoctor.HandshakeError) and exc.status == 302


@pytest.mark.parametrize("location", ["ftp://example.com/", "ws://[bad/"])
async def test_bad_location(routes: tuple[Routes, wsdoctor.Server], location: str) -> None:
    table, server = routes
    table["/old"] = (302, location)
    exc, _ = await dial_error(base(server) + "/old")
    assert exc.ending.cause == "redirect.bad_location"


async def test_wss_is_never_downgraded(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    table: Routes = {}
    async with wsdoctor.serve(echo, HOST, 0, ssl=pki.healthy([HOST]), process_request=redirecting(table)) as server:
        plain = f"ws://{HOST}:{server.port_number}/plain"
        for location in (plain, plain.replace("ws:", "http:")):
            table["/old"] = (301, location)
            exc, steps = await dial_error(base(server, "wss") + "/old", ssl=pki.client_context())
            assert exc.ending.cause == "redirect.downgrade"
            assert location in exc.ending.detail
            assert steps[-1].name == "redirect"
        # Staying on TLS is fine, and so is an https:// Location.
        table["/old"] = (302, base(server, "https") + "/final")
        _, dial = await echo_through(base(server, "wss") + "/old", ssl=pki.client_context())
        assert dial.uri == base(server, "wss") + "/final"
