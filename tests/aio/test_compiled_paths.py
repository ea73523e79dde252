"""The compiled and Python halves in every combination a machine can end up with."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

MIXED = r"""
import sys
sys.modules["wsdoctor.aio._wire_c"] = None  # as if it were missing, or stale and refused
import asyncio
import wsdoctor
import wsdoctor.aio._wire as wire
import wsdoctor.protocol._connection as core
assert core.COMPILED and not wire.COMPILED, (core.COMPILED, wire.COMPILED)

async def main():
    async def handler(ws):
        if ws.path == "/listen":
            ws.listen(ws.send_now)
            await ws.wait_closed()
        else:
            async for message in ws:
                await ws.send(message)

    async with wsdoctor.serve(handler, "127.0.0.1", 0) as server:
        for path in ("/", "/listen"):
            async with wsdoctor.connect(f"ws://127.0.0.1:{server.port_number}{path}") as ws:
                for message in ["text", b"binary", b"x" * 100_000, "é" * 70_000]:
                    await ws.send(message)
                    assert await ws.recv() == message
                await ws.ping()
            assert ws.ending.code == 1000, ws.ending

asyncio.run(main())
print("ok")
"""


def test_the_python_per_message_path_runs_over_the_compiled_core() -> None:
    # A per-message extension that is missing or was built from an older aio/_wire.py
    # leaves the Python WireProtocol in front of the compiled core: it must reach the
    # core only through what the core shows to Python.
    env = {k: v for k, v in os.environ.items() if k != "WSDOCTOR_NO_SPEEDUPS"}
    probe = subprocess.run(
        [sys.executable, "-c", "import wsdoctor.protocol._connection as c; print(c.COMPILED)"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    if probe.stdout.strip() != "True":
        pytest.skip("no compiled core on this machine (installed without a C compiler)")
    run = subprocess.run([sys.executable, "-c", MIXED], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok"
