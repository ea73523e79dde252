"""Inputs that the fuzzers in fuzz/ found to break something, kept as tests."""

from __future__ import annotations

import asyncio
import logging
import urllib.parse

import pytest

import wsdoctor
from wsdoctor.protocol._handshake import ClientHandshake, HandshakeFailed, ServerHandshake
from wsdoctor.protocol._redact import MASK
from wsdoctor.protocol._uri import InvalidURI, parse_uri

REQUEST = (
    "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def test_empty_data_is_not_the_end_of_the_stream() -> None:
    """h11 reads b"" as EOF; feeding b"" then more bytes raised RuntimeError."""
    server = ServerHandshake()
    assert server.receive_data(b"") is None
    request = server.receive_data(REQUEST.format(key="dGhlIHNhbXBsZSBub25jZQ==").encode())
    assert request is not None and request.target == "/"
    client = ClientHandshake(parse_uri("ws://h/"))
    client.request_bytes()
    assert client.receive_data(b"") is None
    assert client.receive_data(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n") is not None


def test_non_ascii_key_is_a_400_not_a_crash() -> None:
    server = ServerHandshake()
    request = server.receive_data(REQUEST.format(key="dGé=").encode("latin-1"))
    assert request is not None
    with pytest.raises(HandshakeFailed) as info:
        server.validate(request)
    assert info.value.status == 400


async def test_non_ascii_key_on_the_wire(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "wsdoctor.server")

    async def never(ws: wsdoctor.WebSocketConnection) -> None:
        raise AssertionError("the handler must not run")

    async with asyncio.timeout(10), wsdoctor.serve(never, "127.0.0.1", 0) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port_number)
        writer.write(REQUEST.format(key="dG\xe9\x98IHNhbXBsZSBub25jZQ==").encode("latin-1"))
        answer = await reader.read()
        writer.close()
        while server.connections:
            await asyncio.sleep(0.01)
    assert answer.startswith(b"HTTP/1.1 400")
    assert "unexpected error" not in caplog.text and "Traceback" not in caplog.text
    causes = [r.ending.cause for r in caplog.records if hasattr(r, "ending")]  # type: ignore[attr-defined]
    assert causes == ["handshake.bad_request"]


@pytest.mark.parametrize(
    "url",
    [
        "ws://:\x1c@ws://s",  # a control character in the password
        "ws:/\t/1:b@cd:1/",  # a tab, which the URL parser drops
        "ws://a b:c d@h/",  # spaces
    ],
)
def test_redaction_masks_the_password_the_parser_sees(url: str) -> None:
    # Such URLs are refused, and the refusal quotes them with the password masked.
    password = urllib.parse.urlsplit(url).password
    assert password
    with pytest.raises(InvalidURI) as info:
        parse_uri(url)
    message = str(info.value)
    assert MASK in message and password not in message.replace(MASK, "")


@pytest.mark.parametrize("url", ["ws://h/#\t", "ws://h/#\r\n", "ws://:'@h/#\t\t"])
def test_an_empty_fragment_hidden_by_a_tab_is_refused(url: str) -> None:
    """The URL parser drops tabs and newlines, so "#\t" would pass as no fragment: the control
    character is refused before parsing, and the parser's own check refuses the fragment."""
    with pytest.raises(wsdoctor.WebSocketError, match="control character"):
        parse_uri(url)
    with pytest.raises(wsdoctor.WebSocketError, match="fragment"):
        parse_uri(url.replace("\t", "").replace("\r", "").replace("\n", ""))
