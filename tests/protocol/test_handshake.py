"""The opening handshake, both roles, byte-exact, with every validation failure."""

from __future__ import annotations

import pytest

from wsdoctor.protocol._errors import HandshakeError, NegotiationError
from wsdoctor.protocol._handshake import ClientHandshake, HandshakeFailed, ServerHandshake, accept_key
from wsdoctor.protocol._headers import (
    InvalidHeader,
    parse_extensions,
    parse_subprotocols,
    parse_token_list,
    serialize_extensions,
    serialize_subprotocols,
)
from wsdoctor.protocol._uri import InvalidURI, parse_uri

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_rfc_sample_accept_key() -> None:
    assert accept_key(KEY) == ACCEPT


def client(**kw: object) -> ClientHandshake:
    return ClientHandshake(parse_uri("ws://server.example.com/chat"), key=KEY, user_agent=None, **kw)  # type: ignore[arg-type]


def test_client_request_bytes() -> None:
    hs = client(
        origin="http://example.com",
        subprotocols=["chat", "superchat"],
        extensions=[("permessage-deflate", [("client_max_window_bits", None)])],
    )
    assert hs.request_bytes() == (
        b"GET /chat HTTP/1.1\r\n"
        b"Host: server.example.com\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"Origin: http://example.com\r\n"
        b"Sec-WebSocket-Protocol: chat, superchat\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    )


def test_client_request_basic_auth_and_port() -> None:
    hs = ClientHandshake(parse_uri("wss://me:s%40cret@h.example:8443/p?q=1"), key=KEY)
    data = hs.request_bytes()
    assert data.startswith(b"GET /p?q=1 HTTP/1.1\r\nHost: h.example:8443\r\n")
    assert b"Authorization: Basic bWU6c0BjcmV0\r\n" in data
    assert b"User-Agent: wsdoctor/0.1\r\n" in data


RESPONSE = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: " + ACCEPT.encode() + b"\r\n"
)


def complete(hs: ClientHandshake, data: bytes):  # type: ignore[no-untyped-def]
    hs.request_bytes()
    response = hs.receive_data(data)
    assert response is not None
    return response


def test_client_accepts_101_with_leftover_frame() -> None:
    hs = client()
    response = complete(hs, RESPONSE + b"\r\n\x81\x02hi")
    accepted = hs.validate(response)
    assert accepted.subprotocol is None and accepted.extensions == []
    assert hs.leftover == b"\x81\x02hi"


def test_client_response_one_byte_at_a_time() -> None:
    hs = client()
    hs.request_bytes()
    data = RESPONSE + b"\r\n"
    results = [hs.receive_data(data[i : i + 1]) for i in range(len(data))]
    assert all(r is None for r in results[:-1]) and results[-1] is not None
    hs.validate(results[-1])


def test_client_negotiated_values() -> None:
    hs = client(subprotocols=["a", "b"], extensions=[("permessage-deflate", [])])
    response = complete(
        hs,
        RESPONSE + b"Sec-WebSocket-Protocol: b\r\nSec-WebSocket-Extensions: permessage-deflate; "
        b'server_max_window_bits="10"\r\n\r\n',
    )
    accepted = hs.validate(response)
    assert accepted.subprotocol == "b"
    assert accepted.extensions == [("permessage-deflate", [("server_max_window_bits", "10")])]


