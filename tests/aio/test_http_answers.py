"""HTTP answers to the upgrade, wrong schemes both ways, and the server's own edges, on loopback."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import pytest

import wsdoctor
from _helpers import answering, echo
from wsdoctor import WebSocketConnection
from wsdoctor.aio.client import Step
from wsdoctor.diagnose.certs import Pki

HOST = "127.0.0.1"


def response(status_line: str, *headers: str, body: bytes = b"") -> tuple[bytes, bytes]:
    lines = [f"HTTP/1.1 {status_line}", *headers, f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode(), body


async def refusal(head: bytes, body: bytes = b"") -> wsdoctor.HandshakeError:
    async with asyncio.timeout(10), answering(head, body) as url:
        with pytest.raises(wsdoctor.HandshakeError) as info:
            # Redirects are followed by default; here each answer is looked at as it is.
            await wsdoctor.connect(url, open_timeout=5, max_redirects=0)
    return info.value


CASES = [
    # status line, headers, body, cause, what str(exc) must show
    ("301 Moved Permanently", ["Location: wss://example.test/chat"], b"", "http.redirect", "Location: wss://"),
    ("302 Found", ["Location: /login"], b"", "http.redirect", "Location: /login"),
    ("400 Bad Request", [], b"missing token parameter\n", "http.bad_request", "missing token parameter"),
    (
        "401 Unauthorized",
        ['WWW-Authenticate: Basic realm="chat", charset="UTF-8"'],
        b"",
        "http.unauthorized",
        'WWW-Authenticate: Basic realm="chat"',
    ),
    ("403 Forbidden", ["Server: gatekeeper"], b"no", "http.forbidden", "HTTP 403 Forbidden"),
    ("404 Not Found", [], b"", "http.not_found", "HTTP 404 Not Found"),
    (
        "407 Proxy Authentication Required",
        ['Proxy-Authenticate: Basic realm="corp"'],
        b"",
        "http.proxy_auth",
        'Proxy-Authenticate: Basic realm="corp"',
    ),
    ("426 Upgrade Required", ["Sec-WebSocket-Version: 8"], b"", "http.upgrade_required", "Sec-WebSocket-Version: 8"),
    ("429 Too Many Requests", ["Retry-After: 30"], b"", "http.too_many_requests", "Retry-After: 30"),
    ("502 Bad Gateway", ["Server: nginx/1.25.3"], b"<html>", "http.bad_gateway", "Server: nginx/1.25.3"),
    ("503 Service Unavailable", ["Server: envoy", "Retry-After: 5"], b"", "http.unavailable", "Retry-After: 5"),
    ("504 Gateway Timeout", ["Server: haproxy"], b"", "http.bad_gateway", "Server: haproxy"),
    ("500 Internal Server Error", ["Retry-After: 2"], b"oops", "http.server_error", "Retry-After: 2"),
    ("200 OK", ["Content-Type: text/html"], b"<html>hello</html>", "http.not_websocket", "Content-Type: text/html"),
    ("418 I'm a teapot", [], b"", "handshake.status", "HTTP 418 I'm a teapot"),
]


@pytest.mark.parametrize(("status_line", "headers", "body", "cause", "shown"), CASES)
async def test_each_status_has_its_cause(
    status_line: str, headers: list[str], body: bytes, cause: str, shown: str
) -> None:
    exc = await refusal(*response(status_line, *headers, body=body))
    status = int(status_line.split()[0])
    assert exc.status == status and exc.body == body
    assert (exc.ending.code, exc.ending.cause, exc.ending.initiator) == (1006, cause, "remote")
    message = str(exc)
    assert message.startswith(f"server rejected WebSocket connection: HTTP {status_line}")
    assert shown in message and shown in exc.ending.detail
    assert exc.ending.details["status"] == str(status)
    for lang in ("en", "es"):
        text = exc.ending.cause_text(lang)
        assert text.summary and text.fix and "{" not in text.summary + text.fix


async def test_server_header_named_only_where_it_helps() -> None:
    exc = await refusal(*response("403 Forbidden", "Server: gatekeeper"))
    assert "gatekeeper" not in str(exc)
    exc = await refusal(*response("502 Bad Gateway", "Server: nginx"))
    assert exc.ending.details["server"] == "nginx"
    assert "proxy" in exc.ending.cause_text().summary


async def test_spanish_texts_fill_the_status() -> None:
    exc = await refusal(*response("503 Service Unavailable"))
    assert exc.ending.cause_text("es").summary.startswith("HTTP 503: el servidor no está disponible")
    exc = await refusal(*response("504 Gateway Timeout"))
    assert exc.ending.cause_text("es").summary.startswith("HTTP 504: un proxy")


async def test_a_body_that_never_ends_is_cut_short_and_shown() -> None:
    head = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 1000\r\n\r\n"
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(10), answering(head, b"bad subprotocol", close=False) as url:
        started = loop.time()
        with pytest.raises(wsdoctor.HandshakeError) as info:
            await wsdoctor.connect(url, open_timeout=8)
        waited = loop.time() - started
    assert info.value.status == 400 and info.value.body == b"bad subprotocol"
    assert "bad subprotocol" in str(info.value)
    assert waited < 8  # the status arrived: the open timeout was not spent waiting for the rest


async def test_a_huge_body_is_read_up_to_the_cap() -> None:
    head = b"HTTP/1.1 404 Not Found\r\nContent-Length: 10000000\r\n\r\n"
    async with asyncio.timeout(10), answering(head, b"x" * 200_000, close=False) as url:
        with pytest.raises(wsdoctor.HandshakeError) as info:
            await wsdoctor.connect(url, open_timeout=8)
    assert info.value.ending.cause == "http.not_found"
    assert 0 < len(info.value.body) <= 65536


async def test_step_details_carry_status_headers_and_a_printable_excerpt() -> None:
    steps: list[Step] = []
    body = b"\x00\x01" + "é".encode() + b"y" * 2000
    async with asyncio.timeout(10), answering(*response("400 Bad Request", "X-Why: because", body=body)) as url:
        with pytest.raises(wsdoctor.HandshakeError):
            await wsdoctor.connect(url, open_timeout=5, trace=steps.append)
    http = steps[-1]
    assert http.name == "http" and not http.ok
    assert (http.details["status"], http.details["reason"]) == (400, "Bad Request")
    assert ("x-why", "because") in http.details["headers"]
    excerpt = http.details["body"]
    assert excerpt.startswith("\\x00\\x01é") and excerpt.endswith("...")
    assert len(excerpt.encode()) < 520 and excerpt.isprintable()
    assert http.details["cause"] == "http.bad_request" and "body" in http.details["shown"]


# ------------------------------------------------------------ wrong scheme


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


@pytest.fixture
def server_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, "wsdoctor.server")
    return caplog


async def test_wss_to_a_plain_wsdoctor_server(server_log: pytest.LogCaptureFixture) -> None:
    async with asyncio.timeout(15), wsdoctor.serve(echo, HOST, 0) as plain:
        with pytest.raises(wsdoctor.TLSHandshakeError) as info:
            await wsdoctor.connect(f"wss://{HOST}:{plain.port}/", open_timeout=5)
        await asyncio.sleep(0.1)
    ending = info.value.ending
    assert (ending.code, ending.cause) == (1015, "tls.not_tls")
    assert "plain HTTP" in ending.detail and "HTTP/1.1 426" in ending.detail
    assert "ws://" in ending.fix and "TLS in front" in ending.fix
    endings = [r.ending for r in server_log.records if hasattr(r, "ending")]
    assert any(e.cause == "tls.plain_port" and e.code == 1015 for e in endings), endings
    plain_port = next(e for e in endings if e.cause == "tls.plain_port")
    assert "serve TLS" in plain_port.fix.replace("Serve TLS", "serve TLS") and "ws://" in plain_port.fix


async def test_a_client_hello_on_a_plain_port_gets_no_http_answer(server_log: pytest.LogCaptureFixture) -> None:
    hello = bytes.fromhex("160301") + b"\x00\x05\x01\x00\x00\x01\x00"
    async with asyncio.timeout(10), wsdoctor.serve(echo, HOST, 0) as plain:
        reader, writer = await asyncio.open_connection(HOST, plain.port)
        writer.write(hello)
        assert await reader.read() == b""  # closed, no "HTTP/1.1 400" into a TLS client
        writer.close()
        await asyncio.sleep(0.1)
    records = [r for r in server_log.records if getattr(r, "ending", None) is not None]
    assert [r.ending.cause for r in records] == ["tls.plain_port"]  # type: ignore[attr-defined]
    assert "illegal request line" not in server_log.text
    assert "dialled wss:// to this plain" in records[0].getMessage()


async def test_ws_to_a_wsdoctor_tls_server(pki: Pki) -> None:
    async with asyncio.timeout(15), wsdoctor.serve(echo, HOST, 0, ssl=pki.healthy([HOST])) as server:
        with pytest.raises(wsdoctor.HandshakeError) as info:
            await wsdoctor.connect(f"ws://{HOST}:{server.port}/", open_timeout=5)
    ending = info.value.ending
    assert (ending.code, ending.cause) == (1006, "http.tls_port")
    assert "TLS handshake (TLSv1." in ending.detail
    assert "wss://" in ending.fix and "wss://" in str(info.value)


async def test_ws_to_a_port_answering_with_a_tls_alert() -> None:
    alert = bytes.fromhex("15030300020246")  # fatal protocol_version, as some TLS stacks answer plain text
    async with asyncio.timeout(10), answering(alert) as url:
        with pytest.raises(wsdoctor.HandshakeError) as info:
            await wsdoctor.connect(url, open_timeout=5)
    assert info.value.ending.cause == "http.tls_port"
    assert "15 03 03" in info.value.ending.detail


async def test_a_plain_server_that_hangs_up_is_still_tcp_closed() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(hang_up, HOST, 0)
    async with server, asyncio.timeout(10):
        with pytest.raises(wsdoctor.HandshakeError) as info:
            await wsdoctor.connect(f"ws://{HOST}:{server.sockets[0].getsockname()[1]}/", open_timeout=5)
    assert info.value.ending.cause == "tcp.closed"


# ------------------------------------------------------------ server edges


async def test_process_request_that_raises_answers_500(server_log: pytest.LogCaptureFixture) -> None:
    def broken(ws: WebSocketConnection, request: object) -> None:
        raise KeyError("tenant")

    async with asyncio.timeout(10), wsdoctor.serve(echo, HOST, 0, process_request=broken) as server:
        with pytest.raises(wsdoctor.HandshakeError) as info:
            await wsdoctor.connect(f"ws://{HOST}:{server.port}/", open_timeout=5)
        await asyncio.sleep(0.05)
    assert info.value.status == 500 and info.value.ending.cause == "http.server_error"
    failed = [r for r in server_log.records if r.exc_info and r.name == "wsdoctor.server"]
    assert failed and failed[0].exc_info is not None and failed[0].exc_info[0] is KeyError
    assert "process_request" in failed[0].getMessage()
    endings = [r.ending for r in server_log.records if hasattr(r, "ending")]
    assert any(e.cause == "handler.error" and "KeyError" in e.detail for e in endings), endings


async def test_async_process_request_that_raises_answers_500() -> None:
    async def broken(ws: WebSocketConnection, request: object) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("database down")

    async with asyncio.timeout(10), wsdoctor.serve(echo, HOST, 0, process_request=broken) as server:
        with pytest.raises(wsdoctor.HandshakeError) as info:
            await wsdoctor.connect(f"ws://{HOST}:{server.port}/", open_timeout=5)
        async with wsdoctor.serve(echo, HOST, 0) as healthy, wsdoctor.connect(f"ws://{HOST}:{healthy.port}/") as ws:
            await ws.send("still serving")
            assert await ws.recv() == "still serving"
    assert info.value.status == 500


async def test_port_zero_gives_the_real_port(pki: Pki) -> None:
    server = wsdoctor.serve(echo, HOST, 0)
    assert server.port == 0  # not bound yet: the port asked for
    async with asyncio.timeout(10), server:
        assert server.port != 0 and server.port == server.sockets[0].getsockname()[1]
        async with wsdoctor.connect(f"ws://{HOST}:{server.port}/") as ws:
            await ws.send("p")
            assert await ws.recv() == "p"
    async with asyncio.timeout(10), wsdoctor.serve(echo, HOST, 0, ssl=pki.healthy([HOST])) as tls:
        assert tls.port != 0 and tls.urls == [f"wss://{HOST}:{tls.port}/"]


async def test_every_socket_is_listed_with_its_port() -> None:
    if not socket.has_ipv6:
        pytest.fail("IPv6 is required for this test")
    async with asyncio.timeout(10), wsdoctor.serve(echo, [HOST, "::1"], 0) as server:
        ports = {s.getsockname()[1] for s in server.sockets}
        assert len(server.sockets) == 2 and 0 not in ports and server.port in ports
