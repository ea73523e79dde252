"""Benchmark servers, one per library, each run in its own process.

Usage: python bench/servers.py NAME PORT [--uvloop] [--deflate] [--broadcast] [--profile FILE].

Every server echoes each message back unchanged, with keepalive off and compression off
unless --deflate, so that the benchmark measures framing, parsing and the event-loop
integration rather than zlib or timers. With --broadcast a message from any client is
sent to every connected client instead (the broadcast row).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

MAX = 1 << 25
DEFLATE = "--deflate" in sys.argv
BROADCAST = "--broadcast" in sys.argv


async def serve_wsdoctor(handler: Any, port: int) -> None:
    """wsdoctor's server with the benchmark's settings, whichever API the handler uses."""
    import wsdoctor

    async with wsdoctor.serve(
        handler,
        "127.0.0.1",
        port,
        compression="deflate" if DEFLATE else None,
        ping_interval=None,
        max_size=MAX,
    ) as server:
        print("ready", flush=True)
        await server.serve_forever()


async def run_wsdoctor(port: int) -> None:
    import wsdoctor

    conns: set[Any] = set()
    fan_out_at_once = getattr(wsdoctor, "broadcast", None)

    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async def fan_out(ws: Any) -> None:
        conns.add(ws)
        try:
            async for message in ws:
                if fan_out_at_once is not None:
                    fan_out_at_once(conns, message)  # wsdoctor.broadcast: one frame, written to each
                else:  # an older tree (bench/suite.py --base) without wsdoctor.broadcast
                    for peer in list(conns):
                        await peer.send(message)
        finally:
            conns.discard(ws)

    await serve_wsdoctor(fan_out if BROADCAST else echo, port)


async def run_wsdoctor_listener(port: int) -> None:
    """wsdoctor's callback-style listener API (the hot path without a task switch per message)."""
    import wsdoctor

    conns: set[Any] = set()

    async def echo(ws: Any) -> None:
        ws.listen(lambda message: ws.send_now(message))
        await ws.wait_closed()

    async def fan_out(ws: Any) -> None:
        conns.add(ws)

        ws.listen(lambda message: wsdoctor.broadcast(conns, message))
        try:
            await ws.wait_closed()
        finally:
            conns.discard(ws)

    await serve_wsdoctor(fan_out if BROADCAST else echo, port)


async def run_websockets(port: int) -> None:
    from websockets.asyncio.server import broadcast, serve

    conns: set[Any] = set()

    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async def fan_out(ws: Any) -> None:
        conns.add(ws)
        try:
            async for message in ws:
                broadcast(conns, message)
        finally:
            conns.discard(ws)

    async with serve(
        fan_out if BROADCAST else echo,
        "127.0.0.1",
        port,
        compression="deflate" if DEFLATE else None,
        ping_interval=None,
        max_size=MAX,
    ) as server:
        print("ready", flush=True)
        await server.serve_forever()


async def run_aiohttp(port: int) -> None:
    from aiohttp import WSMsgType, web

    conns: set[Any] = set()

    async def handle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=DEFLATE, max_msg_size=MAX, autoping=True)
        await ws.prepare(request)
        conns.add(ws)
        try:
            async for msg in ws:
                targets = list(conns) if BROADCAST else [ws]
                for peer in targets:
                    if msg.type == WSMsgType.BINARY:
                        await peer.send_bytes(msg.data)
                    elif msg.type == WSMsgType.TEXT:
                        await peer.send_str(msg.data)
        finally:
            conns.discard(ws)
        return ws

    app = web.Application()
    app.router.add_get("/", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


async def run_picows(port: int) -> None:
    from picows import WSFrame, WSListener, WSTransport, ws_create_server

    transports: set[WSTransport] = set()

    class Echo(WSListener):  # type: ignore[misc]
        def on_ws_connected(self, transport: WSTransport) -> None:
            transports.add(transport)

        def on_ws_disconnected(self, transport: WSTransport) -> None:
            transports.discard(transport)

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if BROADCAST:
                payload = frame.get_payload_as_bytes()
                for peer in transports:
                    peer.send(frame.msg_type, payload)
            else:
                transport.send(frame.msg_type, frame.get_payload_as_bytes())

    server = await ws_create_server(lambda _request: Echo(), "127.0.0.1", port, max_frame_size=MAX)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


SERVERS = {
    "wsdoctor": run_wsdoctor,
    "wsdoctor-listener": run_wsdoctor_listener,
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
        import time

        # CPU time, not wall time: a write that wakes the client on a shared core would
        # otherwise be charged with the time the client ran.
        profiler = cProfile.Profile(time.process_time)

        def stop(*_: object) -> None:
            profiler.disable()
            profiler.dump_stats(out)
            os._exit(0)

        signal.signal(signal.SIGTERM, stop)
        profiler.runcall(main)
    else:
        main()
