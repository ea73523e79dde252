"""How long a stuck peer keeps its connection: from the peer's last read to its ending.

Two peers that a server on the internet meets: one that completes the upgrade and
then stops reading while the server writes to it (a blocked client), and one that
stops answering altogether (a host that vanished without a FIN). For each, the time
from the peer's last read to the server's logged ending, with the keepalive and close
timers given (the library's defaults unless told otherwise).

    PYTHONPATH=src python3 bench/stuck_peer.py [--ping-interval 20 --ping-timeout 20 --close-timeout 10]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import os
import socket
import time

import wsdoctor


async def flood(ws: wsdoctor.WebSocketConnection) -> None:
    chunk = bytes(65536)
    while True:
        await ws.send(chunk)


async def idle(ws: wsdoctor.WebSocketConnection) -> None:
    await ws.wait_closed()


async def measure(handler: object, options: dict[str, float]) -> tuple[float, wsdoctor.Ending]:
    ended: asyncio.Future[tuple[float, wsdoctor.Ending]] = asyncio.get_running_loop().create_future()

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            ending = getattr(record, "ending", None)
            if ending is not None and not ended.done():
                ended.set_result((time.monotonic(), ending))

    logger = logging.getLogger("wsdoctor.bench.stuck")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    catch = Catch()
    logger.addHandler(catch)
    loop = asyncio.get_running_loop()
    try:
        async with wsdoctor.serve(handler, "127.0.0.1", 0, logger=logger, compression=None, **options) as server:  # type: ignore[arg-type]
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            with sock:
                await loop.sock_connect(sock, ("127.0.0.1", server.port_number))
                key = base64.b64encode(os.urandom(16)).decode()
                await loop.sock_sendall(
                    sock,
                    (
                        f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                    ).encode(),
                )
                head = b""
                while b"\r\n\r\n" not in head:
                    head += await loop.sock_recv(sock, 1)
                last_read = time.monotonic()  # the peer never reads again
                at, ending = await ended
    finally:
        logger.removeHandler(catch)
    return at - last_read, ending


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ping-interval", type=float, default=20.0)
    parser.add_argument("--ping-timeout", type=float, default=20.0)
    parser.add_argument("--close-timeout", type=float, default=10.0)
    args = parser.parse_args()
    options = {
        "ping_interval": args.ping_interval,
        "ping_timeout": args.ping_timeout,
        "close_timeout": args.close_timeout,
    }
    bound = args.ping_interval + args.ping_timeout
    print(
        f"ping_interval {args.ping_interval:g} s, ping_timeout {args.ping_timeout:g} s, "
        f"close_timeout {args.close_timeout:g} s"
    )
    print(f"bound: {bound:g} s (+ {args.close_timeout:g} s at most)")
    for name, handler in (("stopped reading while written to", flood), ("vanished (no reads, no writes)", idle)):
        elapsed, ending = await measure(handler, options)
        print(f"{name}: ended after {elapsed:.2f} s with {ending.code} {ending.cause}")


if __name__ == "__main__":
    asyncio.run(main())
