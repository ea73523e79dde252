"""TLS 1.2 is the minimum on both sides because wsdoctor says so, not by inheritance.

Each peer's own context here allows TLS 1.0 and 1.1 (security level 0, which this
OpenSSL accepts), so a refused TLS 1.1 handshake can only come from wsdoctor's setting;
lowering ``tls_min_version`` lets the same peer in.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import warnings
from collections.abc import AsyncIterator

import pytest
import trustme
import websockets

import wsdoctor
from _helpers import echo

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # naming the old versions warns
    TLS1_0, TLS1_1 = ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1


def permissive(context: ssl.SSLContext, *, only_old: bool = False) -> ssl.SSLContext:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = TLS1_0
        if only_old:
            context.maximum_version = TLS1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA, *, only_old: bool = False) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return permissive(context, only_old=only_old)


def client_context(ca: trustme.CA, *, only_old: bool = False) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(context)
    return permissive(context, only_old=only_old)


def test_defaults_are_tls_1_2(ca: trustme.CA) -> None:
    context = server_context(ca)
    wsdoctor.serve(echo, "127.0.0.1", 0, ssl=context)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


async def tls11_client(port: int, ca: trustme.CA) -> str:
    """A raw TLS 1.1-only client; returns the version it got."""
    _, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=client_context(ca, only_old=True), server_hostname="127.0.0.1"
    )
    version = writer.get_extra_info("ssl_object").version()
    writer.close()
    return str(version)


async def test_server_refuses_tls_1_1(ca: trustme.CA, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "wsdoctor.server")
    async with asyncio.timeout(10), wsdoctor.serve(echo, "127.0.0.1", 0, ssl=server_context(ca)) as server:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await tls11_client(server.port_number, ca)
        while not any(hasattr(r, "ending") for r in caplog.records):
            await asyncio.sleep(0.01)
    ending = next(r.ending for r in caplog.records if hasattr(r, "ending"))  # type: ignore[attr-defined]
    assert (ending.code, ending.cause) == (1015, "tls.version")


# Asking for TLS 1.1 makes Python warn that it is deprecated, as it should.
old_version_warning = pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")


@old_version_warning
async def test_server_allows_tls_1_1_when_configured(ca: trustme.CA) -> None:
    context = server_context(ca)
    async with asyncio.timeout(10), wsdoctor.serve(echo, "127.0.0.1", 0, ssl=context, tls_min_version=TLS1_1) as srv:
        assert await tls11_client(srv.port_number, ca) == "TLSv1.1"


@pytest.fixture
async def tls11_server(ca: trustme.CA) -> AsyncIterator[int]:
    async def handler(ws: websockets.ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async with websockets.serve(handler, "127.0.0.1", 0, ssl=server_context(ca, only_old=True)) as server:
        yield server.sockets[0].getsockname()[1]


async def test_client_refuses_a_tls_1_1_server(ca: trustme.CA, tls11_server: int) -> None:
    context = client_context(ca)
    async with asyncio.timeout(10):
        with pytest.raises(wsdoctor.TLSHandshakeError) as info:
            await wsdoctor.connect(f"wss://127.0.0.1:{tls11_server}/", ssl=context)
    # The server ends the handshake without an alert the client can name; the next test
    # shows that the same server is accepted once the minimum is lowered.
    assert info.value.ending.code == 1015 and info.value.ending.cause.startswith("tls.")
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


@old_version_warning
async def test_client_allows_a_tls_1_1_server_when_configured(ca: trustme.CA, tls11_server: int) -> None:
    url = f"wss://127.0.0.1:{tls11_server}/"
    async with asyncio.timeout(10), wsdoctor.connect(url, ssl=client_context(ca), tls_min_version=TLS1_1) as ws:
        await ws.send("old but allowed")
        assert await ws.recv() == "old but allowed"
