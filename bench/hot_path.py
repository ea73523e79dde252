"""The per-message path's cost, in process: read callback -> core -> listener or task -> write.

End-to-end rows on a shared VM move by more than a change of a few hundred nanoseconds per
message; this measures only wsdoctor's own code. A server-side connection is fed masked
binary frames through ``get_buffer``/``buffer_updated`` as a transport would, with
``listen(ws.send_now)`` (an echo) and a transport whose ``write`` does nothing. The figure
is the CPU time per message minus that of copying the frame into the read buffer, as the
minimum over blocks of 20,000 messages.

``--api awaitable`` measures ``async for message in ws: await ws.send(message)`` instead: a
driving task feeds one frame and yields (``asyncio.sleep(0)``), the echo task wakes, takes the
message and sends it; the figure is the CPU time per message minus that of the driving loop alone.

``--api future`` measures no wsdoctor code at all: the same driving loop sets the result of a
future that a second task awaits, then that task makes the next one. That is what any awaitable
receive built on asyncio pays per message (a future, its callback through the loop, a task step),
the floor under ``--api awaitable``. ``--uvloop`` runs on uvloop, as the servers in the suite do.

    python bench/hot_path.py [--size 64] [--blocks 15] [--api listener|awaitable|future] [--uvloop]
    PYTHONPATH=/path/to/other/src python bench/hot_path.py   # another tree, for a before/after

``WSDOCTOR_NO_SPEEDUPS=1`` measures the pure-Python path. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import time
from collections.abc import Callable, Coroutine
from typing import Any

MASK = b"\x37\xfa\x21\x3d"
PER_BLOCK = 20_000


class NullTransport:
    """Just enough of a transport for the connection: writes go nowhere."""

    def write(self, data: Any) -> None:
        pass

    def writelines(self, data: Any) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def client_frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes([0x82, 0x80 | n])
    elif n < 65536:
        head = bytes([0x82, 0x80 | 126]) + struct.pack("!H", n)
    else:
        head = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", n)
    return head + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))


def best_per_message(step: Any, blocks: int) -> float:
    best = float("inf")
    for _ in range(blocks):
        t0 = time.process_time()
        for _ in range(PER_BLOCK):
            step()
        best = min(best, (time.process_time() - t0) / PER_BLOCK)
    return best


async def woken_task(body: Coroutine[Any, Any, None], feed: Callable[[], None], blocks: int) -> tuple[float, float]:
    """Run ``body`` as a task; (CPU per message, CPU per iteration of the driving loop alone).

    The driving loop calls ``feed`` (which wakes the task) and yields once, per message; the
    same loop without ``feed`` is what the task's part is measured against.
    """
    task = asyncio.get_running_loop().create_task(body)
    await asyncio.sleep(0)

    async def drive(fed: bool) -> float:
        best = float("inf")
        for _ in range(blocks):
            t0 = time.process_time()
            for _ in range(PER_BLOCK):
                if fed:
                    feed()
                await asyncio.sleep(0)
            best = min(best, (time.process_time() - t0) / PER_BLOCK)
        return best

    total = await drive(True)
    alone = await drive(False)
    task.cancel()
    return total, alone


async def awaitable_path(ws: Any, frame: bytes, blocks: int) -> tuple[float, float]:
    """The echo task ``async for message in ws: await ws.send(message)``, fed one frame per message."""
    n = len(frame)

    async def echo() -> None:
        async for message in ws:
            await ws.send(message)

    def feed() -> None:
        ws.get_buffer(-1)[:n] = frame
        ws.buffer_updated(n)

    return await woken_task(echo(), feed, blocks)


async def future_floor(blocks: int) -> tuple[float, float]:
    """A task woken by a future that the driving loop sets, and nothing else."""
    loop = asyncio.get_running_loop()
    box: list[asyncio.Future[None]] = []

    async def waiter() -> None:
        while True:
            future = loop.create_future()
            box.append(future)
            await future

    return await woken_task(waiter(), lambda: box.pop().set_result(None), blocks)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=15)
    parser.add_argument("--api", choices=["listener", "awaitable", "future"], default="listener")
    parser.add_argument("--uvloop", action="store_true")
    return parser.parse_args()


async def main() -> None:
    args = arguments()
    loop_name = type(asyncio.get_running_loop()).__module__.split(".")[0]
    if args.api == "future":
        total, alone = await future_floor(args.blocks)
        print(f"future, {loop_name}: {(total - alone) * 1e6:.3f} µs per message (asyncio's own, no wsdoctor code)")
        return

    import wsdoctor.protocol._connection as core_module
    from wsdoctor.aio.connection import WebSocketConnection

    ws = WebSocketConnection(is_client=False, ping_interval=None)
    ws.connection_made(NullTransport())  # type: ignore[arg-type]
    ws.attach(core_module.Connection(False), b"")
    frame = client_frame(os.urandom(args.size))
    n = len(frame)
    if args.api == "awaitable":
        total, copy = await awaitable_path(ws, frame, args.blocks)
    else:
        ws.listen(ws.send_now)

        def copy_in() -> None:
            ws.get_buffer(-1)[:n] = frame

        def one_message() -> None:
            ws.get_buffer(-1)[:n] = frame
            ws.buffer_updated(n)

        total = best_per_message(one_message, args.blocks)
        copy = best_per_message(copy_in, args.blocks)
    try:  # an older tree has no separate per-message module
        from wsdoctor.aio._wire import COMPILED as wire_compiled
    except ImportError:
        wire_compiled = False
    print(
        f"{args.api}, {args.size} B, {loop_name}: {(total - copy) * 1e6:.3f} µs per message "
        f"(core compiled: {core_module.COMPILED}, per-message path compiled: {wire_compiled})"
    )


if __name__ == "__main__":
    if arguments().uvloop:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
