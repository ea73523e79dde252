"""What one idle wsdoctor server connection holds, line by line (tracemalloc).

A wsdoctor echo server runs in this process under tracemalloc; a child process opens
N connections with raw sockets and keeps them idle. The Python allocations made
while they were opened and still alive afterwards are grouped by the source line that
made them and divided by N: the list of what each idle connection costs. Memory that
the event loop's C code allocates without going through Python's allocator (libuv
handles, kernel socket buffers) is not in this list; bench/idle.py measures the whole
resident growth.

    python bench/footprint.py [--connections 1000] [--uvloop] [--top 25]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import subprocess
import sys
import tracemalloc
from typing import Any

CLIENT = r"""
import base64, os, socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head
    socks.append(s)
print("open", flush=True)
sys.stdin.readline()
"""


async def main(connections: int, top: int, ping_interval: float | None) -> None:
    import logging

    import wsdoctor

    logging.getLogger("wsdoctor").setLevel(logging.ERROR)

    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async with wsdoctor.serve(
        echo, "127.0.0.1", 0, compression=None, ping_interval=ping_interval, close_timeout=0.5
    ) as server:
        port = server.port_number

        async def batch(n: int) -> subprocess.Popen[str]:
            proc = subprocess.Popen(
                [sys.executable, "-c", CLIENT, str(port), str(n)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert proc.stdout is not None
            line = await asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline)
            assert line.strip() == "open", line
            await asyncio.sleep(0.5)
            return proc

        warm = await batch(50)  # imports, caches and the shared buffer are allocated here
        gc.collect()
        tracemalloc.start(1)
        before = tracemalloc.take_snapshot()
        held = await batch(connections)
        gc.collect()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        stats = after.compare_to(before, "lineno")
        total = sum(s.size_diff for s in stats)
        print(f"\n{connections} idle connections: {total / connections:,.0f} bytes of Python objects each\n")
        print("| bytes per connection | allocations | where |")
        print("|---:|---:|---|")
        for stat in stats[:top]:
            frame = stat.traceback[0]
            print(
                f"| {stat.size_diff / connections:,.0f} | {stat.count_diff / connections:.1f} "
                f"| {frame.filename.split('site-packages/')[-1].split('src/')[-1]}:{frame.lineno} |"
            )
        for proc in (warm, held):
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--keepalive", action="store_true", help="keep the default 20 s ping interval")
    args = parser.parse_args()
    coro = main(args.connections, args.top, 20.0 if args.keepalive else None)
    if args.uvloop:
        import uvloop

        uvloop.run(coro)
    else:
        asyncio.run(coro)
