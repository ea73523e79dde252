"""Echo servers for the benchmark, one per library, each run in its own process.

Usage: python bench/servers.py NAME PORT [--uvloop]. Every server echoes each message
back unchanged, with compression and keepalive off so that the benchmark measures
framing, parsing and the event-loop integration rather than zlib or timers.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

MAX = 1 << 25


async def run_wsdoctor(port: int) -> None:
    import wsdoctor

    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async with wsdoctor.serve(echo, "127.0.0.1", port, compression=None, ping_interval=None, max_size=MAX) as server:
        print("ready", flush=True)
        await server.serve_forever()


async def run_websockets(port: int) -> None:
    from websockets.asyncio.server import serve

    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async with serve(echo, "127.0.0.1", port, compression=None, ping_interval=None, max_size=MAX) as server:
        print("ready", flush=True)
        await server.serve_forever()


async def run_aiohttp(port: int) -> None:
    from aiohttp import WSMsgType, web

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False, max_msg_size=MAX, autoping=True)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
            elif msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


async def run_picows(port: int) -> None:
    from picows import WSFrame, WSListener, WSTransport, ws_create_server

    class Echo(WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            transport.send(frame.msg_type, frame.get_payload_as_bytes())

    server = await ws_create_server(lambda _request: Echo(), "127.0.0.1", port, max_frame_size=MAX)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


SERVERS = {
    "wsdoctor": run_wsdoctor,
    "websockets": run_websockets,
    "aiohttp": run_aiohttp,
    "picows": run_picows,
}


def main() -> None:
    name, port = sys.argv[1], int(sys.argv[2])
    if "--uvloop" in sys.argv:
        import uvloop

        uvloop.run(SERVERS[name](port))
    else:
        asyncio.run(SERVERS[name](port))


if __name__ == "__main__":
    if "--profile" in sys.argv:
        # --profile FILE: run under cProfile until SIGTERM, then write the stats to FILE and
        # exit at once (raising in whatever callback is running would confuse the loop).
        import cProfile
        import os
        import signal

        out = sys.argv[sys.argv.index("--profile") + 1]
        profiler = cProfile.Profile()

        def stop(*_: object) -> None:
            profiler.disable()
            profiler.dump_stats(out)
            os._exit(0)

        signal.signal(signal.SIGTERM, stop)
        profiler.runcall(main)
    else:
        main()
