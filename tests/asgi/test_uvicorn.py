"""uvicorn with ``--ws wsdoctor.asgi:WebSocketProtocol``, compared with uvicorn's own implementations.

Every scenario runs the same plain ASGI app under wsdoctor, uvicorn's ``websockets``
and its ``wsproto`` implementation, with a real ``websockets`` client, and checks
that what the client and the app see is the same.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from uvicorn_servers import IMPLEMENTATIONS, WSDOCTOR, uvicorn_running

Scope = dict[str, Any]


class App:
    """A plain ASGI app whose behaviour depends on the path; it records the disconnects it sees."""

    def __init__(self) -> None:
        self.disconnects: list[tuple[int, str]] = []
        self.disconnected = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        assert (await receive())["type"] == "websocket.connect"
        path = scope["path"]
        if path == "/reject":
            await send({"type": "websocket.close"})
            return
        if path == "/deny":
            await send({"type": "websocket.http.response.start", "status": 418, "headers": [(b"x-why", b"teapot")]})
            await send({"type": "websocket.http.response.body", "body": b"short ", "more_body": True})
            await send({"type": "websocket.http.response.body", "body": b"and stout"})
            return
        subprotocol = "chat" if "chat" in scope["subprotocols"] else None
        await send({"type": "websocket.accept", "subprotocol": subprotocol, "headers": [(b"x-app", b"yes")]})
        if path.endswith("/scope"):
            picked = {k: scope[k] for k in ("path", "root_path", "query_string", "subprotocols", "scheme")}
            picked["raw_path"] = scope["raw_path"].decode()
            picked["query_string"] = picked["query_string"].decode()
            picked["client_is_loopback"] = scope["client"][0] == "127.0.0.1"
            picked["server"] = list(scope["server"])
            picked["headers_are_bytes"] = all(isinstance(k, bytes) and k == k.lower() for k, _ in scope["headers"])
            await send({"type": "websocket.send", "text": json.dumps(picked)})
        while True:
            event = await receive()
            if event["type"] == "websocket.disconnect":
                self.disconnects.append((event["code"], event.get("reason") or ""))
                self.disconnected.set()
                return
            text = event.get("text")
            if text is not None and text.startswith("close:"):
                _, code, reason = text.split(":", 2)
                await send({"type": "websocket.close", "code": int(code), "reason": reason})
                continue
            if text is not None:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": event["bytes"]})


async def conversation(url: str) -> dict[str, Any]:
    """What a client sees of the app: subprotocol, headers, echoes and the app's close."""
    seen: dict[str, Any] = {}
    async with websockets.connect(url + "?room=1", subprotocols=["chat"], max_size=None) as ws:
        seen["subprotocol"] = ws.subprotocol
        seen["x-app"] = ws.response.headers.get("x-app")
        for message in ("hello", "ünïcödé " * 100, b"\x00\x01\xff", b"z" * 300_000):
            await ws.send(message)
            seen.setdefault("echoes", []).append(await ws.recv() == message)
        await ws.send("close:4001:done here")
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
        seen["close"] = (info.value.rcvd.code, info.value.rcvd.reason) if info.value.rcvd else None
    return seen


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
async def test_the_same_conversation_on_every_implementation(impl: str) -> None:
    app = App()
    async with asyncio.timeout(20), uvicorn_running(app, ws=impl) as server:
        seen = await conversation(server.url("/echo"))
        await asyncio.wait_for(app.disconnected.wait(), 5)
    assert seen == {
        "subprotocol": "chat",
        "x-app": "yes",
        "echoes": [True, True, True, True],
        "close": (4001, "done here"),
    }
    # After closing, the app's next receive() tells how the connection ended: the app's own
    # code with wsdoctor and wsproto; uvicorn's websockets implementation reports 1005.
    assert app.disconnects == [(1005, "") if impl == "websockets" else (4001, "done here")]


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
async def test_the_peers_close_code_and_reason_reach_the_app(impl: str) -> None:
    app = App()
    async with asyncio.timeout(20), uvicorn_running(app, ws=impl) as server:
        async with websockets.connect(server.url("/echo")) as ws:
            await ws.close(4321, "client leaving")
        await asyncio.wait_for(app.disconnected.wait(), 5)
    assert app.disconnects == [(4321, "client leaving")]


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
async def test_closing_before_accepting_answers_403(impl: str) -> None:
    async with asyncio.timeout(20), uvicorn_running(App(), ws=impl) as server:
        with pytest.raises(InvalidStatus) as info:
            await websockets.connect(server.url("/reject"))
    assert info.value.response.status_code == 403


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
async def test_the_denial_response_extension_sends_the_apps_http_response(impl: str) -> None:
    async with asyncio.timeout(20), uvicorn_running(App(), ws=impl) as server:
        with pytest.raises(InvalidStatus) as info:
            await websockets.connect(server.url("/deny"))
    response = info.value.response
    assert (response.status_code, response.headers["x-why"], response.body) == (418, "teapot", b"short and stout")


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
async def test_scope_root_path_and_addresses(impl: str) -> None:
    async with asyncio.timeout(20), uvicorn_running(App(), ws=impl, root_path="/api") as server:
        async with websockets.connect(server.url("/caf%C3%A9/scope?x=1"), subprotocols=["chat", "other"]) as ws:
            scope = json.loads(await ws.recv())
    assert scope == {
        "path": "/api/café/scope",
        "root_path": "/api",
        "raw_path": "/api/caf%C3%A9/scope",
        "query_string": "x=1",
        "subprotocols": ["chat", "other"],
        "scheme": "ws",
        "client_is_loopback": True,
        "server": ["127.0.0.1", server.port],
        "headers_are_bytes": True,
    }


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
async def test_shutdown_closes_open_connections_with_1012(impl: str) -> None:
    app = App()
    async with asyncio.timeout(20), uvicorn_running(app, ws=impl) as server:
        ws = await websockets.connect(server.url("/echo"))
        stopping = asyncio.ensure_future(server.stop())
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
        await stopping
    assert info.value.rcvd is not None and info.value.rcvd.code == 1012


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
async def test_ws_max_size_ends_a_too_big_message_with_1009(impl: str) -> None:
    async with asyncio.timeout(20), uvicorn_running(App(), ws=impl, ws_max_size=1000) as server:
        async with websockets.connect(server.url("/echo"), compression=None) as ws:
            await ws.send("small")
            assert await ws.recv() == "small"
            await ws.send("x" * 2000)
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009