@pytest.mark.parametrize(
    ("response", "cause"),
    [
        (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope", "http.forbidden"),
        (RESPONSE.replace(b"Upgrade: websocket", b"Upgrade: h2c") + b"\r\n", "handshake.no_upgrade"),
        (RESPONSE.replace(b"Connection: Upgrade", b"Connection: keep-alive") + b"\r\n", "handshake.no_upgrade"),
        (RESPONSE.replace(ACCEPT.encode(), b"wrong") + b"\r\n", "handshake.bad_accept"),
        (RESPONSE + b"Sec-WebSocket-Extensions: permessage-deflate;;\r\n\r\n", "handshake.malformed"),
    ],
)
def test_client_rejects_bad_responses(response: bytes, cause: str) -> None:
    hs = client(extensions=[("permessage-deflate", [])])
    with pytest.raises(HandshakeError) as info:
        hs.validate(complete(hs, response))
    assert info.value.ending.cause == cause
    assert info.value.ending.code == 1006


def test_client_status_detail_and_body() -> None:
    hs = client()
    with pytest.raises(HandshakeError) as info:
        hs.validate(complete(hs, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope"))
    assert info.value.status == 403 and info.value.body == b"nope"
    assert info.value.ending.detail == "HTTP 403 Forbidden"
    assert str(info.value).startswith("server rejected WebSocket connection: HTTP 403 Forbidden")


def test_client_body_until_eof() -> None:
    hs = client()
    hs.request_bytes()
    assert hs.receive_data(b"HTTP/1.1 500 Oops\r\n\r\npartial") is None
    response = hs.receive_eof()
    assert response is not None and response.status == 500 and response.body == b"partial"


def test_client_eof_before_response() -> None:
    hs = client()
    hs.request_bytes()
    assert hs.receive_eof() is None


@pytest.mark.parametrize(
    ("extra", "cause"),
    [
        (b"Sec-WebSocket-Extensions: x-unknown\r\n", "extension.unrequested"),
        (b"Sec-WebSocket-Protocol: other\r\n", "subprotocol.mismatch"),
        (b"Sec-WebSocket-Protocol: a, b\r\n", "subprotocol.mismatch"),
    ],
)
def test_client_negotiation_failures(extra: bytes, cause: str) -> None:
    hs = client(subprotocols=["a", "b"])
    with pytest.raises(NegotiationError) as info:
        hs.validate(complete(hs, RESPONSE + extra + b"\r\n"))
    assert info.value.ending.cause == cause


def test_client_malformed_http() -> None:
    hs = client()
    hs.request_bytes()
    with pytest.raises(HandshakeError) as info:
        hs.receive_data(b"NOT HTTP AT ALL\r\n\r\n")
    assert info.value.ending.cause == "handshake.malformed"


def test_client_too_many_headers() -> None:
    hs = ClientHandshake(parse_uri("ws://h/"), key=KEY, max_headers=3)
    with pytest.raises(HandshakeError) as info:
        complete(hs, RESPONSE + b"A: 1\r\n\r\n")
    assert "more than 3" in info.value.ending.detail
    big = ClientHandshake(parse_uri("ws://h/"), key=KEY, max_header_size=100)
    with pytest.raises(HandshakeError) as info:
        complete(big, RESPONSE + b"A: " + b"x" * 200 + b"\r\n\r\n")
    assert "exceed 100 bytes" in info.value.ending.detail


# ------------------------------------------------------------------ server

REQUEST = (
    b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: " + KEY.encode() + b"\r\nSec-WebSocket-Version: 13\r\n"
)


def offer_for(data: bytes):  # type: ignore[no-untyped-def]
    hs = ServerHandshake()
    request = hs.receive_data(data)
    assert request is not None
    return hs, hs.validate(request)


def test_server_parses_offer_and_accepts() -> None:
    hs, offer = offer_for(
        REQUEST + b"Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n\x81\x82"
    )
    assert offer.path == "/chat" and offer.origin == "http://example.com"
    assert offer.subprotocols == ["chat", "superchat"]
    assert offer.extensions == [("permessage-deflate", [("client_max_window_bits", None)])]
    assert hs.leftover == b"\x81\x82"
    response = hs.accept(offer, subprotocol="chat", extensions=[("permessage-deflate", [])])
    assert response == (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + ACCEPT.encode() + b"\r\n"
        b"Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("request_bytes", "status", "cause"),
    [
        (REQUEST.replace(b"GET", b"POST") + b"\r\n", 405, "handshake.bad_request"),
        (REQUEST.replace(b"Host: server.example.com\r\n", b"") + b"\r\n", 400, "handshake.malformed"),
        (REQUEST.replace(b"Upgrade: websocket", b"Upgrade: h2c") + b"\r\n", 426, "handshake.bad_request"),
        (REQUEST.replace(b"Connection: Upgrade", b"Connection: close") + b"\r\n", 400, "handshake.bad_request"),
        (REQUEST.replace(b"Version: 13", b"Version: 8") + b"\r\n", 426, "handshake.bad_version"),
        (REQUEST.replace(KEY.encode(), b"c2hvcnQ=") + b"\r\n", 400, "handshake.bad_request"),
        (REQUEST.replace(KEY.encode(), b"!!!notbase64!!!") + b"\r\n", 400, "handshake.bad_request"),
        (REQUEST + b"Sec-WebSocket-Extensions: a;=\r\n\r\n", 400, "handshake.bad_request"),
        (REQUEST.replace(b"HTTP/1.1", b"HTTP/1.0") + b"\r\n", 400, "handshake.bad_request"),
        (b"GARBAGE\r\n\r\n", 400, "handshake.malformed"),
        (REQUEST + b"Content-Length: 2\r\n\r\nab", 400, "handshake.bad_request"),
    ],
)
def test_server_rejections(request_bytes: bytes, status: int, cause: str) -> None:
    hs = ServerHandshake()
    with pytest.raises(HandshakeFailed) as info:
        request = hs.receive_data(request_bytes)
        assert request is not None
        hs.validate(request)
    assert (info.value.status, info.value.ending.cause) == (status, cause)
    response = hs.reject(info.value.status, info.value.body, info.value.headers)
    assert response.startswith(f"HTTP/1.1 {status} ".encode())
    assert b"Connection: close" in response


def test_server_version_rejection_advertises_13() -> None:
    hs = ServerHandshake()
    with pytest.raises(HandshakeFailed) as info:
        request = hs.receive_data(REQUEST.replace(b"Version: 13", b"Version: 8") + b"\r\n")
        assert request is not None
        hs.validate(request)
    assert ("Sec-WebSocket-Version", "13") in info.value.headers


def test_server_header_limits() -> None:
    hs = ServerHandshake(max_header_size=200)
    with pytest.raises(HandshakeFailed) as info:
        hs.receive_data(REQUEST + b"X-Big: " + b"a" * 500 + b"\r\n\r\n")
    assert info.value.status in (400, 431)
    hs2 = ServerHandshake(max_headers=4)
    with pytest.raises(HandshakeFailed, match="more than 4"):
        hs2.receive_data(REQUEST + b"\r\n")


def test_server_partial_and_eof() -> None:
    hs = ServerHandshake()
    assert hs.receive_data(REQUEST) is None
    assert ServerHandshake().receive_eof() is None


def test_server_reject_with_text_and_custom_type() -> None:
    hs = ServerHandshake()
    out = hs.reject(401, "who are you?\n")
    assert out.startswith(b"HTTP/1.1 401 Unauthorized\r\n") and out.endswith(b"who are you?\n")
    assert b"Content-Type: text/plain; charset=utf-8" in out
    html = hs.reject(200, b"<p>", [("Content-Type", "text/html")])
    assert b"text/plain" not in html and html.endswith(b"<p>")


# ------------------------------------------------------------------- headers


def test_extension_grammar() -> None:
    assert parse_extensions(['permessage-deflate; client_max_window_bits; server_max_window_bits="10" , foo']) == [
        ("permessage-deflate", [("client_max_window_bits", None), ("server_max_window_bits", "10")]),
        ("foo", []),
    ]
    assert parse_extensions([", a ;b=c ,", "d"]) == [("a", [("b", "c")]), ("d", [])]
    assert parse_extensions(['x; y="a\\bc"']) == [("x", [("y", "abc")])]


@pytest.mark.parametrize("value", ["a;", "a b", 'a;b="x y"', 'a;b="x', "a;=c", "@", "a;b=c d"])
def test_extension_grammar_errors(value: str) -> None:
    with pytest.raises(InvalidHeader):
        parse_extensions([value])


def test_serialize_round_trip() -> None:
    items = [("permessage-deflate", [("client_max_window_bits", None), ("server_max_window_bits", "10")])]
    assert serialize_extensions(items) == "permessage-deflate; client_max_window_bits; server_max_window_bits=10"
    assert parse_extensions([serialize_extensions(items)]) == items


def test_token_lists_and_subprotocols() -> None:
    assert parse_token_list(["keep-alive, Upgrade", "websocket/13"]) == ["keep-alive", "Upgrade", "websocket/13"]
    assert parse_subprotocols(["chat, v2.chat"]) == ["chat", "v2.chat"]
    assert serialize_subprotocols(["a", "b"]) == "a, b"
    with pytest.raises(InvalidHeader):
        serialize_subprotocols(["not a token"])
    with pytest.raises(InvalidHeader):
        parse_token_list(["a b"])


# ---------------------------------------------------------------------- URIs


def test_uris() -> None:
    u = parse_uri("ws://example.com")
    assert (u.secure, u.host, u.port, u.resource, u.host_header) == (False, "example.com", 80, "/", "example.com")
    u = parse_uri("wss://[::1]:9000/a?b")
    assert (u.secure, u.host, u.port, u.resource, u.host_header) == (True, "::1", 9000, "/a?b", "[::1]:9000")
    assert str(u) == "wss://[::1]:9000/a?b"
    assert parse_uri("wss://bücher.example/").host == "xn--bcher-kva.example"
    assert parse_uri("WSS://Example.com").port == 443


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("http://example.com", "use ws://"),
        ("https://example.com", "use wss://"),
        ("ftp://example.com", "ws:// or wss://"),
        ("ws://", "no host"),
        ("ws://example.com/#frag", "fragment"),
        ("ws://example.com:99999/", "out of range"),
    ],
)
def test_bad_uris(uri: str, message: str) -> None:
    with pytest.raises(InvalidURI, match=message):
        parse_uri(uri)
