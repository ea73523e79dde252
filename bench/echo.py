"""Echo benchmark: round trips per second and throughput, the same client against every server.

Each server runs in its own process (bench/servers.py); the client is picows, the
fastest Python client available, so that the figures reflect the server. For each
library and message size the client sends a message, waits for its echo, and
repeats for a fixed time. The server's CPU time (user + system, from /proc) is
divided by the number of messages it echoed.

    python bench/echo.py [--seconds 3] [--uvloop] [--only wsdoctor,websockets]

Prints a Markdown table; this is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import cpu_seconds, free_port
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

HERE = Path(__file__).resolve().parent
SIZES = [("64 B", 64), ("1 KiB", 1024), ("64 KiB", 65536), ("1 MiB", 1 << 20)]


class Client(WSListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.waiter: asyncio.Future[int] | None = None
        self.received = 0

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            return
        self.received += len(frame.get_payload_as_memoryview())
        if frame.fin and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(self.received)


async def measure(url: str, size: int, seconds: float) -> int:
    transport, client = await ws_connect(Client, url, max_frame_size=1 << 25)
    payload = os.urandom(size)
    loop = asyncio.get_running_loop()
    # Warm up, then count round trips until the time is up.
    count = 0
    deadline = loop.time() + seconds
    warmup = 20
    while True:
        client.received = 0
        client.waiter = loop.create_future()
        transport.send(WSMsgType.BINARY, payload)
        while await client.waiter < size:
            client.waiter = loop.create_future()
        if warmup:
            warmup -= 1
            if not warmup:
                deadline = loop.time() + seconds
            continue
        count += 1
        if loop.time() >= deadline:
            break
    transport.send_close(WSCloseCode.OK)
    transport.disconnect()
    return count


def run(name: str, seconds: float, uvloop: bool) -> list[dict[str, Any]]:
    port = free_port()
    cmd = [sys.executable, str(HERE / "servers.py"), name, str(port)] + (["--uvloop"] if uvloop else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{name} server did not start")
        rows = []
        for label, size in SIZES:
            cpu0 = cpu_seconds(proc.pid)
            t0 = time.perf_counter()
            count = asyncio.run(measure(f"ws://127.0.0.1:{port}/", size, seconds))
            elapsed = time.perf_counter() - t0
            cpu = cpu_seconds(proc.pid) - cpu0
            rows.append(
                {
                    "server": name,
                    "size": label,
                    "rtt_per_s": count / seconds,
                    "mib_per_s": count * size * 2 / seconds / (1 << 20),
                    "cpu_us_per_msg": cpu / count * 1e6,
                    "elapsed": elapsed,
                }
            )
        return rows
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--only", default="wsdoctor,websockets,aiohttp,picows")
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds, servers interleaved; the best round of each row is kept"
    )
    args = parser.parse_args()
    names = args.only.split(",")
    best: dict[tuple[str, str], dict[str, Any]] = {}
    # A shared machine is noisy: interleave the servers round by round and keep each
    # row's best round, so that a burst of outside load hurts every server alike.
    for _ in range(args.repeat):
        for name in names:
            for row in run(name, args.seconds, args.uvloop):
                key = (name, row["size"])
                if key not in best or row["rtt_per_s"] > best[key]["rtt_per_s"]:
                    best[key] = row
    rows = list(best.values())
    print(
        f"\n{time.strftime('%Y-%m-%d')}, {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores, loop: {'uvloop' if args.uvloop else 'asyncio'}, "
        f"{args.seconds:g} s per row, best of {args.repeat} interleaved rounds\n"
    )
    print("| size | server | round trips/s | echo MiB/s | server CPU µs/msg |")
    print("|---|---|---:|---:|---:|")
    for label, _ in SIZES:
        for row in rows:
            if row["size"] == label:
                print(
                    f"| {label} | {row['server']} | {row['rtt_per_s']:,.0f} | {row['mib_per_s']:,.1f} "
                    f"| {row['cpu_us_per_msg']:,.1f} |"
                )


if __name__ == "__main__":
    main()
