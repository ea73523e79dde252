"""uvicorn in-process on a loopback port, with any ``--ws`` implementation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

WSDOCTOR = "wsdoctor.asgi:WebSocketProtocol"
IMPLEMENTATIONS = [WSDOCTOR, "websockets", "wsproto"]


class Running:
    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None]) -> None:
        self.server = server
        self.task = task
        self.port = int(server.servers[0].sockets[0].getsockname()[1])

    def url(self, path: str = "/") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(asyncio.shield(self.task), 15)


@contextlib.asynccontextmanager
async def uvicorn_running(app: Any, ws: str = WSDOCTOR, **options: Any) -> AsyncIterator[Running]:
    """Serve ``app`` on 127.0.0.1, a free port, until the block ends (bounded, never hangs)."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, ws=ws, lifespan="off", log_config=None, log_level="info", **options
    )
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]  # pytest owns the signals
    task = asyncio.get_running_loop().create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        running = Running(server, task)
        yield running
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(task, 15)
        except TimeoutError:
            task.cancel()
