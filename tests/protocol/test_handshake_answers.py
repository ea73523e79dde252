"""The core's side of refused upgrades and wrong schemes: bytes in, causes and values out."""

from __future__ import annotations

import pytest

from wsdoctor.protocol._errors import HandshakeError
from wsdoctor.protocol._handshake import (
    MAX_BODY,
    ClientHandshake,
    HandshakeFailed,
    Response,
    ServerHandshake,
    body_excerpt,
    looks_like_tls,
    shown_values,
    status_failure,
)
from wsdoctor.protocol._uri import parse_uri

CLIENT_HELLO_START = bytes.fromhex("16030100f4010000f00303")


def client() -> ClientHandshake:
    hs = ClientHandshake(parse_uri("ws://server.example.com/chat"), user_agent=None)
    hs.request_bytes()
    return hs


def refused(raw: bytes) -> HandshakeError:
    hs = client()
    response = hs.receive_data(raw) or hs.receive_eof()
    assert response is not None
    with pytest.raises(HandshakeError) as info:
        hs.validate(response)
    return info.value


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (CLIENT_HELLO_START, True),
        (bytes.fromhex("15030300020246"), True),  # an alert
        (bytes.fromhex("160304"), True),
        (bytes.fromhex("160305"), False),
        (bytes.fromhex("170303"), False),  # application data is not how a reply starts
        (b"HTTP/1.1 200 OK", False),
        (b"GET / HTTP/1.1", False),
        (b"\x16\x03", False),
    ],
)
def test_looks_like_tls(data: bytes, expected: bool) -> None:
    assert looks_like_tls(data) is expected


def test_client_recognises_a_tls_reply_even_split_byte_by_byte() -> None:
    hs = client()
    assert hs.receive_data(b"\x15") is None
    assert hs.receive_data(b"\x03") is None
    with pytest.raises(HandshakeError) as info:
        hs.receive_data(b"\x03\x00\x02\x02\x46")
    assert (info.value.ending.code, info.value.ending.cause) == (1006, "http.tls_port")
    assert "15 03 03" in info.value.ending.detail and "wss://" in str(info.value)


def test_server_recognises_a_client_hello_and_does_not_answer() -> None:
    hs = ServerHandshake()
    assert hs.receive_data(CLIENT_HELLO_START[:1]) is None
    with pytest.raises(HandshakeFailed) as info:
        hs.receive_data(CLIENT_HELLO_START[1:])
    assert info.value.answer is False
    assert (info.value.ending.code, info.value.ending.cause, info.value.ending.initiator) == (
        1015,
        "tls.plain_port",
        "remote",
    )
    assert "serve TLS" in info.value.ending.fix.replace("Serve TLS", "serve TLS")


def test_server_still_parses_plain_requests_after_the_check() -> None:
    hs = ServerHandshake()
    assert hs.receive_data(b"GE") is None
    request = hs.receive_data(b"T /x HTTP/1.1\r\nHost: a\r\n\r\n")
    assert request is not None and request.target == "/x"


def test_refusal_message_names_status_reason_and_values() -> None:
    exc = refused(
        b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /v2/chat\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n"
    )
    assert str(exc) == (
        "server rejected WebSocket connection: HTTP 307 Temporary Redirect; Location: /v2/chat; Retry-After: 1 "
        "[http.redirect]"
    )
    assert exc.ending.details == {
        "status": "307",
        "reason": "Temporary Redirect",
        "location": "/v2/chat",
        "retry_after": "1",
    }


def test_missing_reason_phrase_uses_the_standard_one() -> None:
    exc = refused(b"HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n")
    assert str(exc).startswith("server rejected WebSocket connection: HTTP 404 Not Found")


def test_unregistered_status_falls_back_to_the_generic_cause() -> None:
    exc = refused(b"HTTP/1.1 599 Whatever\r\nContent-Length: 0\r\n\r\n")
    assert exc.ending.cause == "http.server_error"
    exc = refused(b"HTTP/1.1 499 Client Closed\r\nContent-Length: 0\r\n\r\n")
    assert exc.ending.cause == "handshake.status"
    assert exc.ending.cause_text().summary  # the generic text still explains it


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ('Basic realm="chat room", charset="UTF-8"', 'Basic realm="chat room"'),
        ("Bearer realm=api, error=invalid_token", 'Bearer realm="api"'),
        ("Negotiate", "Negotiate"),
        ('Digest REALM="x", nonce="1"', 'Digest realm="x"'),
    ],
)
def test_challenge_scheme_and_realm(value: str, shown: str) -> None:
    response = Response(401, "Unauthorized", [("www-authenticate", value)])
    assert shown_values(response) == {"WWW-Authenticate": shown}


def test_two_challenges_are_both_shown() -> None:
    response = Response(401, "", [("www-authenticate", "Negotiate"), ("www-authenticate", 'Basic realm="r"')])
    assert shown_values(response)["WWW-Authenticate"] == 'Negotiate, Basic realm="r"'


def test_values_are_flattened_and_bounded_in_one_line_renderings() -> None:
    body = b"line one\n\tline two " + b"z" * 1000
    exc = status_failure(Response(400, "Bad Request", [], body))
    shown = exc.ending.details["body"]
    assert "\n" not in shown and shown.startswith("line one line two zz") and len(shown) <= 160
    assert "\n" not in str(exc)


def test_body_excerpt_is_printable_and_bounded() -> None:
    assert body_excerpt(b"ok\n") == "ok\n"
    assert body_excerpt(b"\x00\x1b[31mred") == "\\x00\\x1b[31mred"
    long = body_excerpt(b"a" * 600)
    assert long == "a" * 500 + "..."
    assert body_excerpt("é".encode() * 300).endswith("...")


def test_body_is_read_up_to_the_cap_then_the_response_is_complete() -> None:
    hs = client()
    assert hs.receive_data(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 1000000\r\n\r\n") is None
    assert hs.head_received
    response = hs.receive_data(b"x" * (MAX_BODY + 10))
    assert response is not None and len(response.body) == MAX_BODY


def test_head_callback_and_partial_response() -> None:
    hs = client()
    seen: list[bool] = []
    hs.on_head = lambda: seen.append(True)
    assert hs.partial() is None and not hs.head_received
    assert hs.receive_data(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 100\r\n\r\nhalf") is None
    assert seen == [True]
    partial = hs.partial()
    assert partial is not None and (partial.status, partial.body) == (400, b"half")


def test_server_request_in_several_reads_after_the_check() -> None:
    hs = ServerHandshake()
    assert hs.receive_data(b"GET /y HTTP/1.1\r\n") is None
    request = hs.receive_data(b"Host: a\r\n\r\n")
    assert request is not None and request.target == "/y"


def test_server_eof_with_bytes_held_back() -> None:
    """Two bytes then EOF is a truncated request, as it was before the bytes were held back."""
    hs = ServerHandshake()
    assert hs.receive_data(b"GE") is None
    with pytest.raises(HandshakeFailed) as info:
        hs.receive_eof()
    assert info.value.status == 400 and info.value.answer


@pytest.mark.parametrize(
    "body",
    [
        b"<html><center>The plain HTTP request was sent to HTTPS port</center></html>",  # nginx
        b"Client sent an HTTP request to an HTTPS server.\n",  # Go's net/http
    ],
)
def test_a_tls_front_end_saying_plain_http_reached_it_is_a_tls_port(body: bytes) -> None:
    exc = refused(b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    assert exc.ending.cause == "http.tls_port" and exc.status == 400
    assert str(exc).startswith("server rejected WebSocket connection: HTTP 400 Bad Request; body: ")
    assert "wss://" in exc.ending.fix
