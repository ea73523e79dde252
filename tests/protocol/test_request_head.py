"""The server handshake's fast path gives exactly what h11 gives, and hands odd input to h11."""

from __future__ import annotations

import contextlib

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsdoctor.protocol._handshake import HandshakeFailed, Request, ServerHandshake, accept_key

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
BASE = (
    b"GET /chat?room=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: " + KEY.encode() + b"\r\nSec-WebSocket-Version: 13\r\n"
)
SIMPLE = [
    BASE + b"\r\n",
    BASE + b"Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n\r\n",
    BASE + b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
    BASE + b"User-Agent:   spaced   value  \t\r\nX-Empty:\r\nX-Latin: caf\xe9\r\n\r\n",
    BASE.replace(b"Upgrade: websocket", b"UPGRADE: WebSocket") + b"\r\n",
]


def h11_request(data: bytes) -> Request:
    """What the h11 path made of a request before the fast path existed."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    event = conn.next_event()
    assert isinstance(event, h11.Request)
    headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in event.headers]
    return Request(event.method.decode(), event.target.decode(), headers, event.http_version.decode())


def h11_101(headers: list[tuple[str, str]]) -> bytes:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(BASE + b"\r\n")
    conn.next_event()
    return conn.send(h11.InformationalResponse(status_code=101, headers=headers, reason=b"Switching Protocols"))


@pytest.mark.parametrize("data", SIMPLE)
def test_fast_path_matches_h11(data: bytes) -> None:
    hs = ServerHandshake()
    request = hs.receive_data(data + b"\x81\x80leftover")
    assert hs._fast
    assert request == h11_request(data)
    assert hs.leftover == b"\x81\x80leftover"


@pytest.mark.parametrize("data", SIMPLE)
def test_fast_path_byte_by_byte(data: bytes) -> None:
    hs = ServerHandshake()
    results = [hs.receive_data(data[i : i + 1]) for i in range(len(data))]
    assert all(r is None for r in results[:-1])
    assert hs._fast and results[-1] == h11_request(data)


@pytest.mark.parametrize(
    ("subprotocol", "extensions", "extra"),
    [
        (None, [], []),
        ("chat", [("permessage-deflate", [("server_max_window_bits", "10")])], [("Server", "wsdoctor/0.1")]),
        (None, [], [("X-Trace", "a  b"), ("Set-Cookie", "k=v; Path=/")]),
    ],
)
def test_101_template_matches_h11(
    subprotocol: str | None, extensions: list[tuple[str, list[tuple[str, str | None]]]], extra: list[tuple[str, str]]
) -> None:
    hs = ServerHandshake()
    request = hs.receive_data(BASE + b"Sec-WebSocket-Protocol: chat\r\n\r\n")
    assert request is not None and hs._fast
    offer = hs.validate(request)
    response = hs.accept(offer, subprotocol=subprotocol, extensions=extensions, extra_headers=extra)
    headers = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept_key(KEY))]
    if subprotocol is not None:
        headers.append(("Sec-WebSocket-Protocol", subprotocol))
    if extensions:
        params = "; ".join(f"{p}={v}" for p, v in extensions[0][1])
        headers.append(("Sec-WebSocket-Extensions", f"{extensions[0][0]}; {params}"))
    assert response == h11_101(headers + extra)


def test_header_h11_refuses_is_still_refused() -> None:
    hs = ServerHandshake()
    request = hs.receive_data(BASE + b"\r\n")
    assert request is not None
    offer = hs.validate(request)
    with pytest.raises(h11.LocalProtocolError):
        hs.accept(offer, subprotocol=None, extensions=[], extra_headers=[("X-Bad", "line\r\nbreak")])
    hs = ServerHandshake()
    request = hs.receive_data(BASE + b"\r\n")
    assert request is not None
    # A value h11 accepts but the template does not build (a control byte): h11 writes it.
    out = hs.accept(hs.validate(request), subprotocol=None, extensions=[], extra_headers=[("X-Odd", "a\x01b")])
    assert out.endswith(b"X-Odd: a\x01b\r\n\r\n")


@pytest.mark.parametrize(
    "data",
    [
        BASE.replace(b"\r\n", b"\n") + b"\n",  # bare LF line ends
        BASE + b"X-Folded: one\r\n two\r\n\r\n",  # obs-fold
        BASE + b"X-Del: a\x7fb\r\n\r\n",  # a byte outside the fast path's set
        BASE + b"Content-Length: 0\r\n\r\n",  # a (zero-length) body
    ],
)
def test_odd_but_valid_requests_go_to_h11(data: bytes) -> None:
    hs = ServerHandshake()
    try:
        expected: Request | None = h11_request(data)
    except h11.RemoteProtocolError:
        expected = None
    if expected is None:
        with pytest.raises(HandshakeFailed):
            hs.receive_data(data)
    else:
        assert hs.receive_data(data) == expected
    assert not hs._fast


@pytest.mark.parametrize(
    ("data", "status", "cause"),
    [
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400, "tls.plain_port"),  # a TLS hello
        (b"\x05\x01\x00\r\n\r\n", 400, "handshake.malformed"),  # a SOCKS5 greeting
        (BASE.replace(b"Host: server.example.com\r\n", b"") + b"\r\n", 400, "handshake.malformed"),
        (BASE + b"Host: again.example.com\r\n\r\n", 400, "handshake.malformed"),
        (BASE + b"Bad Name: x\r\n\r\n", 400, "handshake.malformed"),
        (BASE + b"Content-Length: 2\r\n\r\nab", 400, "handshake.bad_request"),
    ],
)
def test_bad_requests_get_h11s_verdict(data: bytes, status: int, cause: str) -> None:
    hs = ServerHandshake()
    with pytest.raises(HandshakeFailed) as info:
        request = hs.receive_data(data)
        assert request is not None
        hs.validate(request)
    assert (info.value.status, info.value.ending.cause) == (status, cause)


def test_fast_path_keeps_the_limits() -> None:
    with pytest.raises(HandshakeFailed, match="more than 4"):
        ServerHandshake(max_headers=4).receive_data(BASE + b"\r\n")
    with pytest.raises(HandshakeFailed) as info:
        ServerHandshake(max_header_size=150).receive_data(BASE + b"X-Big: " + b"a" * 20 + b"\r\n\r\n")
    assert info.value.status == 431
    # An endless head is cut at the limit, not buffered forever.
    hs = ServerHandshake(max_header_size=200)
    with pytest.raises(HandshakeFailed) as info:
        for _ in range(100):
            hs.receive_data(b"X-More: aaaaaaaaaaaaaaaaaaaa\r\n" if hs._head else BASE)
    assert info.value.status == 431


def test_eof_before_a_complete_head_is_h11s_error() -> None:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(BASE)
    conn.receive_data(b"")
    with pytest.raises(h11.RemoteProtocolError):
        conn.next_event()
    hs = ServerHandshake()
    assert hs.receive_data(BASE) is None
    with pytest.raises(HandshakeFailed) as info:
        hs.receive_eof()
    assert info.value.ending.cause == "handshake.malformed"


def test_what_is_plainly_not_a_simple_request_goes_to_h11_at_once() -> None:
    hs = ServerHandshake()
    assert hs.receive_data(b"POST /form HTTP/1.1\r\n") is None
    assert hs._head is None  # h11 has it already, without waiting for the whole head
    data = BASE + b"X-A: 1\nX-B: 2\r\n\r\n"  # one bare LF in an otherwise complete head
    hs = ServerHandshake()
    assert hs.receive_data(data) == h11_request(data)
    assert not hs._fast


def test_negotiated_values_h11_must_write() -> None:
    for subprotocol, extensions in [("chat\x01", []), (None, [("x-ext\x01", [])])]:
        hs = ServerHandshake()
        request = hs.receive_data(BASE + b"\r\n")
        assert request is not None and hs._fast
        out = hs.accept(hs.validate(request), subprotocol=subprotocol, extensions=extensions)
        assert out.startswith(b"HTTP/1.1 101 ") and b"\x01" in out and not hs._fast


# Bytes that decide between the fast path and h11: separators, whitespace, line ends,
# control bytes, DEL, obs-text, and enough letters to form names and values.
_EDGE_BYTES = b'aZ09-_:;, \t\r\n\x00\x01\x7f\x80\xe9\xff/="('
_edge = st.binary(max_size=8).map(lambda b: bytes(_EDGE_BYTES[x % len(_EDGE_BYTES)] for x in b))
# Mostly "name: value" lines, so that the fast path is taken often, with odd bytes anywhere.
_line = st.one_of(
    st.tuples(st.sampled_from([b"x-a", b"Accept", b"a b", b"", b"x\x80"]), _edge).map(lambda nv: nv[0] + b":" + nv[1]),
    st.tuples(_edge, _edge).map(lambda nv: nv[0] + b":" + nv[1]),
    _edge,
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_line, max_size=4))
def test_any_header_lines_get_what_h11_makes_of_them(lines: list[bytes]) -> None:
    data = BASE + b"".join(line + b"\r\n" for line in lines) + b"\r\n"
    try:
        expected: Request | None = h11_request(data)
    except (h11.RemoteProtocolError, AssertionError):
        expected = None
    hs = ServerHandshake()
    if expected is None:
        with contextlib.suppress(HandshakeFailed):  # refused now, or at the end of the stream
            assert hs.receive_data(data) is None
    else:
        assert hs.receive_data(data) == expected
