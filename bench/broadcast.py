"""Fan-out benchmark: broadcast to 1,000 connections, and the relay across processes on Redis.

Part 1, ``broadcast``: a server process per library holds 1,000 connections from a
client process (picows, the fastest Python client) and, when told, sends 128-byte
binary messages to all of them: ``wsdoctor.broadcast``, websockets' ``broadcast``,
and for picows a loop of ``transport.send`` (it has no broadcast function). The
figures are deliveries per second end to end (until the clients have every message)
and the server's CPU time per delivery.

Part 2, ``relay``: two wsdoctor server processes, each with a ``wsdoctor.Hub`` on the
same Redis, hold 500 clients each in one room; a publisher process publishes
timestamped messages at a fixed rate, and the clients measure the latency from
publish to delivery (CLOCK_MONOTONIC is shared by every process of the machine).
Then the same on a 3-node Redis Cluster with sharded pub/sub.

    python bench/broadcast.py [--part broadcast|relay|all] [--connections 1000] [--seconds 5]

Starts its own redis-server processes on free loopback ports (Debian's package).
Prints Markdown tables; this is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import cpu_seconds, free_port

HERE = Path(__file__).resolve().parent
SIZE = 128
ROOM = "bench"


def spawn(*args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        raise RuntimeError(f"{args[0]} did not start: {line!r}")
    return proc


# ---------------------------------------------------------------- servers


async def broadcast_server(lib: str, port: int) -> None:
    """Hold every connection; on "go:N" from /control, broadcast N messages and answer with the time taken."""
    import logging

    logging.getLogger("websockets").setLevel(logging.CRITICAL)  # the clients just disconnect
    conns: set[Any] = set()
    payload = os.urandom(SIZE)

    async def burst(n: int) -> tuple[float, int]:
        from websockets.asyncio.server import broadcast

        import wsdoctor

        skipped = 0
        inside = 0.0  # time spent in the broadcast calls themselves
        for _ in range(n):
            t0 = time.perf_counter()
            if lib == "wsdoctor":
                skipped += wsdoctor.broadcast(conns, payload).skipped
            else:
                broadcast(conns, payload)
            inside += time.perf_counter() - t0
            await asyncio.sleep(0)  # let the loop run between messages, as a real server would
        return inside, skipped

    if lib in ("wsdoctor", "websockets"):

        async def handler(ws: Any) -> None:
            path = ws.path if lib == "wsdoctor" else ws.request.path
            if path != "/control":
                conns.add(ws)
                try:
                    await ws.wait_closed()
                finally:
                    conns.discard(ws)
                return
            async for message in ws:
                wall, skipped = await burst(int(message.split(":")[1]))
                await ws.send(f"done:{wall}:{skipped}")

        if lib == "wsdoctor":
            import wsdoctor

            ctx: Any = wsdoctor.serve(handler, "127.0.0.1", port, compression=None, ping_interval=None)
        else:
            from websockets.asyncio.server import serve

            ctx = serve(handler, "127.0.0.1", port, compression=None, ping_interval=None)
        async with ctx:
            print("ready", flush=True)
            await asyncio.Event().wait()
    else:
        from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server

        class Member(WSListener):  # type: ignore[misc]
            def on_ws_connected(self, transport: WSTransport) -> None:
                conns.add(transport)

            def on_ws_disconnected(self, transport: WSTransport) -> None:
                conns.discard(transport)

        class Control(WSListener):  # type: ignore[misc]
            def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
                if frame.msg_type == WSMsgType.TEXT:
                    n = int(frame.get_payload_as_ascii_text().split(":")[1])
                    asyncio.get_running_loop().create_task(self.run(transport, n))

            async def run(self, transport: WSTransport, n: int) -> None:
                inside = 0.0
                for _ in range(n):
                    t0 = time.perf_counter()
                    for member in conns:
                        member.send(WSMsgType.BINARY, payload)
                    inside += time.perf_counter() - t0
                    await asyncio.sleep(0)
                transport.send(WSMsgType.TEXT, f"done:{inside}:0".encode())

        server = await ws_create_server(
            lambda request: Control() if request.path == b"/control" else Member(), "127.0.0.1", port
        )
        print("ready", flush=True)
        async with server:
            await server.serve_forever()


async def relay_server(port: int, redis_url: str, cluster: bool) -> None:
    """A wsdoctor server whose every connection joins the bench room of a Hub on Redis."""
    import logging

    import wsdoctor

    logging.getLogger("wsdoctor.server").setLevel(logging.ERROR)  # the clients just disconnect

    hub = wsdoctor.Hub(redis_url, cluster=cluster)

    async def handler(ws: wsdoctor.WebSocketConnection) -> None:
        hub.join(ROOM, ws)
        await ws.wait_closed()

    async with wsdoctor.serve(handler, "127.0.0.1", port, compression=None, ping_interval=None):
        print("ready", flush=True)
        await asyncio.Event().wait()


async def publisher(redis_url: str, cluster: bool, rate: float, seconds: float) -> None:
    """Publish timestamped 128-byte messages to the room at ``rate`` per second with ``Hub.publish``.

    The publisher is a hub with no members, as a web app's worker that only publishes would be,
    so the publish path measured is the hub's own.
    """
    import wsdoctor

    hub = wsdoctor.Hub(redis_url, cluster=cluster)
    await hub.publish(ROOM, b"warm-up")  # connections and the slot map are ready before timing
    print("ready", flush=True)
    sys.stdin.readline()
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent = 0
    while loop.time() - start < seconds:
        due = start + sent / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await hub.publish(ROOM, time.monotonic_ns().to_bytes(8, "little") + b"x" * (SIZE - 8))
        sent += 1
    await hub.close()
    print(json.dumps({"published": sent, "lost": hub.lost}), flush=True)


# ---------------------------------------------------------------- clients


class Counter:
    def __init__(self) -> None:
        self.count = 0
        self.latencies: list[int] = []
        self.expected = 0
        self.done: asyncio.Future[None] | None = None
        self.timestamps = False


def listener_class(counter: Counter) -> Any:
    from picows import WSFrame, WSListener, WSMsgType, WSTransport

    class Member(WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type != WSMsgType.BINARY or frame.payload_size != SIZE:
                return  # not a benchmark message (the relay publisher's warm-up)
            counter.count += 1
            if counter.timestamps:
                sent = int.from_bytes(frame.get_payload_as_memoryview()[:8], "little")
                counter.latencies.append(time.monotonic_ns() - sent)
            if counter.done is not None and counter.count >= counter.expected and not counter.done.done():
                counter.done.set_result(None)

    return Member


async def connect_many(urls: list[str], n: int, counter: Counter) -> list[Any]:
    from picows import ws_connect

    member = listener_class(counter)
    transports = []
    for i in range(n):
        transport, _ = await ws_connect(member, urls[i % len(urls)])
        transports.append(transport)
    return transports


async def client_process(urls: list[str], n: int, timestamps: bool) -> None:
    """A client process: n connections; "count" prints its count, "stop" its count and latencies."""
    counter = Counter()
    counter.timestamps = timestamps
    transports = await connect_many(urls, n, counter)
    print("ready", flush=True)
    while (await asyncio.to_thread(sys.stdin.readline)).strip() == "count":
        print(counter.count, flush=True)
    for t in transports:
        t.disconnect()
    print(json.dumps({"count": counter.count, "latencies": counter.latencies}), flush=True)


def start_clients(urls: list[str], connections: int, procs: int, timestamps: bool) -> list[subprocess.Popen[str]]:
    """Client processes sharing ``connections``: reading 1,000 sockets in one process is what fell behind first."""
    clients = []
    per = connections // procs
    for i in range(procs):
        n = per if i < procs - 1 else connections - per * (procs - 1)
        clients.append(
            subprocess.Popen(
                [sys.executable, __file__, "_clients", ",".join(urls), str(n), "1" if timestamps else "0"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    for proc in clients:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("a client process did not start")
    return clients


async def ask(clients: list[subprocess.Popen[str]], command: str) -> list[str]:
    answers = []
    for proc in clients:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(command + "\n")
        proc.stdin.flush()
        answers.append(await asyncio.to_thread(proc.stdout.readline))
    return answers


async def run_broadcast(lib: str, connections: int, messages: int, procs: int) -> dict[str, Any]:
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    port = free_port()
    proc = spawn("_broadcast_server", lib, str(port))
    clients: list[subprocess.Popen[str]] = []
    try:
        clients = start_clients([f"ws://127.0.0.1:{port}/"], connections, procs, False)
        await asyncio.sleep(0.5)
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        class Control(WSListener):  # type: ignore[misc]
            def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
                if frame.msg_type == WSMsgType.TEXT and not answer.done():
                    answer.set_result(frame.get_payload_as_ascii_text())

        control, _ = await ws_connect(Control, f"ws://127.0.0.1:{port}/control")
        expected = connections * messages
        cpu0 = cpu_seconds(proc.pid)
        t0 = time.perf_counter()
        control.send(WSMsgType.TEXT, f"go:{messages}".encode())
        _, wall, skipped = (await asyncio.wait_for(answer, 120)).split(":")
        count = 0
        deadline = time.perf_counter() + 60
        while time.perf_counter() < deadline:
            count = sum(int(line) for line in await ask(clients, "count"))
            if count >= expected - int(skipped):
                break
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - t0
        cpu = cpu_seconds(proc.pid) - cpu0
        control.disconnect()
        await ask(clients, "stop")
        return {
            "server": lib,
            "delivered": count,
            "deliveries_per_s": count / elapsed,
            "cpu_us_per_delivery": cpu / max(count, 1) * 1e6,
            "call_us": float(wall) / messages * 1e6,
            "skipped": int(skipped),
        }
    finally:
        for c in clients:
            if c.poll() is None:
                c.kill()
                c.wait()
        proc.terminate()
        proc.wait(10)


async def run_relay(
    redis_url: str, cluster: bool, connections: int, rate: float, seconds: float, client_procs: int
) -> dict[str, Any]:
    ports = [free_port(), free_port()]
    flag = "cluster" if cluster else "single"
    servers = [spawn("_relay_server", str(p), redis_url, flag) for p in ports]
    clients: list[subprocess.Popen[str]] = []
    pub: subprocess.Popen[str] | None = None
    try:
        clients = start_clients([f"ws://127.0.0.1:{p}/" for p in ports], connections, client_procs, True)
        await asyncio.sleep(1.0)  # both hubs have subscribed
        pub = subprocess.Popen(
            [sys.executable, __file__, "_publisher", redis_url, flag, str(rate), str(seconds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert pub.stdin is not None and pub.stdout is not None
        if pub.stdout.readline().strip() != "ready":
            raise RuntimeError("the publisher did not start")
        cpu0 = sum(cpu_seconds(s.pid) for s in servers)
        t0 = time.perf_counter()
        pub.stdin.write("go\n")
        pub.stdin.flush()
        published = json.loads(await asyncio.to_thread(pub.stdout.readline))["published"]
        elapsed = time.perf_counter() - t0
        await asyncio.sleep(1.0)  # the last deliveries land
        cpu = sum(cpu_seconds(s.pid) for s in servers) - cpu0
        count = 0
        lat: list[int] = []
        for line in await ask(clients, "stop"):
            result = json.loads(line)
            count += result["count"]
            lat += result["latencies"]
        lat.sort()
        return {
            "backend": "3-node cluster (sharded pub/sub)" if cluster else "one Redis",
            "rate": rate,
            "published": published,
            "delivered": count,
            "expected": published * connections,
            "deliveries_per_s": count / elapsed,
            "p50_ms": lat[len(lat) // 2] / 1e6 if lat else float("nan"),
            "p99_ms": lat[int(len(lat) * 0.99)] / 1e6 if lat else float("nan"),
            "max_ms": lat[-1] / 1e6 if lat else float("nan"),
            "mean_ms": statistics.fmean(lat) / 1e6 if lat else float("nan"),
            "server_cpu_s": cpu,
            "elapsed": elapsed,
        }
    finally:
        for proc in [*clients, *([pub] if pub is not None else [])]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for s in servers:
            s.terminate()
            s.wait(10)


# ------------------------------------------------------------------- main


def _run(main: Any) -> None:
    """Run a child process's coroutine on uvloop with --uvloop (as `wsdoctor serve` runs), else asyncio."""
    if os.environ.get("BENCH_UVLOOP"):
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        role, args = sys.argv[1], sys.argv[2:]
        if role == "_broadcast_server":
            _run(broadcast_server(args[0], int(args[1])))
        elif role == "_relay_server":
            _run(relay_server(int(args[0]), args[1], args[2] == "cluster"))
        elif role == "_clients":
            _run(client_process(args[0].split(","), int(args[1]), args[2] == "1"))
        elif role == "_publisher":
            _run(publisher(args[0], args[1] == "cluster", float(args[2]), float(args[3])))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["broadcast", "relay", "all"], default="all")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=200, help="broadcasts per library in part 1")
    parser.add_argument("--rates", default="25,50,100", help="publishes per second in part 2 (x connections)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=2, help="rounds per library (part 1) and per relay row")
    parser.add_argument("--uvloop", action="store_true", help="every child process on uvloop, as wsdoctor serve runs")
    parser.add_argument("--client-processes", type=int, default=4, help="processes sharing the clients")
    args = parser.parse_args()
    print(
        f"\n{time.strftime('%Y-%m-%d %H:%M')}, {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, {args.connections} connections, "
        f"{SIZE} B messages\n"
    )
    if args.uvloop:
        os.environ["BENCH_UVLOOP"] = "1"
    if args.part in ("broadcast", "all"):
        best: dict[str, dict[str, Any]] = {}
        for _ in range(args.repeat):
            for lib in ("wsdoctor", "websockets", "picows"):
                row = asyncio.run(run_broadcast(lib, args.connections, args.messages, args.client_processes))
                if lib not in best or row["deliveries_per_s"] > best[lib]["deliveries_per_s"]:
                    best[lib] = row
        loop = "uvloop" if args.uvloop else "asyncio"
        print(f"broadcast, {args.messages} messages, loop: {loop}, best of {args.repeat} interleaved rounds\n")
        print("| server | deliveries/s | server CPU µs/delivery | µs per broadcast call | delivered | skipped |")
        print("|---|---:|---:|---:|---:|---:|")
        for row in best.values():
            print(
                f"| {row['server']} | {row['deliveries_per_s']:,.0f} | {row['cpu_us_per_delivery']:.2f} | "
                f"{row['call_us']:,.0f} | {row['delivered']:,} | {row['skipped']} |"
            )
    if args.part in ("relay", "all"):
        sys.path.insert(0, str(HERE.parent / "tests"))
        from redis_servers import RedisClusterNodes, RedisServer

        runs: dict[tuple[str, float], list[dict[str, Any]]] = {}
        procs = args.client_processes
        with tempfile.TemporaryDirectory() as tmp:
            single = RedisServer(Path(tmp) / "single")
            cluster = RedisClusterNodes(Path(tmp) / "cluster")
            try:
                single.start()
                cluster.start()
                # Rounds interleave the two backends, so that a noisy minute hits both alike.
                for _ in range(args.repeat):
                    for rate in map(float, args.rates.split(",")):
                        for url, sharded in ((single.url, False), (cluster.url, True)):
                            row = asyncio.run(run_relay(url, sharded, args.connections, rate, args.seconds, procs))
                            runs.setdefault((row["backend"], rate), []).append(row)
            finally:
                cluster.stop()
                single.stop()
        loop = "uvloop" if args.uvloop else "asyncio"
        print(
            f"\nrelay: 2 wsdoctor servers, {args.connections} clients in one room, "
            f"{args.seconds:g} s per row, loop: {loop}, {args.repeat} interleaved round(s)\n"
        )
        print(
            "| backend | publishes/s | round | deliveries/s | delivered/expected | p50 ms | p99 ms | max ms "
            "| servers' CPU s |"
        )
        print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
        for (backend, rate), rows in runs.items():
            for i, row in enumerate(rows, 1):
                print(
                    f"| {backend} | {rate:g} | {i} | {row['deliveries_per_s']:,.0f} | "
                    f"{row['delivered']:,}/{row['expected']:,} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | "
                    f"{row['max_ms']:.1f} | {row['server_cpu_s']:.1f} |"
                )
            if len(rows) > 1:
                med = {k: statistics.median(r[k] for r in rows) for k in ("deliveries_per_s", "p50_ms", "p99_ms")}
                print(
                    f"| {backend} | {rate:g} | **median** | {med['deliveries_per_s']:,.0f} | | "
                    f"{med['p50_ms']:.2f} | **{med['p99_ms']:.2f}** | | |"
                )


if __name__ == "__main__":
    main()
