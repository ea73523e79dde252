"""Bad arguments are refused when connect() and serve() are called, before any socket opens.

A raw TCP listener on loopback counts the connections it accepts: every bad input
below points at it, and it must count zero. Every refusal is a typed WebSocketError
that is also a ValueError, with an ``input.*`` ending (code 1006, nothing was sent).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest

import wsdoctor
from wsdoctor import InvalidHeader, InvalidOption, InvalidSubprotocol, InvalidURI, WebSocketConnection

HOST = "127.0.0.1"


class Counter:
    """A loopback listener that counts the TCP connections it accepts, and answers nothing."""

    def __init__(self) -> None:
        self.accepted = 0
        self.port = 0

    def on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        writer.close()


@pytest.fixture
async def counter() -> AsyncIterator[Counter]:
    c = Counter()
    server = await asyncio.start_server(c.on_connect, HOST, 0)
    c.port = server.sockets[0].getsockname()[1]
    async with server:
        yield c


def base(c: Counter) -> str:
    return f"ws://{HOST}:{c.port}"


async def refused(exc_type: type[wsdoctor.WebSocketError], cause: str, uri: str, **kwargs: Any) -> str:
    """Dial with bad arguments; return the message. Construction alone must raise."""
    with pytest.raises(exc_type) as info:
        async with wsdoctor.connect(uri, open_timeout=kwargs.pop("open_timeout", 5.0), **kwargs):
            pass
    exc = info.value
    assert isinstance(exc, ValueError)
    assert exc.ending.code == 1006 and exc.ending.cause == cause and exc.ending.initiator == "local"
    assert str(exc) and exc.ending.detail == str(exc)
    assert exc.ending.fix and exc.ending.cause_text("es").fix != exc.ending.fix
    return str(exc)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/path with space", "space at position"),
        ("/a\r\nX-Injected: 1", "control character"),
        ("/tab\there", "control character"),
        ("/nul\x00", "control character"),
    ],
)
async def test_bad_url_characters(counter: Counter, path: str, message: str) -> None:
    text = await refused(InvalidURI, "input.uri", base(counter) + path)
    assert message in text
    assert counter.accepted == 0


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("ws://" + "a" * 64 + ".example/", "63"),
        ("ws://" + "é" * 64 + ".example/", "IDNA"),
        ("ws://a..b/", "empty label"),
        ("ws://-bad-.example/", "letters, digits"),
        ("ws://" + ".".join(["abcdefghi"] * 26) + "/", "253"),
        ("ws://127.0.0.1:65536/", "1 to 65535"),
        ("ws://127.0.0.1:0/", "port 0"),
        ("ws://127.0.0.1:-1/", "not a valid URI"),
        ("ws://127.0.0.1:http/", "not a valid URI"),
        ("ftp://127.0.0.1/", "ws:// or wss://"),
        ("http://127.0.0.1/", "use ws://"),
        ("127.0.0.1:8765", "ws:// or wss://"),
        ("ws://:8765/", "no host"),
        ("ws:///path", "no host"),
        ("ws://[::zz]/", "not a valid"),
    ],
)
async def test_bad_urls(uri: str, message: str) -> None:
    assert message in await refused(InvalidURI, "input.uri", uri)


def test_url_that_is_not_a_string() -> None:
    with pytest.raises(InvalidURI, match="must be a string"):
        wsdoctor.connect(b"ws://127.0.0.1/")  # type: ignore[arg-type]


def test_non_ascii_path_is_percent_encoded() -> None:
    dial = wsdoctor.connect("ws://bücher.example/ö?q=ü")
    assert dial.wsuri.host == "xn--bcher-kva.example" and dial.wsuri.resource == "/%C3%B6?q=%C3%BC"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (("X-A", "b\r\nX-B: c"), "line break"),
        (("X-A", "b\nc"), "line break"),
        (("X-A", "nul\x00"), "control character"),
        (("X-A", "café"), "non-ASCII"),
        (("Bad Name", "v"), "not a valid header name"),
        (("", "v"), "not a valid header name"),
        (("X:Y", "v"), "not a valid header name"),
        (("Host", "evil"), "comes from the URL"),
        (("host", "evil"), "comes from the URL"),
        (("Upgrade", "h2c"), "handshake"),
        (("Connection", "close"), "handshake"),
        (("Sec-WebSocket-Key", "x"), "fresh random key"),
        (("Sec-WebSocket-Version", "8"), "always sends 13"),
        (("Sec-WebSocket-Protocol", "chat"), "subprotocols="),
        (("Sec-WebSocket-Extensions", "permessage-deflate"), "compression="),
        (("Sec-WebSocket-Anything", "x"), "belongs to the WebSocket handshake"),
        (("Content-Length", "5"), "no body"),
    ],
)
async def test_bad_headers(counter: Counter, header: tuple[str, str], message: str) -> None:
    text = await refused(InvalidHeader, "input.header", base(counter) + "/", extra_headers=[header])
    assert message in text
    assert counter.accepted == 0


async def test_header_conflicts(counter: Counter) -> None:
    uri = base(counter) + "/"
    assert "keep one" in await refused(
        InvalidHeader, "input.header", uri, origin="https://a.example", extra_headers=[("Origin", "https://b")]
    )
    assert "keep one" in await refused(
        InvalidHeader, "input.header", f"ws://u:p@{HOST}:{counter.port}/", extra_headers=[("Authorization", "x")]
    )
    assert "twice" in await refused(
        InvalidHeader, "input.header", uri, extra_headers=[("User-Agent", "a/1"), ("user-agent", "b/2")]
    )
    assert "pair" in await refused(InvalidHeader, "input.header", uri, extra_headers=[("X-Only",)])
    assert counter.accepted == 0


@pytest.mark.parametrize("name", ["bad proto", "", "a,b", "chat/1", 'q"uote', "é"])
async def test_bad_subprotocols(counter: Counter, name: str) -> None:
    text = await refused(InvalidSubprotocol, "input.subprotocol", base(counter) + "/", subprotocols=["ok", name])
    assert repr(name) in text
    assert counter.accepted == 0


async def test_subprotocols_given_as_a_string(counter: Counter) -> None:
    await refused(InvalidSubprotocol, "input.subprotocol", base(counter) + "/", subprotocols="chat")
    await refused(InvalidHeader, "input.header", base(counter) + "/", require_extensions=["bad name"])
    assert counter.accepted == 0


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("open_timeout", math.nan, "NaN"),
        ("open_timeout", math.inf, "infinite"),
        ("open_timeout", -1.0, "more than 0"),
        ("open_timeout", 0, "more than 0"),
        ("open_timeout", "5", "number of seconds"),
        ("close_timeout", math.nan, "NaN"),
        ("close_timeout", -0.5, "more than 0"),
        ("ping_interval", math.inf, "None to turn it off"),
        ("ping_timeout", -3, "more than 0"),
        ("max_size", -1, "at least 1"),
        ("max_size", 1.5, "integer"),
        ("max_size", True, "integer"),
        ("max_frame_size", 0, "at least 1"),
        ("max_queue", -16, "at least 1"),
        ("write_limit", -1, "at least 0"),
        ("write_limit", None, "integer"),
        ("compression", "gzip", "'deflate' or None"),
    ],
)
async def test_bad_options(counter: Counter, option: str, value: object, message: str) -> None:
    text = await refused(InvalidOption, "input.option", base(counter) + "/", **{option: value})
    assert option in text and message in text
    assert counter.accepted == 0


async def test_user_agent_replaces_the_default() -> None:
    seen: list[list[str]] = []

    async def handler(ws: WebSocketConnection) -> None:
        await ws.close()

    def hook(ws: WebSocketConnection, request: Any) -> None:
        seen.append(request.get_all("user-agent"))

    async with wsdoctor.serve(handler, HOST, 0, process_request=hook) as server:
        uri = f"ws://{HOST}:{server.port_number}/"
        async with wsdoctor.connect(uri, extra_headers=[("User-Agent", "mine/1.0")]):
            pass
        async with wsdoctor.connect(uri):
            pass
    assert seen == [["mine/1.0"], ["wsdoctor/0.1"]]


def test_serve_refuses_bad_options() -> None:
    async def handler(ws: WebSocketConnection) -> None:
        pass

    for kwargs, exc_type in (
        ({"open_timeout": math.nan}, InvalidOption),
        ({"max_size": -5}, InvalidOption),
        ({"subprotocols": ["bad proto"]}, InvalidSubprotocol),
    ):
        with pytest.raises(exc_type):
            wsdoctor.serve(handler, HOST, 0, **kwargs)
    with pytest.raises(InvalidOption, match="0 to 65535"):
        wsdoctor.serve(handler, HOST, 70000)


def test_every_error_has_an_ending() -> None:
    """The README's ``print(exc.ending.code)`` works for any WebSocketError, even a bare one."""
    for exc in (
        wsdoctor.WebSocketError("x"),
        wsdoctor.LocalProtocolError("cannot send after close"),
        wsdoctor.InvalidCloseCode("1006 cannot be sent"),
        wsdoctor.ProtocolError(1002, "protocol.bad_opcode", "opcode 3"),
    ):
        assert isinstance(exc.ending, wsdoctor.Ending) and exc.ending.code in (1006, 1002)
    assert wsdoctor.InvalidCloseCode("x").ending.cause == "input.close_code"
    assert wsdoctor.ProtocolError(1002, "protocol.bad_opcode", "opcode 3").ending.cause == "protocol.bad_opcode"
