"""Idle connections: memory per connection and CPU per opening handshake, server by server.

Each server runs in its own process (bench/servers.py). This process opens N WebSocket
connections to it with raw sockets (a fixed, well-formed upgrade request, a few
hundred in flight at a time), checks every answer is a 101, and keeps them all open
without sending anything. Two figures per server:

- KiB per idle connection: the growth of the server's resident memory (VmRSS) from
  after a warm-up batch to after the N connections, divided by N;
- µs of server CPU per opening handshake: user + system time spent while the N
  connections were opened, divided by N (accept, TLS-less upgrade, 101, handler start).

    python bench/idle.py [--connections 5000] [--uvloop] [--only wsdoctor,picows] [--repeat 2]

RLIMIT_NOFILE is raised to its hard limit here; the servers inherit it. Prints a
Markdown table with the ratios to picows measured in the same run. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import cpu_seconds, free_port

HERE = Path(__file__).resolve().parent
WARMUP = 200
IN_FLIGHT = 200


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def raise_nofile() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Upgrade(asyncio.Protocol):
    """Sends one upgrade request and resolves once the response head has arrived."""

    def __init__(self, request: bytes, done: asyncio.Future[bytes]) -> None:
        self.request = request
        self.done = done
        self.head = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        self.head += data
        if b"\r\n\r\n" in self.head and not self.done.done():
            self.done.set_result(self.head)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"closed before the 101: {exc}"))


def request_bytes(port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def open_many(port: int, count: int, keep: list[asyncio.Transport]) -> None:
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(IN_FLIGHT)

    async def one() -> None:
        async with sem:
            done: asyncio.Future[bytes] = loop.create_future()
            transport, _ = await loop.create_connection(lambda: Upgrade(request_bytes(port), done), "127.0.0.1", port)
            head = await asyncio.wait_for(done, 30)
            if not head.startswith(b"HTTP/1.1 101"):
                raise RuntimeError(f"not upgraded: {head[:80]!r}")
            keep.append(transport)

    await asyncio.gather(*(one() for _ in range(count)))


async def measure(pid: int, port: int, connections: int) -> dict[str, float]:
    keep: list[asyncio.Transport] = []
    try:
        # The warm-up batch makes the server import and allocate what it needs once.
        await open_many(port, WARMUP, keep)
        await asyncio.sleep(0.5)
        rss0 = rss_kib(pid)
        cpu0 = cpu_seconds(pid)
        t0 = time.perf_counter()
        await open_many(port, connections, keep)
        elapsed = time.perf_counter() - t0
        await asyncio.sleep(1.0)  # let the servers' handler tasks reach their first await
        cpu = cpu_seconds(pid) - cpu0
        rss1 = rss_kib(pid)
        return {
            "kib_per_conn": (rss1 - rss0) / connections,
            "us_per_handshake": cpu / connections * 1e6,
            "handshakes_per_s": connections / elapsed,
            "rss_mib": rss1 / 1024,
        }
    finally:
        for transport in keep:
            transport.abort()
        await asyncio.sleep(0.2)


def run(
    name: str, connections: int, uvloop: bool, profile: str | None = None, env: dict[str, str] | None = None
) -> dict[str, Any]:
    port = free_port()
    cmd = [sys.executable, str(HERE / "servers.py"), name, str(port)] + (["--uvloop"] if uvloop else [])
    if profile:
        cmd += ["--profile", profile]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{name} server did not start")
        if uvloop:
            import uvloop as _uvloop

            result = _uvloop.run(measure(proc.pid, port, connections))
        else:
            result = asyncio.run(measure(proc.pid, port, connections))
        gc.collect()
        return {"server": name, **result}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--only", default="picows,wsdoctor,websockets,aiohttp")
    parser.add_argument("--repeat", type=int, default=2, help="interleaved rounds; the median of each is kept")
    parser.add_argument("--profile", metavar="FILE", help="run the (single) server under cProfile, stats to FILE")
    args = parser.parse_args()
    limit = raise_nofile()
    if limit < 2 * (args.connections + WARMUP) + 100:
        sys.exit(f"RLIMIT_NOFILE hard limit {limit} is too low for {args.connections} connections")
    names = args.only.split(",")
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for _ in range(args.repeat):
        for name in names:
            rounds[name].append(run(name, args.connections, args.uvloop, args.profile))

    def median(name: str, key: str) -> float:
        values = sorted(r[key] for r in rounds[name])
        mid = len(values) // 2
        return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2

    print(
        f"\n{time.strftime('%Y-%m-%d')}, {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores, loop: {'uvloop' if args.uvloop else 'asyncio'}, "
        f"{args.connections} idle connections, median of {args.repeat} interleaved rounds\n"
    )
    print("| server | KiB per idle connection | × picows | µs CPU per handshake | × picows | handshakes/s |")
    print("|---|---:|---:|---:|---:|---:|")
    ref = "picows" if "picows" in names else None
    for name in names:
        kib = median(name, "kib_per_conn")
        us = median(name, "us_per_handshake")
        kib_ratio = f"{kib / median(ref, 'kib_per_conn'):.2f}" if ref else "-"
        us_ratio = f"{us / median(ref, 'us_per_handshake'):.2f}" if ref else "-"
        print(f"| {name} | {kib:.2f} | {kib_ratio} | {us:.0f} | {us_ratio} | {median(name, 'handshakes_per_s'):,.0f} |")


if __name__ == "__main__":
    main()
