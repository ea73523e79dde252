"""1015: a failed TLS handshake, one real certificate per cause, both sides reporting it."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

import wsdoctor
from wsdoctor import WebSocketConnection
from wsdoctor.diagnose.certs import Pki

HOST = "127.0.0.1"


@pytest.fixture
def pki(tmp_path: Path) -> Iterator[Pki]:
    yield Pki(tmp_path)


async def echo(ws: WebSocketConnection) -> None:
    async for message in ws:
        await ws.send(message)


@pytest.fixture
def server_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, "wsdoctor.server")
    return caplog


async def dial_failure(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, host: str = HOST) -> wsdoctor.Ending:
    async with asyncio.timeout(15), wsdoctor.serve(echo, HOST, 0, ssl=server_ctx) as server:
        with pytest.raises(wsdoctor.TLSHandshakeError) as info:
            await wsdoctor.connect(f"wss://{host}:{server.port_number}/", ssl=client_ctx, open_timeout=5)
    ending = info.value.ending
    assert ending.code == 1015 or ending.cause == "handshake.timeout"
    return ending


async def test_healthy_tls_echo_and_chain_details(pki: Pki) -> None:
    steps: list[wsdoctor.aio.client.Step] = []
    async with asyncio.timeout(15), wsdoctor.serve(echo, HOST, 0, ssl=pki.healthy([HOST, "localhost"])) as server:
        async with wsdoctor.connect(
            f"wss://{HOST}:{server.port_number}/", ssl=pki.client_context(), trace=steps.append
        ) as ws:
            await ws.send("over tls")
            assert await ws.recv() == "over tls"
    tls = next(s for s in steps if s.name == "tls")
    assert tls.ok and tls.details["version"].startswith("TLSv1.")
    chain = tls.details["chain"]
    assert len(chain) == 2  # leaf and intermediate
    assert chain[0].names == (HOST, "localhost") and chain[1].subject == "wsdoctor demo intermediate CA"


async def test_expired(pki: Pki) -> None:
    ending = await dial_failure(pki.expired([HOST]), pki.client_context())
    assert ending.cause == "tls.expired"
    assert "expired on 20" in ending.detail and HOST in ending.detail
    assert "Renew" in ending.fix


async def test_not_yet_valid(pki: Pki) -> None:
    ending = await dial_failure(pki.not_yet_valid([HOST]), pki.client_context())
    assert ending.cause == "tls.not_yet_valid" and "valid only from" in ending.detail


async def test_untrusted_ca(pki: Pki) -> None:
    ending = await dial_failure(pki.untrusted([HOST]), pki.client_context())
    assert ending.cause == "tls.untrusted" and "untrusted rogue CA" in ending.detail


async def test_self_signed(pki: Pki) -> None:
    ending = await dial_failure(pki.self_signed([HOST]), pki.client_context())
    assert ending.cause == "tls.self_signed"


async def test_hostname_mismatch(pki: Pki) -> None:
    ending = await dial_failure(pki.healthy(["other.example", "www.other.example"]), pki.client_context())
    assert ending.cause == "tls.hostname"
    assert ending.detail == "dialed '127.0.0.1', the certificate is for: other.example, www.other.example"


async def test_incomplete_chain(pki: Pki) -> None:
    ending = await dial_failure(pki.incomplete_chain([HOST]), pki.client_context())
    assert ending.cause == "tls.incomplete_chain"
    assert "sent 1 certificate" in ending.detail and "intermediate CA" in ending.detail
    assert "full chain" in ending.fix


async def test_version_mismatch(pki: Pki) -> None:
    server_ctx = pki.healthy([HOST])
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    client_ctx = pki.client_context()
    client_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ending = await dial_failure(server_ctx, client_ctx)
    assert ending.cause == "tls.version"


async def test_port_that_does_not_speak_tls() -> None:
    async with asyncio.timeout(15), wsdoctor.serve(echo, HOST, 0) as plain:
        with pytest.raises(wsdoctor.TLSHandshakeError) as info:
            await wsdoctor.connect(f"wss://{HOST}:{plain.port_number}/", open_timeout=5)
    assert (info.value.ending.code, info.value.ending.cause) == (1015, "tls.not_tls")


async def test_tls_failures_are_not_retried(pki: Pki) -> None:
    """One dial, one failure: the server sees exactly one rejected handshake plus the explaining peek."""
    accepted: list[object] = []

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer.get_extra_info("peername"))
        writer.close()

    server = await asyncio.start_server(count, HOST, 0, ssl=pki.expired([HOST]))
    async with server, asyncio.timeout(15):
        with pytest.raises(wsdoctor.TLSHandshakeError):
            await wsdoctor.connect(f"wss://{HOST}:{server.sockets[0].getsockname()[1]}/", ssl=pki.client_context())
        await asyncio.sleep(0.1)
    assert len(accepted) <= 1  # the failed dial never reaches the app; only the peek may


async def test_server_logs_client_rejecting_its_certificate(pki: Pki, server_log: pytest.LogCaptureFixture) -> None:
    await dial_failure(pki.untrusted([HOST]), pki.client_context())
    endings = [r.ending for r in server_log.records if hasattr(r, "ending")]
    assert any(e.code == 1015 and e.cause == "tls.client_rejected" for e in endings), endings


async def test_server_logs_plain_client_on_tls_port(pki: Pki, server_log: pytest.LogCaptureFixture) -> None:
    async with asyncio.timeout(15), wsdoctor.serve(echo, HOST, 0, ssl=pki.healthy([HOST])) as server:
        with pytest.raises(wsdoctor.DialError):
            await wsdoctor.connect(f"ws://{HOST}:{server.port_number}/", open_timeout=3)
        await asyncio.sleep(0.2)
    endings = [r.ending for r in server_log.records if hasattr(r, "ending")]
    assert any(e.cause == "tls.not_tls" for e in endings), endings


async def test_server_logs_version_mismatch(pki: Pki, server_log: pytest.LogCaptureFixture) -> None:
    server_ctx = pki.healthy([HOST])
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    client_ctx = pki.client_context()
    client_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    await dial_failure(server_ctx, client_ctx)
    endings = [r.ending for r in server_log.records if hasattr(r, "ending")]
    assert any(e.cause == "tls.version" for e in endings), endings


async def test_ipv6_tls(pki: Pki) -> None:
    async with asyncio.timeout(15), wsdoctor.serve(echo, "::1", 0, ssl=pki.healthy(["::1"])) as server:
        async with wsdoctor.connect(f"wss://[::1]:{server.port_number}/", ssl=pki.client_context()) as ws:
            await ws.send("v6 tls")
            assert await ws.recv() == "v6 tls"
