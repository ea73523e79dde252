"""The whole benchmark: every scenario, every server, one fixed client, ratios to picows.

Each server runs in its own process (bench/servers.py, on uvloop unless --asyncio); the
load comes from this process through picows' client (compiled, the fastest Python
client), so the figures reflect the servers. The measure is the server's CPU time
(user + system, /proc) per unit of work:

- echo 64 B, 1 KiB, 64 KiB, 1 MiB: one connection, one message in flight, µs per round trip
  (ms per MiB for 1 MiB);
- pipeline: 50 connections x 16 messages of 256 B in flight, µs per message;
- broadcast: 1,000 connections; one sends 128 B and the server sends it to all of them,
  µs per delivered message;
- deflate: 1 KiB of JSON echoed with permessage-deflate, through the websockets client
  (picows does not speak permessage-deflate, so picows has no figure on this row);
- idle and handshake: bench/idle.py (5,000 connections; KiB each, µs per handshake).

``--clients`` measures the other side: every client against one picows server, the
client's own CPU per echo round trip, each client in a process of its own, in paired slices.

The machine these figures come from is a shared 2-core VM: absolute numbers move from
minute to minute. The echo, pipeline, 1 MiB and broadcast rows are therefore measured in
paired slices (see "paired slices" below: every server running at once, one short slice
each per cycle, the server's CPU from /proc/PID/schedstat, the ratio to picows taken
cycle by cycle); deflate, idle and the handshake are interleaved round by round and the
median of the rounds is kept. Compare the ratios within one run, not numbers across runs.
For counts that no neighbour can blur, see bench/instructions.py.

    python bench/suite.py [--cycles 12] [--slice 0.5] [--seconds 2] [--repeat 3] [--only wsdoctor,picows]
                          [--rows echo64,pipeline]
    python bench/suite.py --clients
"""

from __future__ import annotations

import argparse
import asyncio
import json
import mmap
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import cpu_ns, cpu_seconds, free_port  # noqa: E402
from idle import raise_nofile  # noqa: E402
from idle import run as run_idle  # noqa: E402

SERVERS = ["picows", "wsdoctor", "wsdoctor-listener", "websockets", "aiohttp"]
ROWS = ["echo64", "echo1k", "echo64k", "pipeline", "mib", "broadcast", "deflate", "idle"]
LABELS = {
    "echo64": "echo 64 B, µs per round trip",
    "echo1k": "echo 1 KiB, µs per round trip",
    "echo64k": "echo 64 KiB, µs per round trip",
    "pipeline": "pipeline 50 × 16 × 256 B, µs per message",
    "mib": "1 MiB messages, ms per MiB",
    "broadcast": "broadcast 128 B to 1,000 conns, µs per delivery",
    "deflate": "permessage-deflate 1 KiB JSON, µs per round trip",
    "idle": "idle memory, KiB per connection",
    "handshake": "opening handshake, µs each (5,000 conns)",
}


class Echoes:
    """Counts messages and wakes a waiter once the count reaches a target."""

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.waiter: asyncio.Future[None] | None = None

    def on_message(self, message: object = None) -> None:
        self.count += 1
        if self.waiter is not None and self.count >= self.target and not self.waiter.done():
            self.waiter.set_result(None)

    async def until(self, target: int) -> None:
        self.target = target
        if self.count >= target:
            return
        self.waiter = asyncio.get_running_loop().create_future()
        await self.waiter


class Counter(WSListener, Echoes):  # type: ignore[misc]
    """A picows client side: counts complete messages (see Echoes); ``refill`` may send more."""

    def __init__(self) -> None:
        Echoes.__init__(self)
        self.refill: Callable[[WSTransport], None] | None = None

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE or not frame.fin:
            return
        if self.refill is not None:
            self.refill(transport)
        self.on_message()


class Reassembler(Counter):
    """Counts messages that may arrive in several frames (large echoes)."""

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            return
        super().on_ws_frame(transport, frame)


class Receiver(Counter):
    """picows as a client under test: takes each message's payload as bytes, as the other
    clients deliver it (Reassembler, the load, only counts frames and never copies one), in
    one method, as a picows application would."""

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            return
        frame.get_payload_as_bytes()
        if frame.fin:
            self.on_message()


async def timed(pid: int, seconds: float, step: Callable[[], Awaitable[int]]) -> tuple[float, int]:
    """Run ``step`` (returns units of work done) until ``seconds`` pass; (server CPU s, units)."""
    loop = asyncio.get_running_loop()
    for _ in range(3):
        await step()  # warm up
    units = 0
    cpu0 = cpu_seconds(pid)
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        units += await step()
    return cpu_seconds(pid) - cpu0, units


