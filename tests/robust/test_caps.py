"""max_connections: upgrades beyond the cap get HTTP 503 with Retry-After, the rest is untouched."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import pytest

import wsdoctor
from _helpers import echo, serve_process


async def test_upgrades_beyond_the_cap_get_503(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "wsdoctor.server")
    async with asyncio.timeout(10), wsdoctor.serve(echo, "127.0.0.1", 0, max_connections=2) as server:
        url = f"ws://127.0.0.1:{server.port_number}/"
        first = await wsdoctor.connect(url)
        second = await wsdoctor.connect(url)
        with pytest.raises(wsdoctor.HandshakeError) as info:
            await wsdoctor.connect(url)
        assert info.value.status == 503
        assert ("retry-after", "5") in [(k.lower(), v) for k, v in info.value.headers]
        # The client names the answer with its own cause and shows Retry-After.
        assert info.value.ending.cause == "http.unavailable"
        assert str(info.value).startswith("server rejected WebSocket connection: HTTP 503")
        assert "Retry-After: 5" in str(info.value)
        # The open connections still work while others are turned away.
        await first.send("still here")
        assert await first.recv() == "still here"
        # A slot frees when a connection ends.
        await second.close()
        while len(server.established) > 1:
            await asyncio.sleep(0.01)
        async with wsdoctor.connect(url) as third:
            await third.send("in")
            assert await third.recv() == "in"
        await first.close()
    refused = [r for r in caplog.records if getattr(r, "ending", None) and r.ending.cause == "server.full"]  # type: ignore[attr-defined]
    assert len(refused) == 1
    assert "max_connections=2" in refused[0].ending.detail  # type: ignore[attr-defined]


def test_max_connections_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        wsdoctor.serve(echo, "127.0.0.1", 0, max_connections=0)


def test_serve_command_caps_connections() -> None:
    with serve_process("--max-connections", "1", env={**os.environ, "COLUMNS": "200"}) as server:
        url = server.url

        async def talk() -> int | None:
            async with asyncio.timeout(10), wsdoctor.connect(url) as ws:
                try:
                    await wsdoctor.connect(url)
                except wsdoctor.HandshakeError as exc:
                    await ws.send("x")
                    assert await ws.recv() == "x"
                    return exc.status
            return None

        assert asyncio.run(talk()) == 503
        server.proc.send_signal(signal.SIGTERM)
        out, _ = server.proc.communicate(timeout=30)
    assert server.proc.returncode == 0
    assert "server.full" in out
