"""Out of file descriptors: one log line per episode, a short pause, service recovers.

``wsdoctor serve`` runs in a subprocess whose descriptor limit is 64 (soft and hard, so
it cannot raise it), and more clients than that dial it at once.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import subprocess

import wsdoctor
from _helpers import serve_process

LIMIT = 64


def _lower_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


def test_descriptor_exhaustion_is_logged_once_and_service_recovers() -> None:
    with serve_process(
        stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "300"}, preexec_fn=_lower_limit
    ) as server:
        proc, url = server.proc, server.url
        assert proc.stdout is not None
        # The descriptor note follows the banner at once; read it here, because
        # communicate() below reads the pipe itself and skips what readline() buffered.
        note = proc.stdout.readline()

        async def storm() -> tuple[int, int]:
            async with asyncio.timeout(60):
                established = [await wsdoctor.connect(url, ping_interval=None) for _ in range(10)]
                release = asyncio.Event()

                async def hold() -> bool:
                    try:
                        ws = await wsdoctor.connect(url, open_timeout=2, ping_interval=None)
                    except wsdoctor.WebSocketError:
                        return False
                    await release.wait()
                    await ws.close()
                    return True

                crowd = [asyncio.ensure_future(hold()) for _ in range(2 * LIMIT)]
                await asyncio.sleep(2.5)  # every dial has either succeeded or timed out
                # Established connections are untouched while the server is starved.
                for i, ws in enumerate(established):
                    await ws.send(f"still {i}")
                    assert await ws.recv() == f"still {i}"
                release.set()
                results = await asyncio.gather(*crowd)
                # Once descriptors are free again, new clients get in.
                async with wsdoctor.connect(url, open_timeout=5) as late:
                    await late.send("after")
                    assert await late.recv() == "after"
                for ws in established:
                    await ws.close()
                await asyncio.sleep(1.5)  # a quiet second ends the episode, which is logged
                return sum(results), len(results) - sum(results)

        accepted, refused = asyncio.run(storm())
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert accepted > 0 and refused > 0, (accepted, refused)
    assert f"file descriptors: soft limit {LIMIT}, hard limit {LIMIT}" in note
    starved = [line for line in out.splitlines() if "cannot accept connections" in line]
    assert len(starved) == 1, out
    assert "EMFILE" in starved[0] and f"descriptor limit {LIMIT}" in starved[0]
    assert "accepting again" in out
    assert "Traceback" not in out