async def echo_row(pid: int, url: str, size: int, seconds: float) -> float:
    transport, client = await ws_connect(Reassembler, url, max_frame_size=1 << 25)
    payload = os.urandom(size)

    async def step() -> int:
        transport.send(WSMsgType.BINARY, payload)
        await client.until(client.count + 1)
        return 1

    cpu, units = await timed(pid, seconds, step)
    transport.disconnect()
    return cpu / units


async def pipeline_row(pid: int, url: str, seconds: float) -> float:
    payload = os.urandom(256)
    conns = [await ws_connect(Counter, url) for _ in range(50)]
    running = True

    def refill(transport: WSTransport) -> None:
        if running:
            transport.send(WSMsgType.BINARY, payload)

    for _, client in conns:
        client.refill = refill
    cpu0 = cpu_seconds(pid)
    start = sum(c.count for _, c in conns)
    for transport, _ in conns:
        for _ in range(16):
            transport.send(WSMsgType.BINARY, payload)
    await asyncio.sleep(seconds)
    running = False
    await asyncio.sleep(0.3)  # the last messages in flight come back
    done = sum(c.count for _, c in conns) - start
    cpu = cpu_seconds(pid) - cpu0
    for transport, _ in conns:
        transport.disconnect()
    return cpu / done


async def broadcast_row(pid: int, url: str, seconds: float) -> float:
    payload = os.urandom(128)
    conns = [await ws_connect(Counter, url) for _ in range(1000)]
    await asyncio.sleep(0.5)  # every handler has registered its connection
    sender = conns[0][0]
    total = 0

    async def step() -> int:
        nonlocal total
        sender.send(WSMsgType.BINARY, payload)
        total += 1
        for _, client in conns:
            await client.until(total)
        return len(conns)

    cpu, units = await timed(pid, seconds, step)
    for transport, _ in conns:
        transport.disconnect()
    return cpu / units


async def deflate_row(pid: int, url: str, seconds: float) -> float:
    from websockets.asyncio.client import connect

    doc = {"id": 1, "user": "someone", "tags": ["a", "b", "c"], "text": "a JSON document " * 40}
    text = json.dumps(doc)[:1024]
    async with connect(url, compression="deflate", max_size=None, ping_interval=None) as ws:

        async def step() -> int:
            await ws.send(text)
            await ws.recv()
            return 1

        cpu, units = await timed(pid, seconds, step)
    return cpu / units


# ------------------------------------------------------------------ paired slices
#
# On a shared VM the CPU a server needs for the same work moves by 20-50% from one minute to
# the next, which is more than the differences left between the fastest servers. So the rows
# below are measured in paired slices: every server runs at once (idle ones wait in epoll),
# each row is cut into short slices, and every cycle gives each server one slice, in a new
# random order. A server is compared with picows slice against slice in the same cycle, and
# the ratio reported is the median of those per-cycle ratios: a slow minute slows both sides
# of a pair.

PAIRED_ROWS = ("echo64", "echo1k", "echo64k", "mib", "pipeline", "broadcast")


