"""Soak: many clients doing what real clients do, normal and hostile, for a while.

A wsdoctor echo server runs in this process; the clients run in a child process (so
that the figures below are the server's own): each of ``--clients`` loops over random
sessions until ``--duration`` is up. A session is one of:

- ``echo``: a few messages of random size (text or binary, compressed or not), a ping,
  a clean close;
- ``reset``: a message, then the TCP connection aborted without a Close frame;
- ``invalid``: a frame with a reserved opcode, which the server must fail with 1002;
- ``garbage``: bytes that are not HTTP instead of the upgrade request;
- ``slow``: a reader that lets messages pile up (``max_queue=1``) and reads them slowly;
- ``stalled``: a peer that sends and never reads, until the server gives up on it;
- ``abandon``: the upgrade, then the socket closed without a word.

A warm-up round (``--warmup`` seconds, the same mix) comes first. Then it prints the
server process's open descriptors, asyncio tasks and resident memory before and after
the soak; after the run every connection has ended, so the first two must be
back to where they started.

    PYTHONPATH=src python3 bench/soak.py --clients 1000 --duration 600

The test suite runs a short version of the same mix (tests/robust/test_soak.py).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import ctypes
import gc
import json
import logging
import os
import random
import socket
import struct
import subprocess
import sys
import time
from typing import Any

import wsdoctor
from wsdoctor.aio.server import raise_descriptor_limit

KINDS = ["echo", "echo", "echo", "reset", "invalid", "garbage", "slow", "stalled", "abandon"]

# The server's settings for a soak: short keepalive and close timers, so that stalled
# peers are found within a few seconds rather than the defaults' forty.
SERVER_OPTIONS: dict[str, Any] = {"ping_interval": 2.0, "ping_timeout": 5.0, "close_timeout": 2.0, "open_timeout": 10}


async def echo(ws: wsdoctor.WebSocketConnection) -> None:
    async for message in ws:
        await ws.send(message)


def snapshot(trim: bool = False) -> dict[str, int]:
    """Open descriptors, asyncio tasks and resident memory (KiB) of this process.

    With ``trim``, glibc is first asked to give free heap memory back to the system,
    so that RSS counts what is in use rather than what the allocator kept.
    """
    if trim:
        with contextlib.suppress(OSError, AttributeError):  # not glibc
            ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/statm") as statm:
        rss_pages = int(statm.read().split()[1])
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "tasks": len(asyncio.all_tasks()),
        "rss_kib": rss_pages * os.sysconf("SC_PAGE_SIZE") // 1024,
    }


# ------------------------------------------------------------------ sessions


def _frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + bytes(4) + payload  # a zero mask: the payload goes as it is


async def _raw(port: int, rcvbuf: int | None = None) -> socket.socket:
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return sock


async def _raw_upgrade(port: int, rcvbuf: int | None = None) -> socket.socket:
    loop = asyncio.get_running_loop()
    sock = await _raw(port, rcvbuf)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        await loop.sock_sendall(
            sock,
            (
                f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode(),
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await loop.sock_recv(sock, 1)
            if not chunk:
                raise ConnectionError("closed during the upgrade")
            head += chunk
    except BaseException:
        sock.close()
        raise
    return sock


async def _drain_until_closed(sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    while await loop.sock_recv(sock, 65536):
        pass


def _payload(rng: random.Random) -> str | bytes:
    size = rng.choice([0, 1, 125, 126, 1000, 65535, 65536, rng.randrange(0, 256 * 1024)])
    if rng.random() < 0.5:
        return "é" * (size // 2)
    return rng.randbytes(size)


async def session(kind: str, port: int, rng: random.Random) -> str:
    """One session of ``kind``; raises AssertionError when the server misbehaves.

    Returns how it went when that is worth counting apart (``kind`` otherwise): on an
    overloaded machine the server may give up on a client whose Pong came too late,
    which is the keepalive doing its job, not a failure.
    """
    url = f"ws://127.0.0.1:{port}/"
    loop = asyncio.get_running_loop()
    if kind == "echo":
        compression = rng.choice(["deflate", None])
        async with wsdoctor.connect(url, compression=compression, ping_interval=None) as ws:  # type: ignore[arg-type]
            for _ in range(rng.randrange(1, 6)):
                message = _payload(rng)
                await ws.send(message)
                assert await ws.recv() == message
            await ws.ping()
        assert ws.ending is not None
        if ws.ending.code == 1011 and ws.ending.initiator == "remote":
            return "echo:keepalive_1011"
        assert ws.ending.ok, ws.ending
    elif kind == "reset":
        ws = await wsdoctor.connect(url, ping_interval=None)
        await ws.send(_payload(rng))
        assert ws.transport is not None
        ws.transport.abort()
        await ws.wait_closed()
    elif kind == "slow":
        async with wsdoctor.connect(url, max_queue=1, compression=None, ping_interval=None) as ws:
            messages = [rng.randbytes(32 * 1024) for _ in range(20)]
            for message in messages:
                await ws.send(message)
            for message in messages:
                await asyncio.sleep(0.005)
                assert await ws.recv() == message
    elif kind == "invalid":
        sock = await _raw_upgrade(port)
        with sock:
            await loop.sock_sendall(sock, _frame(rng.choice([0x3, 0x4, 0xB]), b"nope"))
            await _drain_until_closed(sock)
    elif kind == "garbage":
        sock = await _raw(port)
        with sock:
            await loop.sock_sendall(sock, rng.randbytes(rng.randrange(1, 2000)) + b"\r\n\r\n")
            await _drain_until_closed(sock)
    elif kind == "stalled":
        sock = await _raw_upgrade(port, rcvbuf=4096)
        with sock:
            chunk = _frame(0x2, bytes(65536))
            try:
                for _ in range(64):  # the server echoes into a socket nobody reads
                    await asyncio.wait_for(loop.sock_sendall(sock, chunk), 0.5)
            except (TimeoutError, ConnectionError):
                pass
            await asyncio.sleep(SERVER_OPTIONS["ping_interval"] + SERVER_OPTIONS["ping_timeout"])
    elif kind == "abandon":
        sock = await _raw_upgrade(port)
        sock.close()
    else:
        raise ValueError(kind)
    return kind


async def drive(port: int, clients: int, *, duration: float | None, sessions: int | None, seed: int) -> dict[str, Any]:
    """``clients`` loops of random sessions, for ``duration`` seconds or ``sessions`` in all."""
    counts: collections.Counter[str] = collections.Counter()
    failures: list[str] = []
    deadline = None if duration is None else time.monotonic() + duration
    started = 0

    async def client(index: int) -> None:
        nonlocal started
        rng = random.Random(seed * 100_003 + index)
        while True:
            if deadline is not None and time.monotonic() >= deadline:
                return
            if sessions is not None:
                if started >= sessions:
                    return
                started += 1
            kind = rng.choice(KINDS)
            try:
                counts[await asyncio.wait_for(session(kind, port, rng), 30)] += 1
            except (wsdoctor.WebSocketError, OSError, TimeoutError) as exc:
                # A client of ours may lose a race with the server's own timers (a reset
                # crossing an echo); that is not a failure of the server.
                counts[f"{kind}:{type(exc).__name__}"] += 1
            except AssertionError as exc:
                failures.append(f"{kind}: {exc}")

    await asyncio.gather(*(client(i) for i in range(clients)))
    return {"sessions": sum(counts.values()) + len(failures), "counts": dict(counts), "failures": failures}


# -------------------------------------------------------------------- runner


async def _clients(port: int, clients: int, duration: float, seed: int) -> dict[str, Any]:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--client-mode",
        "--port",
        str(port),
        "--clients",
        str(clients),
        "--duration",
        str(duration),
        "--seed",
        str(seed),
        stdout=subprocess.PIPE,
    )
    out, _ = await child.communicate()
    report: dict[str, Any] = json.loads(out)
    return report


async def _quiet(server: wsdoctor.Server, tasks: int) -> dict[str, int]:
    """A snapshot once every connection has ended (or 10 s have passed)."""
    settle = time.monotonic() + 10
    while (server.connections or len(asyncio.all_tasks()) > tasks) and time.monotonic() < settle:
        await asyncio.sleep(0.1)
    gc.collect()
    return snapshot(trim=True)


async def serve_and_measure(args: argparse.Namespace) -> dict[str, Any]:
    # The soak is about leaks, not about the log: endings are counted by the clients.
    logging.getLogger("wsdoctor.server").disabled = True
    async with wsdoctor.serve(echo, "127.0.0.1", 0, **SERVER_OPTIONS) as server:
        gc.collect()
        start = snapshot(trim=True)
        # A warm-up round first: the allocator's pools and every lazy import reach their
        # working size, so "before" and "after" compare like with like.
        await _clients(server.port_number, args.clients, args.warmup, args.seed + 1)
        before = await _quiet(server, start["tasks"])
        peak = before
        soak = asyncio.ensure_future(_clients(server.port_number, args.clients, args.duration, args.seed))
        while not soak.done():
            await asyncio.wait([soak], timeout=1.0)
            now = snapshot()
            peak = {k: max(peak[k], now[k]) for k in now}
        report = soak.result()
        after = await _quiet(server, start["tasks"])
        open_after = len(server.connections)
    return {"start": start, "before": before, "peak": peak, "after": after, "open_after": open_after, **report}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of warm-up before 'before'")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--client-mode", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    raise_descriptor_limit()
    if args.client_mode:
        report = asyncio.run(drive(args.port, args.clients, duration=args.duration, sessions=None, seed=args.seed))
        print(json.dumps(report))
        return 0
    result = asyncio.run(serve_and_measure(args))
    print(
        f"{args.clients} clients, {args.duration:g} s after {args.warmup:g} s of warm-up, "
        f"{result['sessions']} sessions, seed {args.seed}"
    )
    print("| | descriptors | tasks | RSS (KiB) |")
    print("|---|---:|---:|---:|")
    for name in ("start", "before", "peak", "after"):
        row = result[name]
        print(f"| {name} | {row['fds']} | {row['tasks']} | {row['rss_kib']:,} |")
    rss = 100.0 * (result["after"]["rss_kib"] - result["before"]["rss_kib"]) / result["before"]["rss_kib"]
    print(f"RSS after vs before: {rss:+.1f}%; connections still open: {result['open_after']}")
    print("sessions by kind:", json.dumps(result["counts"], sort_keys=True))
    for failure in result["failures"][:20]:
        print("FAILURE:", failure)
    leaked = result["after"]["fds"] != result["before"]["fds"] or result["after"]["tasks"] != result["before"]["tasks"]
    return 1 if result["failures"] or leaked or result["open_after"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
