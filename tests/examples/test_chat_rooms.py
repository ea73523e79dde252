"""The Starlette chat example, on uvicorn with wsdoctor: one server, then two sharing rooms on Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import ModuleType

import pytest
import websockets

from _helpers import load_file
from redis_servers import RedisServer
from uvicorn_servers import uvicorn_running

EXAMPLE = Path(__file__).parent.parent.parent / "examples" / "chat_rooms.py"


def load_example() -> ModuleType:
    return load_file(EXAMPLE, "chat_rooms_example")


async def test_rooms_on_one_server() -> None:
    app = load_example().create_app()
    async with asyncio.timeout(20), uvicorn_running(app) as server:
        ana = await websockets.connect(server.url("/rooms/blue?nick=ana"))
        bo = await websockets.connect(server.url("/rooms/blue?nick=bo"))
        cy = await websockets.connect(server.url("/rooms/red?nick=cy"))
        await asyncio.sleep(0.1)
        await ana.send("hola")
        assert await ana.recv() == "ana: hola"
        assert await bo.recv() == "ana: hola"
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(cy.recv(), 0.3)
        await bo.close()
        await asyncio.sleep(0.1)
        assert len(app.state.hub.members("blue")) == 1
        for ws in (ana, cy):
            await ws.close()


async def test_rooms_across_two_servers_on_redis(redis_server: RedisServer) -> None:
    example = load_example()
    app_a, app_b = example.create_app(redis_server.url), example.create_app(redis_server.url)
    async with asyncio.timeout(30), uvicorn_running(app_a) as a, uvicorn_running(app_b) as b:
        ana = await websockets.connect(a.url("/rooms/blue?nick=ana"))
        bo = await websockets.connect(b.url("/rooms/blue?nick=bo"))
        await asyncio.sleep(0.1)
        await app_a.state.hub.sync()
        await app_b.state.hub.sync()
        await bo.send("hello from server b")
        assert await ana.recv() == "bo: hello from server b"
        assert await bo.recv() == "bo: hello from server b"
        for ws in (ana, bo):
            await ws.close()
        await app_a.state.hub.close()
        await app_b.state.hub.close()


def test_the_uvicorn_command_line_from_the_readme() -> None:
    """``uvicorn examples.chat_rooms:app --ws wsdoctor.asgi:WebSocketProtocol``, then Ctrl+C."""
    import os
    import signal
    import subprocess
    import sys

    root = EXAMPLE.parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])}
    env.pop("WSDOCTOR_REDIS", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "examples.chat_rooms:app",
            "--ws",
            "wsdoctor.asgi:WebSocketProtocol",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        ],
        cwd=root,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        port = None
        for _ in range(20):
            line = proc.stderr.readline()
            if "Uvicorn running on http://127.0.0.1:" in line:
                port = int(line.split("127.0.0.1:", 1)[1].split()[0])
                break
        assert port is not None, "uvicorn did not start"

        async def talk() -> int | None:
            async with asyncio.timeout(20):
                ws = await websockets.connect(f"ws://127.0.0.1:{port}/rooms/cli?nick=eve")
                await ws.send("from the command line")
                assert await ws.recv() == "eve: from the command line"
                proc.send_signal(signal.SIGINT)
                try:
                    await ws.recv()
                except websockets.ConnectionClosed as exc:
                    return exc.rcvd.code if exc.rcvd else None
                return None

        code = asyncio.run(talk())
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 1012
    assert proc.returncode == 0
    assert '"WebSocket /rooms/cli?nick=eve" ended: 1012' in err and "Cause: server.shutdown." in err