class Load:
    """One server's client side for a row: connected once, then run slice by slice."""

    async def open(self, url: str) -> None:
        raise NotImplementedError

    async def run(self, seconds: float) -> int:
        """Work for about ``seconds``; returns the units done (all of them answered)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class EchoLoad(Load):
    def __init__(self, size: int) -> None:
        self.payload = os.urandom(size)

    async def open(self, url: str) -> None:
        self.transport, self.client = await ws_connect(Reassembler, url, max_frame_size=1 << 25)
        await self.run(0)

    async def run(self, seconds: float) -> int:
        loop = asyncio.get_running_loop()
        transport, client, payload = self.transport, self.client, self.payload
        deadline = loop.time() + seconds
        units = 0
        while True:
            transport.send(WSMsgType.BINARY, payload)
            await client.until(client.count + 1)
            units += 1
            if loop.time() >= deadline:
                return units

    def close(self) -> None:
        self.transport.disconnect()


class PipelineLoad(Load):
    """50 connections x 16 messages of 256 B in flight; each echo is answered by a new message."""

    async def open(self, url: str) -> None:
        self.payload = os.urandom(256)
        self.conns = [await ws_connect(Counter, url) for _ in range(50)]
        self.running = False
        self.sent = 0
        for _, client in self.conns:
            client.refill = self.refill
        await self.run(0.05)

    def refill(self, transport: WSTransport) -> None:
        if self.running:
            self.sent += 1
            transport.send(WSMsgType.BINARY, self.payload)

    def received(self) -> int:
        return sum(client.count for _, client in self.conns)

    async def run(self, seconds: float) -> int:
        start = self.received()
        self.sent = start
        self.running = True
        for transport, _ in self.conns:
            for _ in range(16):
                self.refill(transport)
        await asyncio.sleep(seconds)
        self.running = False
        while self.received() < self.sent:  # the messages in flight come back
            await asyncio.sleep(0.001)
        return self.received() - start

    def close(self) -> None:
        for transport, _ in self.conns:
            transport.disconnect()


class BroadcastLoad(Load):
    """1,000 connections; one sends 128 B and the server sends it to all: units are deliveries."""

    def __init__(self, settle: float = 0.5) -> None:
        self.settle = settle  # long enough for every handler to register its connection

    async def open(self, url: str) -> None:
        self.payload = os.urandom(128)
        self.conns = [await ws_connect(Counter, url) for _ in range(1000)]
        await asyncio.sleep(self.settle)
        self.total = 0
        await self.run(0)

    async def run(self, seconds: float) -> int:
        loop = asyncio.get_running_loop()
        sender = self.conns[0][0]
        deadline = loop.time() + seconds
        units = 0
        while True:
            sender.send(WSMsgType.BINARY, self.payload)
            self.total += 1
            for _, client in self.conns:
                await client.until(self.total)
            units += len(self.conns)
            if loop.time() >= deadline:
                return units

    def close(self) -> None:
        for transport, _ in self.conns:
            transport.disconnect()


def make_load(row: str, settle: float = 0.5) -> Load:
    """The client side of ``row``; ``settle``: how long broadcast's connections wait to register."""
    sizes = {"echo64": 64, "echo1k": 1024, "echo64k": 65536, "mib": 1 << 20}
    if row in sizes:
        return EchoLoad(sizes[row])
    return PipelineLoad() if row == "pipeline" else BroadcastLoad(settle)


Servers = dict[str, tuple[int, str]]  # name: (pid, url)
PerCycle = dict[str, list[float]]  # name: a value per cycle


async def paired_row(row: str, servers: Servers, cycles: int, seconds: float) -> PerCycle:
    """Server CPU (ns) per unit for each server, one value per cycle; see the comment above."""
    loads: dict[str, Load] = {}
    for name, (_, url) in servers.items():
        loads[name] = make_load(row)
        await loads[name].open(url)
    per: PerCycle = {name: [] for name in servers}
    try:
        for _ in range(cycles):
            order = list(servers)
            random.shuffle(order)
            for name in order:
                pid = servers[name][0]
                cpu0 = cpu_ns(pid)
                units = await loads[name].run(seconds)
                per[name].append((cpu_ns(pid) - cpu0) / units)
    finally:
        for load in loads.values():
            load.close()
    return per


def measure_paired(names: list[str], rows: list[str], cycles: int, seconds: float, uvloop: bool) -> dict[str, PerCycle]:
    """The paired rows for every server; per row, per server, CPU µs (ms for 1 MiB) per unit by cycle."""
    runner = _uvloop_run if uvloop else asyncio.run
    out: dict[str, PerCycle] = {}
    groups = [([r for r in rows if r != "broadcast"], ()), ([r for r in rows if r == "broadcast"], ("--broadcast",))]
    for group, flags in groups:
        if not group:
            continue
        procs = {name: start_server(name, uvloop, *flags) for name in names}
        try:
            servers = {name: (proc.pid, f"ws://127.0.0.1:{port}/") for name, (proc, port) in procs.items()}
            for row in group:
                scale = 1e-6 if row == "mib" else 1e-3
                per = runner(paired_row(row, servers, cycles, seconds))
                out[row] = {name: [v * scale for v in values] for name, values in per.items()}
                medians = ", ".join(f"{n} {statistics.median(v):.3g}" for n, v in out[row].items())
                print(f"{row}: {medians}", file=sys.stderr, flush=True)
        finally:
            for proc, _ in procs.values():
                stop(proc)
    return out


def paired_ratio(values: PerCycle, mine: str, ref: str) -> tuple[float, float, float]:
    """The median and quartiles of ``mine``'s per-cycle ratio to ``ref``."""
    ratios = sorted(a / b for a, b in zip(values[mine], values[ref], strict=True))
    q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    return q[1], q[0], q[2]


