"""A short soak: a few hundred sessions of the bench's mix must leak nothing.

The same sessions as ``bench/soak.py`` (random sizes, pings, resets, invalid frames,
garbage, slow readers, stalled and abandoned peers), client and server in this process,
with short keepalive timers so that stalled peers end within the test. Afterwards the
process has the descriptors and tasks it started with and no ``ResourceWarning`` was
raised.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import warnings
from pathlib import Path
from types import ModuleType

import pytest

import wsdoctor
from _helpers import load_file

BENCH = Path(__file__).resolve().parents[2] / "bench" / "soak.py"


def load_soak() -> ModuleType:
    return load_file(BENCH, "wsdoctor_bench_soak")


async def test_soak_leaks_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "wsdoctor.server")
    soak = load_soak()
    soak.SERVER_OPTIONS = {"ping_interval": 0.3, "ping_timeout": 0.3, "close_timeout": 0.5, "open_timeout": 3}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
        before = soak.snapshot()
        async with asyncio.timeout(120):
            async with wsdoctor.serve(soak.echo, "127.0.0.1", 0, **soak.SERVER_OPTIONS) as server:
                report = await soak.drive(server.port_number, 30, duration=None, sessions=300, seed=7)
                while server.connections:
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.1)  # transports' last callbacks
        gc.collect()
        after = soak.snapshot()
    assert report["failures"] == []
    assert report["sessions"] == 300
    kinds = {k.split(":")[0] for k in report["counts"]}
    assert kinds == set(soak.KINDS), report["counts"]
    assert (after["fds"], after["tasks"]) == (before["fds"], before["tasks"]), (before, after)
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
    # Every session the server saw ended and was logged with its ending.
    causes = {r.ending.cause for r in caplog.records if hasattr(r, "ending")}  # type: ignore[attr-defined]
    assert {"closed.by_peer", "protocol.bad_opcode", "handshake.malformed"} <= causes, causes
    assert causes & {"write.stalled", "keepalive.timeout"}, causes
