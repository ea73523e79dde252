"""The work each server does per message, counted rather than timed.

On a shared VM the suite's CPU times move by 10-20 % between rounds (bench/README.md), which
is more than the differences left between the fastest servers on the small rows. This script
counts what does not depend on the neighbours:

- **instructions**: the server runs under valgrind's callgrind; once the clients are connected
  and warmed up the counters are zeroed, N units of work run, and the counters are dumped.
  This is every user-space instruction of the process (interpreter, event loop, extension
  modules, libc) per unit, not the kernel's.
- **system calls**: the server runs natively; ``strace -c -f`` is attached after the warm-up,
  the same N units run, and it is detached. The kernel's share of the CPU (80 % and more on
  these rows) is what these calls cost, and it is the same TCP path for every server.

The same rows as bench/suite.py, from the same picows client, but counted: a row ends after
N units, not after some seconds. Under callgrind the server runs about 50 times slower, so on
the pipeline row more messages arrive per read than at full speed; the other rows do the same
work per unit at any speed.

    python bench/instructions.py [--only picows,wsdoctor-listener] [--rows echo64,broadcast] [--units 2000]
    python bench/instructions.py --base /path/to/old/src   # adds wsdoctor@base, another tree's server
    python bench/instructions.py --only wsdoctor-listener --rows echo64 --keep /tmp/cg
    callgrind_annotate --inclusive=yes /tmp/cg/callgrind.PID.1   # where those instructions go
    python bench/instructions.py --clients                  # the clients instead, against picows

``--clients`` counts the other side: each client (picows', wsdoctor's two APIs) in a process of
its own under callgrind against one picows server running natively, echoing 64 B, 1 KiB and
64 KiB messages. The whole process is counted twice, with 200 round trips and with 200 + N, and
the difference divided by N: what start-up, connecting and closing cost cancels out. Every client
takes each message's payload as bytes, as the others deliver it (picows' ``Receiver``). One
caveat: valgrind counts a ``rep movsb`` copy (glibc's memcpy of a few KiB and more) a byte at a
time, so a copy of 64 KiB reads as 65,536 instructions, far more than its time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from picows import ws_connect

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from suite import BASE_ENV, Counter, Load, _uvloop_run, make_load, open_client, start_server, stop  # noqa: E402

SERVERS = ["picows", "wsdoctor", "wsdoctor-listener", "websockets", "aiohttp"]
ROWS = {
    "echo64": "echo 64 B, per round trip",
    "echo1k": "echo 1 KiB, per round trip",
    "echo64k": "echo 64 KiB, per round trip",
    "pipeline": "pipeline 50 × 16 × 256 B, per message",
    "broadcast": "broadcast 128 B to 1,000 conns, per delivery",
    "handshake": "opening handshake, per connection",
}

# One measured stretch: begin() before the first unit, end() after the last.
Hooks = tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]


async def run(*cmd: str) -> str:
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"{cmd[0]} failed: {out.decode(errors='replace')}")
    return out.decode(errors="replace")


class Callgrind:
    """User-space instructions of the server between begin() and end()."""

    def __init__(self, workdir: Path) -> None:
        self.out = workdir / "callgrind.%p"
        self.prefix = ("valgrind", "--tool=callgrind", f"--callgrind-out-file={self.out}")
        self.pid = 0
        self.result = 0

    def hooks(self, pid: int) -> Hooks:
        self.pid = pid

        async def begin() -> None:
            await run("callgrind_control", "--zero", str(pid))

        async def end() -> None:
            await run("callgrind_control", "--dump", str(pid))
            dumps = sorted(self.out.parent.glob(f"callgrind.{pid}.*"), key=lambda p: int(p.suffix[1:]))
            for line in dumps[-1].read_text().splitlines():
                if line.startswith("summary:"):
                    self.result = int(line.split()[1])
                    return
            raise RuntimeError("no summary in the callgrind dump")

        return begin, end


class Strace:
    """System calls of the server, by name, between begin() and end()."""

    prefix: tuple[str, ...] = ()

    def __init__(self, workdir: Path) -> None:
        self.file = workdir / "strace.txt"
        self.result: dict[str, int] = {}

    def hooks(self, pid: int) -> Hooks:
        tracer: subprocess.Popen[str] | None = None

        async def begin() -> None:
            nonlocal tracer
            tracer = subprocess.Popen(
                ["strace", "-c", "-f", "-p", str(pid), "-o", str(self.file)],
                stderr=subprocess.PIPE,
                text=True,
            )
            assert tracer.stderr is not None
            line = await asyncio.to_thread(tracer.stderr.readline)  # "Process N attached"
            if "attached" not in line:
                raise RuntimeError(f"strace: {line}")
            await asyncio.sleep(0.2)

        async def end() -> None:
            assert tracer is not None
            tracer.send_signal(signal.SIGINT)
            await asyncio.to_thread(tracer.wait, 10)
            self.result = {}
            for line in self.file.read_text().splitlines():
                fields = line.split()
                if len(fields) >= 5 and fields[0][0].isdigit() and fields[-1] != "total":
                    self.result[fields[-1]] = int(fields[3])

        return begin, end


async def counted_row(load: Load, url: str, units: int, warm: int, hooks: Hooks) -> int:
    """``load`` (bench/suite.py's client side of the row) run a slice at a time, each slice as
    short as it can be (one round trip, one broadcast, one burst of the pipeline), ``warm``
    slices before the counters start and until ``units`` are done after; the units done."""
    await load.open(url)
    for _ in range(warm):
        await load.run(0)
    await hooks[0]()
    done = 0
    while done < units:
        done += await load.run(0)
    await hooks[1]()
    load.close()
    return done


async def handshake_row(url: str, units: int, hooks: Hooks) -> int:
    """Connections opened one after the other (accept, upgrade, 101, the handler's start)."""
    conns = [await ws_connect(Counter, url) for _ in range(20)]  # warm up
    await hooks[0]()
    conns += [await ws_connect(Counter, url) for _ in range(units)]
    await hooks[1]()
    for transport, _ in conns:
        transport.disconnect()
    return units


def measure(tool: Callgrind | Strace, name: str, row: str, units: int) -> int:
    """Start the server under ``tool``, run ``units`` of ``row``; the units actually run."""
    flags = ("--broadcast",) if row == "broadcast" else ()
    proc, port = start_server(name, True, *flags, prefix=tool.prefix)
    url = f"ws://127.0.0.1:{port}/"
    try:
        hooks = tool.hooks(proc.pid)
        if row == "handshake":
            return int(_uvloop_run(handshake_row(url, units // 4, hooks)))
        # Warm-ups: 50 round trips, one burst of 800 pipelined messages, 3 broadcasts. Under
        # valgrind the server takes its time to register 1,000 connections: 1 s, not 0.5.
        load = make_load(row, settle=1.0)
        warm = {"pipeline": 1, "broadcast": 3}.get(row, 50)
        return int(_uvloop_run(counted_row(load, url, units, warm, hooks)))
    finally:
        stop(proc)


CLIENTS = ["picows", "wsdoctor", "wsdoctor-listener"]
CLIENT_SIZES = {"64 B": 64, "1 KiB": 1024, "64 KiB": 65536}


async def client_round_trips(name: str, url: str, size: int, n: int) -> None:
    """``n`` echo round trips of ``size`` bytes with client ``name`` (run in its own process),
    the same client and step as ``suite.py --clients`` times."""
    step, close = await open_client(name, url, size)
    for _ in range(n):
        await step()
    await close()


def count_client(name: str, url: str, size: int, n: int) -> int:
    """User-space instructions of a whole client process making ``n`` round trips."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__]
        subprocess.run([*cmd, "--client-run", name, url, str(size), str(n)], check=True, capture_output=True)
        for line in out.read_text().splitlines():
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError("no summary in the callgrind dump")


def clients_table(units: int) -> None:
    proc, port = start_server("picows", True)
    url = f"ws://127.0.0.1:{port}/"
    per: dict[tuple[str, str], float] = {}
    try:
        for label, size in CLIENT_SIZES.items():
            for name in CLIENTS:
                per[name, label] = (
                    count_client(name, url, size, 200 + units) - count_client(name, url, size, 200)
                ) / units
                print(f"{name} {label}: {per[name, label]:.0f} instructions per round trip", file=sys.stderr)
    finally:
        stop(proc)
    print(
        f"\n{time.strftime('%Y-%m-%d %H:%M')}, {platform.python_implementation()} {platform.python_version()}, "
        f"uvloop, {units} round trips; clients against one picows server, counted, not timed\n"
    )
    print("User-space instructions of the client per round trip (thousands; ratio to picows):\n")
    print("| size | " + " | ".join(CLIENTS) + " |")
    print("|---|" + "---:|" * len(CLIENTS))
    for label in CLIENT_SIZES:
        ref = per["picows", label]
        cells = [f"{ref / 1000:.2f}"] + [f"{per[n, label] / 1000:.2f} ({per[n, label] / ref:.2f})" for n in CLIENTS[1:]]
        print(f"| {label} | " + " | ".join(cells) + " |")


def main() -> None:
    if sys.argv[1:2] == ["--client-run"]:  # one client process of --clients, under callgrind
        name, url, size, n = sys.argv[2:6]
        _uvloop_run(client_round_trips(name, url, int(size), int(n)))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="picows,wsdoctor,wsdoctor-listener")
    parser.add_argument("--rows", default=",".join(r for r in ROWS if r != "handshake"), help=", ".join(ROWS))
    parser.add_argument("--units", type=int, default=2000, help="round trips or messages (deliveries: broadcast)")
    parser.add_argument("--keep", metavar="DIR", help="keep callgrind's dumps here (for callgrind_annotate)")
    parser.add_argument("--base", metavar="SRC", help="also count wsdoctor from this src/ directory (wsdoctor@base)")
    parser.add_argument("--clients", action="store_true", help="count the clients against one picows server")
    args = parser.parse_args()
    if args.base:
        BASE_ENV.update(os.environ, PYTHONPATH=str(Path(args.base).resolve()))
        if "wsdoctor@base" not in args.only.split(","):
            args.only += ",wsdoctor@base"
    for tool in ("valgrind", "callgrind_control", "strace"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed (Debian: apt install valgrind strace)")
    if args.clients:
        clients_table(args.units)
        return
    names, rows = args.only.split(","), args.rows.split(",")
    instructions: dict[tuple[str, str], float] = {}
    calls: dict[tuple[str, str], dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.keep or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for row in rows:
            units = args.units * (20 if row == "broadcast" else 1)
            for name in names:
                grind = Callgrind(workdir)
                done = measure(grind, name, row, units)
                instructions[name, row] = grind.result / done
                trace = Strace(workdir)
                done = measure(trace, name, row, units)
                calls[name, row] = {call: n / done for call, n in trace.result.items()}
                print(f"{name} {row}: {instructions[name, row]:.0f} instructions, {calls[name, row]}", file=sys.stderr)
    print(
        f"\n{time.strftime('%Y-%m-%d %H:%M')}, {platform.python_implementation()} {platform.python_version()}, "
        f"uvloop, {args.units} units per row (broadcast: {args.units * 20} deliveries); counted, not timed\n"
    )
    print("User-space instructions per unit (thousands; ratio to picows):\n")
    print("| scenario | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for row in rows:
        base = instructions.get(("picows", row))
        cells = []
        for name in names:
            value = instructions[name, row]
            cells.append(f"{value / 1000:.2f}" + (f" ({value / base:.2f})" if base and name != "picows" else ""))
        print(f"| {ROWS[row]} | " + " | ".join(cells) + " |")
    print("\nSystem calls per unit (those made at least once per 100 units):\n")
    print("| scenario | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for row in rows:
        cells = []
        for name in names:
            per = calls[name, row]
            shown = sorted((n, call) for call, n in per.items() if n >= 0.01)
            total = sum(per.values())
            cells.append(f"{total:.2f}: " + ", ".join(f"{call} {n:.2f}" for n, call in reversed(shown)))
        print(f"| {ROWS[row]} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