# --base DIR adds "wsdoctor@base": the wsdoctor server run from another source tree
# (an older commit's src/), measured in the same run as the current one.
BASE_ENV: dict[str, str] = {}


def server_env(name: str) -> tuple[str, dict[str, str] | None]:
    if name.endswith("@base"):
        return name.removesuffix("@base"), BASE_ENV
    return name, None


def start_server(
    name: str, uvloop: bool, *flags: str, prefix: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[str], int]:
    """Start bench/servers.py NAME, optionally under a tool (``prefix``: valgrind, say)."""
    port = free_port()
    name, env = server_env(name)
    cmd = [*prefix, sys.executable, str(HERE / "servers.py"), name, str(port), *flags]
    cmd += ["--uvloop"] if uvloop else []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError(f"{name} server did not start")
    return proc, port


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(timeout=30)


def measure_server(name: str, rows: list[str], seconds: float, uvloop: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    runner = _uvloop_run if uvloop else asyncio.run
    plain = [r for r in rows if r in ("echo64", "echo1k", "echo64k", "pipeline", "mib")]
    if plain:
        proc, port = start_server(name, uvloop)
        url = f"ws://127.0.0.1:{port}/"
        try:
            sizes = {"echo64": 64, "echo1k": 1024, "echo64k": 65536}
            for row in plain:
                if row in sizes:
                    out[row] = runner(echo_row(proc.pid, url, sizes[row], seconds)) * 1e6
                elif row == "mib":
                    out[row] = runner(echo_row(proc.pid, url, 1 << 20, seconds)) * 1e3
                else:
                    out[row] = runner(pipeline_row(proc.pid, url, seconds)) * 1e6
        finally:
            stop(proc)
    if "broadcast" in rows:
        proc, port = start_server(name, uvloop, "--broadcast")
        try:
            out["broadcast"] = runner(broadcast_row(proc.pid, f"ws://127.0.0.1:{port}/", seconds)) * 1e6
        finally:
            stop(proc)
    if "deflate" in rows and name != "picows":
        proc, port = start_server(name, uvloop, "--deflate")
        try:
            out["deflate"] = runner(deflate_row(proc.pid, f"ws://127.0.0.1:{port}/", seconds)) * 1e6
        finally:
            stop(proc)
    if "idle" in rows and name != "wsdoctor-listener":  # the same connection object as wsdoctor
        base_name, env = server_env(name)
        result = run_idle(base_name, 5000, uvloop, env=env)
        out["idle"] = result["kib_per_conn"]
        out["handshake"] = result["us_per_handshake"]
    return out


def _uvloop_run(coro: Awaitable[Any]) -> Any:
    import uvloop

    return uvloop.run(coro)  # type: ignore[arg-type]


# ------------------------------------------------------------------ clients


async def open_client(
    name: str, url: str, size: int
) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
    """Client library ``name`` connected to ``url``: (one echo round trip of ``size`` bytes, close)."""
    payload = os.urandom(size)
    if name == "picows":
        transport, client = await ws_connect(Receiver, url, max_frame_size=1 << 25)

        async def step() -> None:
            transport.send(WSMsgType.BINARY, payload)
            await client.until(client.count + 1)

        close: Callable[[], Awaitable[None]] = _async_noop(transport.disconnect)
    elif name == "wsdoctor":
        import wsdoctor

        ws = await wsdoctor.connect(url, compression=None, ping_interval=None, max_size=None)

        async def step() -> None:
            await ws.send(payload)
            await ws.recv()

        close = ws.close  # type: ignore[assignment]
    elif name == "wsdoctor-listener":
        # The listener API on the client: picows' client shape (a callback counts the echoes,
        # the step sends and waits on a future).
        import wsdoctor

        wsc = await wsdoctor.connect(url, compression=None, ping_interval=None, max_size=None)
        echoes = Echoes()
        wsc.listen(echoes.on_message)

        async def step() -> None:
            wsc.send_now(payload)
            await echoes.until(echoes.count + 1)

        close = wsc.close  # type: ignore[assignment]
    elif name == "websockets":
        from websockets.asyncio.client import connect

        wsl = await connect(url, compression=None, ping_interval=None, max_size=None)

        async def step() -> None:
            await wsl.send(payload)
            await wsl.recv()

        close = wsl.close
    else:
        import aiohttp

        session = aiohttp.ClientSession()
        wsa = await session.ws_connect(url, autoping=False, max_msg_size=0)

        async def step() -> None:
            await wsa.send_bytes(payload)
            await wsa.receive()

        async def close() -> None:
            await wsa.close()
            await session.close()

    return step, close


async def client_loop(name: str, url: str, size: int, counter_file: str) -> None:
    """Round trips until killed, counted in ``counter_file`` (8 bytes, read by clients_table)."""
    import mmap

    step, _ = await open_client(name, url, size)
    with open(counter_file, "r+b") as f, mmap.mmap(f.fileno(), 8) as shared:
        count = memoryview(shared).cast("Q")
        while True:
            await step()
            count[0] += 1


def _async_noop(fn: Callable[[], Any]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        fn()

    return run


def clients_table(args: argparse.Namespace) -> None:
    """Every client against one picows server, in paired slices as the servers' rows.

    Each client runs in a process of its own (``--client-loop``), making round trips without
    pause and counting them in a shared 8-byte file. All are started, then stopped (SIGSTOP);
    each cycle lets each one run for one slice (SIGCONT ... SIGSTOP) in a new random order, and
    takes its CPU from /proc/PID/schedstat and its round trips from the counter. The ratio is the
    median of the per-cycle ratios to picows' client, as for the servers.
    """
    names = ["picows", "wsdoctor", "wsdoctor-listener", "websockets", "aiohttp"]
    sizes = [("64 B", 64), ("1 KiB", 1024), ("64 KiB", 65536)]
    per: dict[str, PerCycle] = {}
    server, port = start_server("picows", not args.asyncio)
    url = f"ws://127.0.0.1:{port}/"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for label, size in sizes:
                per[label] = paired_clients(names, url, size, Path(tmp), args)
                medians = ", ".join(f"{n} {statistics.median(v):.3g}" for n, v in per[label].items())
                print(f"{label}: {medians}", file=sys.stderr, flush=True)
    finally:
        stop(server)
    print(header(args, "clients against one picows server: client CPU µs per round trip"))
    print("| size | " + " | ".join(names) + " | wsdoctor / picows | listener / picows |")
    print("|---|" + "---:|" * (len(names) + 2))
    for label, _ in sizes:
        cells = " | ".join(f"{statistics.median(per[label][n]):.1f}" for n in names)
        ratios = []
        for mine in ("wsdoctor", "wsdoctor-listener"):
            middle, low, high = paired_ratio(per[label], mine, "picows")
            ratios.append(f"{middle:.2f} ({low:.2f}-{high:.2f})")
        print(f"| {label} | {cells} | " + " | ".join(ratios) + " |")


def paired_clients(names: list[str], url: str, size: int, tmp: Path, args: argparse.Namespace) -> PerCycle:
    """Client CPU µs per round trip, one value per cycle, for every client (see clients_table)."""
    procs: dict[str, tuple[subprocess.Popen[bytes], memoryview]] = {}
    files = []
    try:
        for name in names:
            path = tmp / f"{name}-{size}"
            path.write_bytes(bytes(8))
            cmd = [sys.executable, __file__, "--client-loop", name, url, str(size), str(path)]
            cmd += ["--asyncio"] if args.asyncio else []
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            f = path.open("r+b")
            files.append(f)
            procs[name] = (proc, memoryview(mmap.mmap(f.fileno(), 8)).cast("Q"))
        deadline = time.monotonic() + 30
        while any(count[0] < 50 for _, count in procs.values()):  # connected and warmed up
            if time.monotonic() > deadline:
                raise RuntimeError("a client did not start")
            time.sleep(0.05)
        for proc, _ in procs.values():
            os.kill(proc.pid, signal.SIGSTOP)
        per: PerCycle = {name: [] for name in names}
        for _ in range(args.cycles):
            for name in random.sample(names, len(names)):
                proc, count = procs[name]
                cpu0, n0 = cpu_ns(proc.pid), count[0]
                os.kill(proc.pid, signal.SIGCONT)
                time.sleep(args.slice)
                os.kill(proc.pid, signal.SIGSTOP)
                time.sleep(0.01)  # stopped for sure before its counters are read
                per[name].append((cpu_ns(proc.pid) - cpu0) / 1e3 / max(count[0] - n0, 1))
        return per
    finally:
        for proc, _ in procs.values():
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.wait()
        for f in files:
            f.close()


def header(args: argparse.Namespace, what: str) -> str:
    paired = (
        f"{args.cycles} cycles of paired {args.slice:g} s slices "
        "(ratio: median of the per-cycle ratios, quartiles in brackets)"
    )
    rows = (
        paired
        if args.clients
        else (
            f"echo, pipeline, 1 MiB and broadcast in {paired}, the other rows {args.seconds:g} s per row, "
            f"median of {args.repeat} interleaved rounds"
        )
    )
    pinned = f" (load and servers pinned to CPU {args.pin})" if args.pin is not None else ""
    return (
        f"\n{time.strftime('%Y-%m-%d %H:%M')}, {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores{pinned}, loop: {'asyncio' if args.asyncio else 'uvloop'}, {rows}; {what}\n"
    )


def main() -> None:
    if sys.argv[1:2] == ["--client-loop"]:  # one client of --clients (see clients_table)
        name, url, size, counter = sys.argv[2:6]
        coro = client_loop(name, url, int(size), counter)
        asyncio.run(coro) if "--asyncio" in sys.argv else _uvloop_run(coro)
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--asyncio", action="store_true", help="run the servers on the stock asyncio loop")
    parser.add_argument("--only", default=",".join(SERVERS))
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--clients", action="store_true", help="compare clients against one picows server")
    parser.add_argument("--base", metavar="SRC", help="also run wsdoctor from this src/ directory (wsdoctor@base)")
    parser.add_argument("--cycles", type=int, default=12, help="paired rows: cycles of one slice per server")
    parser.add_argument("--slice", type=float, default=0.5, help="paired rows: seconds per slice")
    parser.add_argument("--pin", type=int, metavar="CPU", help="run the load and every server on this one CPU")
    args = parser.parse_args()
    if args.pin is not None:
        # The load (this process) and every server (its children inherit the mask) on one CPU,
        # as in the first measurement of the small rows. A server's wait for the next message is
        # then the client's turn on the same core, where unpinned it is an idle CPU woken from the
        # other one: on this VM that wake-up is most of an unpinned round trip's CPU, the same for
        # every server, and it hides their own work.
        os.sched_setaffinity(0, {args.pin})
    if args.base:
        BASE_ENV.update(os.environ, PYTHONPATH=str(Path(args.base).resolve()))
        args.only += ",wsdoctor@base"
    raise_nofile()
    if args.clients:
        clients_table(args)
        return
    names = args.only.split(",")
    rows = args.rows.split(",")
    paired = measure_paired(names, [r for r in rows if r in PAIRED_ROWS], args.cycles, args.slice, not args.asyncio)
    rest = [r for r in rows if r not in PAIRED_ROWS]
    results: dict[tuple[str, str], list[float]] = {}
    for row, per in paired.items():
        for name, values in per.items():
            results[(name, row)] = values
    for _ in range(args.repeat if rest else 0):
        for name in names:
            try:
                measured = measure_server(name, rest, args.seconds, not args.asyncio)
            except Exception as exc:  # one broken round should not lose the others
                print(f"{name}: round failed: {exc!r}", file=sys.stderr, flush=True)
                continue
            for row, value in measured.items():
                results.setdefault((name, row), []).append(value)
            print(f"{name}: {measured}", file=sys.stderr, flush=True)
    print(header(args, "server CPU per unit"))
    shown = [n for n in names if any((n, r) in results for r in [*rows, "handshake"])]
    extra = " before / picows |" if args.base else ""
    print("| scenario | " + " | ".join(shown) + " | wsdoctor / picows | listener / picows |" + extra)
    print("|---|" + "---:|" * (len(shown) + (3 if args.base else 2)))
    for row in [*rows, "handshake"] if "idle" in rows else rows:
        med = {n: statistics.median(results[(n, row)]) for n in shown if (n, row) in results}
        cells = " | ".join(f"{med[n]:.3g}" if n in med else "–" for n in shown)
        ref = "aiohttp" if row == "deflate" else "picows"
        ratios = []
        for mine in ("wsdoctor", "wsdoctor-listener", "wsdoctor@base"):
            if mine not in med or ref not in med:
                ratios.append("–")
            elif row in paired:
                middle, low, high = paired_ratio(paired[row], mine, ref)
                ratios.append(f"{middle:.2f} ({low:.2f}-{high:.2f})")
            else:
                ratios.append(f"{med[mine] / med[ref]:.2f}")
        if row == "deflate":
            ratios = [f"{r} × aiohttp" if r != "–" else r for r in ratios]
        print(f"| {LABELS[row]} | {cells} | " + " | ".join(ratios[: 3 if args.base else 2]) + " |")


if __name__ == "__main__":
    main()
