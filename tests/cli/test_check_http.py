"""``wsdoctor check`` on refused upgrades and wrong schemes: the step line and the JSON, run as a subprocess."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import wsdoctor
from _helpers import answering, echo, run_wsdoctor
from wsdoctor.diagnose.certs import Pki

HOST = "127.0.0.1"

ANSWERS = {
    "401": (
        b"HTTP/1.1 401 Unauthorized\r\n"
        b'WWW-Authenticate: Bearer realm="chat", error="invalid_token"\r\n'
        b"Content-Length: 13\r\n\r\nlog in first\n"
    ),
    "302": b"HTTP/1.1 302 Found\r\nLocation: wss://chat.example.test/socket\r\nContent-Length: 0\r\n\r\n",
    "502": (
        b"HTTP/1.1 502 Bad Gateway\r\nServer: nginx/1.25.3\r\nContent-Type: text/html\r\n"
        b"Content-Length: 22\r\n\r\n<h1>Bad Gateway</h1>\r\n"
    ),
    "400": b"HTTP/1.1 400 Bad Request\r\nContent-Length: 27\r\n\r\nunknown subprotocol 'chat'\n",
}


async def check(*args: str) -> tuple[int, str]:
    code, out, _ = await run_wsdoctor("check", *args)
    return code, out


def step_line(text: str, title: str = "HTTP upgrade:") -> str:
    """The step's line, unwrapped (a narrow terminal may fold it)."""
    flat = " ".join(text.split())
    start = flat.index(title)
    end = flat.find(" 10", start)  # the ending's close code follows the failing step
    return flat[start:end]


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        ("401", '401 Unauthorized; WWW-Authenticate: Bearer realm="chat"'),
        ("302", "302 Found; Location: wss://chat.example.test/socket"),
        ("502", "502 Bad Gateway; Server: nginx/1.25.3"),
        ("400", "400 Bad Request; body: \"unknown subprotocol 'chat'\""),
    ],
)
async def test_step_line_shows_status_and_values(status: str, shown: str) -> None:
    # A 302 is followed by default; --max-redirects 0 shows it as the answer.
    async with asyncio.timeout(60), answering(ANSWERS[status]) as url:
        code, out = await check(url, "--max-redirects", "0")
    assert code == 6
    line = step_line(out)
    assert line.startswith("HTTP upgrade: FAILED (") and line.endswith(f"ms) {shown}"), line


async def test_json_step_details_carry_status_headers_and_body() -> None:
    async with asyncio.timeout(60), answering(ANSWERS["401"]) as url:
        code, out = await check(url, "--json")
    assert code == 6
    data: dict[str, Any] = json.loads(out)
    http = data["steps"][-1]
    assert http["name"] == "http" and http["ok"] is False
    details = http["details"]
    assert (details["status"], details["reason"]) == (401, "Unauthorized")
    assert ["www-authenticate", 'Bearer realm="chat", error="invalid_token"'] in details["headers"]
    assert details["body"] == "log in first\n"
    assert details["shown"] == {"WWW-Authenticate": 'Bearer realm="chat"'}
    assert data["ending"]["cause"] == "http.unauthorized"
    assert data["ending"]["detail"].startswith("HTTP 401 Unauthorized")


async def test_json_body_excerpt_is_bounded() -> None:
    body = b"<html>" + b"a" * 5000
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    async with asyncio.timeout(60), answering(answer) as url:
        code, out = await check(url, "--json")
    assert code == 6
    data: dict[str, Any] = json.loads(out)
    details = data["steps"][-1]["details"]
    assert len(details["body"].encode()) <= 503 and details["body"].startswith("<html>aaa")
    assert data["ending"]["cause"] == "http.not_websocket"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


async def test_check_wss_to_a_plain_port() -> None:
    async with asyncio.timeout(60), wsdoctor.serve(echo, HOST, 0) as plain:
        code, out = await check(f"wss://{HOST}:{plain.port}/")
    assert code == 5
    assert "(Cause: tls.not_tls)" in out
    assert "TLS: FAILED" in out and "answers plain HTTP (HTTP/1.1 426 Upgrade Required)" in " ".join(out.split())
    assert "Use ws:// for this port, or put TLS in front" in " ".join(out.split())


async def test_check_ws_to_a_tls_port(pki: Pki) -> None:
    async with asyncio.timeout(60), wsdoctor.serve(echo, HOST, 0, ssl=pki.healthy([HOST])) as server:
        code, out = await check(f"ws://{HOST}:{server.port}/")
    assert code == 6
    assert "(Cause: http.tls_port)" in out
    assert "completes a TLS handshake" in step_line(out)
    assert "Use wss:// for this port" in " ".join(out.split())
