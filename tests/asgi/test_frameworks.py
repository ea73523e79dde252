"""Starlette and FastAPI apps under uvicorn with wsdoctor, against websockets, node's ws and Chromium."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import websockets
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket as StarletteWebSocket
from websockets.exceptions import ConnectionClosed, InvalidStatus

from uvicorn_servers import uvicorn_running

NODE_PEER = Path(__file__).parent.parent / "interop" / "node" / "peer.js"

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>wsdoctor asgi test</title></head><body><script>
const results = {};
const ws = new WebSocket("ws://" + location.host + "/ws");
ws.binaryType = "arraybuffer";
ws.onopen = () => { results.extensions = ws.extensions; ws.send("from chromium"); };
ws.onmessage = (e) => {
  if (typeof e.data === "string") { results.text = e.data; ws.send(new Uint8Array([7, 8, 9]).buffer); }
  else { results.binary = Array.from(new Uint8Array(e.data)); ws.send("close-me"); }
};
ws.onclose = (e) => {
  results.code = e.code; results.reason = e.reason; results.clean = e.wasClean;
  const r = new WebSocket("ws://" + location.host + "/report");
  r.onopen = () => { r.send(JSON.stringify(results)); r.close(1000); };
};
</script></body></html>
"""


def starlette_app(reports: asyncio.Queue[dict[str, Any]], endings: list[int]) -> Starlette:
    async def echo(ws: StarletteWebSocket) -> None:
        await ws.accept()
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    endings.append(message["code"])
                    return
                if message.get("text") == "close-me":
                    await ws.close(4002, "starlette says bye")
                    return
                if message.get("text") is not None:
                    await ws.send_text(message["text"])
                else:
                    await ws.send_bytes(message["bytes"])
        except WebSocketDisconnect as exc:
            endings.append(exc.code)

    async def report(ws: StarletteWebSocket) -> None:
        await ws.accept()
        await reports.put(json.loads(await ws.receive_text()))

    async def page(request: Any) -> HTMLResponse:
        return HTMLResponse(PAGE)

    return Starlette(routes=[Route("/", page), WebSocketRoute("/ws", echo), WebSocketRoute("/report", report)])


def fastapi_app(seen: list[tuple[str, str, int]]) -> FastAPI:
    app = FastAPI()

    @app.websocket("/rooms/{room}")
    async def room(ws: WebSocket, room: str, token: str = "") -> None:
        if token != "s3cret":
            await ws.close(code=4401, reason="bad token")
            return
        await ws.accept(subprotocol="v1.chat" if "v1.chat" in ws.scope["subprotocols"] else None)
        try:
            while True:
                data = await ws.receive_json()
                await ws.send_json({"room": room, "echo": data})
        except WebSocketDisconnect as exc:
            seen.append((room, exc.reason or "", exc.code))

    return app


async def test_starlette_echo_and_close() -> None:
    endings: list[int] = []
    async with asyncio.timeout(20), uvicorn_running(starlette_app(asyncio.Queue(), endings)) as server:
        async with websockets.connect(server.url("/ws")) as ws:
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(os.urandom(70_000))
            assert len(await ws.recv()) == 70_000
            await ws.send("close-me")
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
        assert info.value.rcvd is not None and (info.value.rcvd.code, info.value.rcvd.reason) == (
            4002,
            "starlette says bye",
        )
        async with websockets.connect(server.url("/ws")) as ws:
            await ws.close(4100, "client done")
        for _ in range(100):
            if endings:
                break
            await asyncio.sleep(0.02)
    assert endings == [4100]


async def test_fastapi_route_params_subprotocol_and_refusal() -> None:
    seen: list[tuple[str, str, int]] = []
    async with asyncio.timeout(20), uvicorn_running(fastapi_app(seen)) as server:
        with pytest.raises(InvalidStatus) as info:
            await websockets.connect(server.url("/rooms/blue"))
        assert info.value.response.status_code == 403
        async with websockets.connect(server.url("/rooms/blue?token=s3cret"), subprotocols=["v1.chat"]) as ws:
            assert ws.subprotocol == "v1.chat"
            await ws.send(json.dumps({"n": 1}))
            assert json.loads(await ws.recv()) == {"room": "blue", "echo": {"n": 1}}
            await ws.close(4000, "leaving blue")
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.02)
    assert seen == [("blue", "leaving blue", 4000)]


