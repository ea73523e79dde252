"""Passwords in URLs and credential headers never reach logs, endings, exceptions or output."""

from __future__ import annotations

import asyncio
import base64
import logging
import socket

import pytest

import wsdoctor
from _helpers import run_wsdoctor
from wsdoctor import WebSocketConnection
from wsdoctor.protocol._redact import redact_header, redact_headers, redact_text, redact_url
from wsdoctor.protocol._uri import parse_uri

from ._peers import upgrade_request

SECRET = "s3cr3t-Pa55"
BASIC = base64.b64encode(f"alice:{SECRET}".encode()).decode()
COOKIE = "session=c00kie-T0ken"


def leaked(text: str) -> bool:
    return SECRET in text or BASIC in text or "c00kie-T0ken" in text


# ------------------------------------------------------------------ the rule


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"ws://alice:{SECRET}@example.com/", "ws://alice:***@example.com/"),
        (f"wss://alice:{SECRET}@ex@mple.com:8443/p?q=1", "wss://alice:***@mple.com:8443/p?q=1"),
        (f"ws://:{SECRET}@[::1]:9/", "ws://:***@[::1]:9/"),
        ("ws://alice@example.com/", "ws://alice@example.com/"),
        ("ws://example.com/a@b", "ws://example.com/a@b"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_headers_keeps_the_scheme_and_other_headers() -> None:
    headers = [
        ("Authorization", f"Basic {BASIC}"),
        ("proxy-authorization", "Bearer abc.def"),
        ("Cookie", COOKIE),
        ("Set-Cookie", f"{COOKIE}; Path=/; HttpOnly"),
        ("X-Trace", "1234"),
    ]
    assert redact_headers(headers) == [
        ("Authorization", "Basic ***"),
        ("proxy-authorization", "Bearer ***"),
        ("Cookie", "***"),
        ("Set-Cookie", "***"),
        ("X-Trace", "1234"),
    ]
    assert redact_header("Authorization", SECRET) == "***"


def test_redact_text_masks_urls_and_rejected_header_values() -> None:
    text = f"cannot reach 'wss://alice:{SECRET}@h/': Illegal header value b'{SECRET}\\x00'"
    shown = redact_text(text)
    assert not leaked(shown)
    assert "wss://alice:***@h/" in shown and "Illegal header value" in shown


# ------------------------------------------------------ the library's errors


def test_invalid_uri_error_and_parsed_uri_repr() -> None:
    with pytest.raises(wsdoctor.WebSocketError) as info:
        parse_uri(f"ws://alice:{SECRET}@example.com/#fragment")
    assert not leaked(str(info.value)) and not leaked(repr(info.value))
    assert "alice:***@example.com" in str(info.value)
    uri = parse_uri(f"ws://alice:{SECRET}@example.com/")
    assert uri.user_info == ("alice", SECRET)  # the application still has it
    assert not leaked(repr(uri)) and not leaked(str(uri))


async def test_failed_dial_error_and_ending() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused
        with pytest.raises(wsdoctor.DialError) as info:
            await wsdoctor.connect(f"ws://alice:{SECRET}@127.0.0.1:{port}/", open_timeout=5)
    exc = info.value
    assert exc.ending.cause == "tcp.refused"
    for text in (str(exc), repr(exc), str(exc.ending), repr(exc.ending), str(exc.ending.to_dict())):
        assert not leaked(text), text


def test_endings_mask_whatever_detail_they_are_given() -> None:
    ending = wsdoctor.Ending(code=1006, cause="tcp.reset", detail=f"lost wss://alice:{SECRET}@h/")
    assert not leaked(ending.detail) and not leaked(repr(ending))


async def test_rejected_upgrade_masks_set_cookie_and_server_logs_no_credentials(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    def deny(ws: WebSocketConnection, request: object) -> tuple[int, list[tuple[str, str]], str]:
        return 401, [("Set-Cookie", f"{COOKIE}; Path=/"), ("WWW-Authenticate", "Basic")], "who are you?\n"

    async def never(ws: WebSocketConnection) -> None:
        raise AssertionError("the handler must not run")

    async with asyncio.timeout(10), wsdoctor.serve(never, "127.0.0.1", 0, process_request=deny) as server:
        with pytest.raises(wsdoctor.HandshakeError) as info:
            await wsdoctor.connect(
                f"ws://alice:{SECRET}@127.0.0.1:{server.port_number}/",
                extra_headers=[("Cookie", COOKIE)],
            )
    exc = info.value
    assert exc.status == 401
    assert ("set-cookie", "***") in exc.headers and ("www-authenticate", "Basic") in exc.headers
    for text in (str(exc), repr(exc), str(exc.ending.to_dict()), caplog.text):
        assert not leaked(text), text


async def test_server_log_withholds_an_illegal_credential_value(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def never(ws: WebSocketConnection) -> None:
        raise AssertionError("the handler must not run")

    async with asyncio.timeout(10), wsdoctor.serve(never, "127.0.0.1", 0) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port_number)
        writer.write(upgrade_request(server.port_number, extra=f"Cookie: {SECRET}\x00\r\n"))
        head = await reader.read(4096)
        writer.close()
        await writer.wait_closed()
        while server.connections:
            await asyncio.sleep(0.01)
    assert head.startswith(b"HTTP/1.1 400")
    details = [r.ending.detail for r in caplog.records if hasattr(r, "ending")]  # type: ignore[attr-defined]
    assert len(details) == 1 and "illegal header line: Cookie: ***" in details[0]
    assert not leaked(caplog.text) and not leaked(details[0]) and not leaked(head.decode("latin-1"))


async def test_unsendable_credential_header_error_withholds_the_value() -> None:
    async with wsdoctor.serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0) as server:  # type: ignore[arg-type,return-value]
        with pytest.raises(ValueError) as info:
            await wsdoctor.connect(
                f"ws://127.0.0.1:{server.port_number}/", extra_headers=[("Authorization", f"Bearer {SECRET}\x00")]
            )
    assert "control character" in str(info.value) and not leaked(str(info.value))


# ------------------------------------------------------------- wsdoctor check


async def run_check(*args: str) -> tuple[int, str]:
    code, out, _ = await run_wsdoctor("check", *args, merge_stderr=True)
    return code, out


@pytest.mark.parametrize("as_json", [False, True])
async def test_check_output_has_no_credentials(as_json: bool) -> None:
    async def echo(ws: WebSocketConnection) -> None:
        async for message in ws:
            await ws.send(message)

    def cookie_then_deny(ws: WebSocketConnection, request: object) -> tuple[int, list[tuple[str, str]], str]:
        return 403, [("Set-Cookie", COOKIE)], "no\n"

    flags = ["--json"] if as_json else []
    async with wsdoctor.serve(echo, "127.0.0.1", 0) as healthy:
        code, out = await run_check(f"ws://alice:{SECRET}@127.0.0.1:{healthy.port_number}/", *flags)
    assert code == 0, out
    assert not leaked(out), out
    if as_json:
        assert '"url": "ws://alice:***@127.0.0.1:' in out
    async with wsdoctor.serve(echo, "127.0.0.1", 0, process_request=cookie_then_deny) as denying:
        code, out = await run_check(
            f"ws://alice:{SECRET}@127.0.0.1:{denying.port_number}/", "--header", f"Cookie: {COOKIE}", *flags
        )
    assert code == 6, out
    assert not leaked(out), out
    code, out = await run_check(f"ws://alice:{SECRET}@127.0.0.1:1/#x", *flags)
    assert code == 2 and not leaked(out), out