@pytest.mark.parametrize("deflate", [True, False])
async def test_ws_per_message_deflate_decides_the_extension(deflate: bool) -> None:
    async with asyncio.timeout(20), uvicorn_running(App(), ws_per_message_deflate=deflate) as server:
        async with websockets.connect(server.url("/echo")) as ws:
            extensions = ws.response.headers.get("sec-websocket-extensions")
            await ws.send("y" * 5000)
            assert await ws.recv() == "y" * 5000
    assert (extensions is not None and extensions.startswith("permessage-deflate")) is deflate


async def test_keepalive_ends_a_silent_peer_with_1011() -> None:
    app = App()
    async with asyncio.timeout(20), uvicorn_running(app, ws_ping_interval=0.2, ws_ping_timeout=0.3) as server:
        # A client that never answers pings: websockets' asyncio client answers them in its
        # reading task, so pausing reading is enough.
        ws = await websockets.connect(server.url("/echo"), ping_interval=None)
        assert ws.transport is not None
        ws.transport.pause_reading()
        await asyncio.wait_for(app.disconnected.wait(), 10)
        ws.transport.abort()
    assert app.disconnects[0][0] == 1011


async def test_endings_are_logged_with_cause_and_fix(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    app = App()
    async with asyncio.timeout(20), uvicorn_running(app) as server:
        async with websockets.connect(server.url("/echo")) as ws:
            await ws.close(4000, "bye")
        await asyncio.wait_for(app.disconnected.wait(), 5)
        with pytest.raises(InvalidStatus):
            await websockets.connect(server.url("/deny"))
        await asyncio.sleep(0.1)
    endings = [r for r in caplog.records if hasattr(r, "ending")]
    causes = [(r.ending.code, r.ending.cause) for r in endings]  # type: ignore[attr-defined]
    assert (4000, "closed.by_peer") in causes
    assert (1006, "asgi.rejected") in causes
    message = next(r.getMessage() for r in endings if r.ending.code == 4000)  # type: ignore[attr-defined]
    assert "/echo" in message and "Cause: closed.by_peer." in message and "Fix:" in message


async def test_an_app_that_fails_after_accepting_ends_with_1011() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        raise ValueError("the app broke")

    async with asyncio.timeout(20), uvicorn_running(app) as server:
        async with websockets.connect(server.url("/")) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1011


async def test_an_app_that_never_answers_the_upgrade_gets_500() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()

    async with asyncio.timeout(20), uvicorn_running(app) as server:
        with pytest.raises(InvalidStatus) as info:
            await websockets.connect(server.url("/"))
    assert info.value.response.status_code == 500


async def test_out_of_order_messages_raise_in_the_app() -> None:
    errors: list[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        try:
            await send({"type": "websocket.send", "text": "too early"})
        except RuntimeError as exc:
            errors.append(str(exc))
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except RuntimeError as exc:
            errors.append(str(exc))

    async with asyncio.timeout(20), uvicorn_running(app) as server:
        async with websockets.connect(server.url("/")) as ws:
            with pytest.raises(ConnectionClosed):
                await ws.recv()
    assert len(errors) == 2 and "websocket.accept" in errors[0] and "after sending" in errors[1]


def test_the_class_is_what_uvicorn_imports() -> None:
    import uvicorn

    config = uvicorn.Config(lambda *a: None, ws=WSDOCTOR)
    config.load()
    from wsdoctor.asgi import WebSocketProtocol

    assert config.ws_protocol_class is WebSocketProtocol


async def scope_reporter(scope: Scope, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": json.dumps({"client": scope["client"], "scheme": scope["scheme"]})})
    await send({"type": "websocket.close", "code": 1000})


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
async def test_proxy_headers_reach_the_scope_as_uvicorn_passes_them(impl: str) -> None:
    options = {"proxy_headers": True, "forwarded_allow_ips": "127.0.0.1"}
    async with asyncio.timeout(20), uvicorn_running(scope_reporter, ws=impl, **options) as server:
        headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
        async with websockets.connect(server.url("/"), additional_headers=headers) as ws:
            seen = json.loads(await ws.recv())
    assert seen["client"][0] == "203.0.113.7" and seen["scheme"] == "wss"


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
async def test_tls_gives_the_wss_scheme(impl: str, tmp_path: Any) -> None:
    import ssl

    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(cert_file)
    cert.private_key_pem.write_to_path(key_file)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    options = {"ssl_certfile": str(cert_file), "ssl_keyfile": str(key_file)}
    async with asyncio.timeout(20), uvicorn_running(scope_reporter, ws=impl, **options) as server:
        async with websockets.connect(f"wss://127.0.0.1:{server.port}/", ssl=client_ctx) as ws:
            seen = json.loads(await ws.recv())
    assert seen["scheme"] == "wss" and seen["client"][0] == "127.0.0.1"


async def test_ws_max_queue_holds_messages_for_a_slow_app_without_losing_any() -> None:
    release = asyncio.Event()
    got: list[str] = []

    async def slow(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await release.wait()
        while True:
            event = await receive()
            if event["type"] == "websocket.disconnect":
                return
            got.append(event["text"])
            if len(got) == 50:
                await send({"type": "websocket.close", "code": 1000})

    async with asyncio.timeout(20), uvicorn_running(slow, ws_max_queue=2) as server:
        async with websockets.connect(server.url("/")) as ws:
            (protocol,) = list(server.server.server_state.connections)
            assert getattr(protocol, "max_queue", None) == 2
            for i in range(50):
                await ws.send(f"m{i}")
            await asyncio.sleep(0.2)
            assert getattr(protocol, "_paused_reading", False)  # reading stopped at the queue's limit
            release.set()
            with pytest.raises(ConnectionClosed):
                await ws.recv()
    assert got == [f"m{i}" for i in range(50)]


@pytest.mark.parametrize("http", ["h11", "httptools"])
async def test_both_of_uvicorns_http_parsers_hand_the_upgrade_over(http: str) -> None:
    app = App()
    async with asyncio.timeout(20), uvicorn_running(app, http=http) as server:
        seen = await conversation(server.url("/echo"))
        await asyncio.wait_for(app.disconnected.wait(), 5)
    assert seen["echoes"] == [True, True, True, True] and seen["close"] == (4001, "done here")