@pytest.mark.parametrize("deflate", [True, False], ids=["deflate", "no-deflate"])
async def test_node_ws_client_with_starlette_on_wsdoctor(deflate: bool) -> None:
    if shutil.which("node") is None or not (NODE_PEER.parent / "node_modules" / "ws").is_dir():
        pytest.fail("node and its ws package are needed: run scripts/test, which installs them")
    endings: list[int] = []
    async with asyncio.timeout(30), uvicorn_running(starlette_app(asyncio.Queue(), endings)) as server:
        proc = await asyncio.create_subprocess_exec(
            "node",
            str(NODE_PEER),
            "client",
            server.url("/ws"),
            *([] if deflate else ["--no-deflate"]),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=16 * 1024 * 1024,
        )
        assert proc.stdin is not None and proc.stdout is not None

        async def event() -> dict[str, Any]:
            assert proc.stdout is not None
            result: dict[str, Any] = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
            return result

        def command(**cmd: Any) -> None:
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(cmd).encode() + b"\n")

        try:
            opened = await event()
            assert opened["open"] is True and ("permessage-deflate" in opened["extensions"]) is deflate
            command(send="ñandú " * 1000)
            assert await event() == {"text": "ñandú " * 1000}
            command(send="close-me")
            assert await event() == {"close": 4002, "reason": "starlette says bye"}
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()


async def test_chromium_with_starlette_on_wsdoctor(chromium: list[str]) -> None:
    reports: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    async with asyncio.timeout(90), uvicorn_running(starlette_app(reports, [])) as server:
        proc = await asyncio.create_subprocess_exec(
            *chromium,
            "--remote-debugging-port=0",
            f"http://127.0.0.1:{server.port}/",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            result = await asyncio.wait_for(reports.get(), 60)
        finally:
            proc.kill()
            await proc.wait()
    assert "permessage-deflate" in result["extensions"]
    assert result["text"] == "from chromium"
    assert result["binary"] == [7, 8, 9]
    assert (result["code"], result["reason"], result["clean"]) == (4002, "starlette says bye", True)


async def test_the_readme_fastapi_snippet_rooms_on_the_hub() -> None:
    import wsdoctor

    app = FastAPI()
    hub = wsdoctor.Hub()

    @app.websocket("/rooms/{room}")
    async def room(ws: WebSocket, room: str) -> None:
        await ws.accept()
        hub.join(room, ws)
        try:
            while True:
                await hub.publish(room, await ws.receive_text())
        except WebSocketDisconnect:
            pass

    async with asyncio.timeout(20), uvicorn_running(app) as server:
        a = await websockets.connect(server.url("/rooms/blue"))
        b = await websockets.connect(server.url("/rooms/blue"))
        for _ in range(100):
            if len(hub.members("blue")) == 2:
                break
            await asyncio.sleep(0.02)
        await a.send("hi all")
        assert await a.recv() == "hi all" and await b.recv() == "hi all"
        await b.close()
        for _ in range(100):  # the hub forgets b by itself: it reaches the connection under FastAPI's WebSocket
            if len(hub.members("blue")) == 1:
                break
            await asyncio.sleep(0.02)
        assert len(hub.members("blue")) == 1
        await a.close()


async def test_hub_members_on_another_asgi_server_are_sent_to_through_the_framework() -> None:
    import wsdoctor

    hub = wsdoctor.Hub()
    left = asyncio.Event()

    async def room(ws: StarletteWebSocket) -> None:
        await ws.accept()
        hub.join("lobby", ws)
        try:
            while True:
                await hub.publish("lobby", await ws.receive_text())
        except WebSocketDisconnect:
            hub.leave("lobby", ws)
            left.set()

    app = Starlette(routes=[WebSocketRoute("/", room)])
    async with asyncio.timeout(20), uvicorn_running(app, ws="wsproto") as server:
        a = await websockets.connect(server.url("/"))
        b = await websockets.connect(server.url("/"))
        await asyncio.sleep(0.2)
        assert hub.members("lobby") == frozenset()  # no wsdoctor connection under wsproto
        assert hub.rooms() == ["lobby"]
        await a.send("through starlette")
        assert await a.recv() == "through starlette" and await b.recv() == "through starlette"
        await b.close()
        await asyncio.wait_for(left.wait(), 5)
        await a.send("only a now")
        assert await a.recv() == "only a now"
        await a.close()
