"""Interoperability with node's ``ws`` library, in both directions.

The peer script (``node/peer.js``) is driven through JSON lines on stdin/stdout;
``ws`` is installed from npm by the test set-up (``scripts/test``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import wsdoctor
from _helpers import ending_catcher
from wsdoctor import WebSocketConnection

NODE_DIR = Path(__file__).parent / "node"
PEER = NODE_DIR / "peer.js"


@pytest.fixture(autouse=True, scope="module")
def _node_ws_installed() -> None:
    if shutil.which("node") is None or not (NODE_DIR / "node_modules" / "ws").is_dir():
        pytest.fail("node and its ws package are needed: run scripts/test, which installs them")


class NodePeer:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def event(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 20)
        if not line:
            raise AssertionError("the node peer exited")
        result: dict[str, Any] = json.loads(line)
        return result

    def command(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd).encode() + b"\n")

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()


async def start_node(*args: str) -> NodePeer:
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(PEER),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=64 * 1024 * 1024,
    )
    return NodePeer(proc)


@pytest.fixture(params=[True, False], ids=["deflate", "no-deflate"])
async def node_server(request: pytest.FixtureRequest) -> AsyncIterator[tuple[int, bool]]:
    peer = await start_node("server", *([] if request.param else ["--no-deflate"]))
    try:
        port = (await peer.event())["port"]
        yield port, request.param
    finally:
        await peer.stop()


async def test_our_client_with_node_server(node_server: tuple[int, bool]) -> None:
    port, deflate = node_server
    big = os.urandom(2 * 1024 * 1024)
    async with asyncio.timeout(20), wsdoctor.connect(f"ws://127.0.0.1:{port}/", max_size=None) as ws:
        assert ws.extensions == (["permessage-deflate"] if deflate else [])
        for message in ["hi", "ünïcödé", b"\x00\x01", "y" * 200_000, big]:
            await ws.send(message)
            assert await ws.recv() == message
        await ws.send_fragments([b"ab", b"cd"])
        assert await ws.recv() == b"abcd"
        await ws.send("close:4003:node says bye")
        with pytest.raises(wsdoctor.ConnectionClosedError) as info:
            await ws.recv()
    assert (info.value.code, info.value.reason) == (4003, "node says bye")
    assert info.value.ending.clean


async def our_echo(ws: WebSocketConnection) -> None:
    async for message in ws:
        if message == "close-please":
            await ws.close(4004, "our server says bye")
            return
        await ws.send(message)


@pytest.mark.parametrize("deflate", [True, False], ids=["deflate", "no-deflate"])
async def test_node_client_with_our_server(deflate: bool) -> None:
    async with asyncio.timeout(30), wsdoctor.serve(our_echo, "127.0.0.1", 0, max_size=None) as server:
        peer = await start_node(
            "client", f"ws://127.0.0.1:{server.port_number}/", *([] if deflate else ["--no-deflate"])
        )
        try:
            opened = await peer.event()
            assert opened["open"] is True
            assert ("permessage-deflate" in opened["extensions"]) is deflate
            big = os.urandom(2 * 1024 * 1024)
            peer.command(send="héllo")
            assert await peer.event() == {"text": "héllo"}
            peer.command(send_b64=base64.b64encode(big).decode())
            assert base64.b64decode((await peer.event())["binary_b64"]) == big
            peer.command(send="close-please")
            assert await peer.event() == {"close": 4004, "reason": "our server says bye"}
        finally:
            await peer.stop()


async def test_node_client_close_code_reaches_our_handler() -> None:
    seen, handler = ending_catcher()

    async with asyncio.timeout(20), wsdoctor.serve(handler, "127.0.0.1", 0) as server:
        peer = await start_node("client", f"ws://127.0.0.1:{server.port_number}/")
        try:
            assert (await peer.event())["open"]
            peer.command(close=4005, reason="node client leaving")
            ending = await seen
            assert (ending.code, ending.reason, ending.clean) == (4005, "node client leaving", True)
        finally:
            await peer.stop()
