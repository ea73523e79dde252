"""1015: a failed TLS handshake, one real certificate per cause, both sides reporting it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvloop

import wsdoctor
from _helpers import echo, send_sized, sized
from wsdoctor import WebSocketConnection
from wsdoctor.diagnose.certs import Pki

HOST = "127.0.0.1"


@pytest.fixture
def pki(tmp_path: Path) -> Iterator[Pki]:
    yield Pki(tmp_path)


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


# ------------------------------------------------------- client certificates

TLS_VERSIONS = [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2]


def only(context: ssl.SSLContext, version: ssl.TLSVersion) -> ssl.SSLContext:
    context.minimum_version = context.maximum_version = version
    return context


@pytest.mark.parametrize("version", TLS_VERSIONS, ids=["TLSv1.3", "TLSv1.2"])
async def test_server_requires_a_client_certificate(
    pki: Pki, version: ssl.TLSVersion, server_log: pytest.LogCaptureFixture
) -> None:
    server_ctx = only(pki.requiring_client_cert([HOST]), version)
    ending = await dial_failure(server_ctx, pki.client_context())
    assert (ending.code, ending.cause, ending.role) == (1015, "tls.client_cert_required", "client")
    assert "asks for a client certificate" in ending.detail
    assert "--cert" in ending.fix and "client_cert=" in ending.fix
    assert "requires a client certificate" in str(ending)
    # The dial itself, then the client's explaining probes (each one refused the same way,
    # or, for a plain-HTTP probe, logged as a client that did not speak TLS).
    served = [r.ending for r in server_log.records if hasattr(r, "ending")]
    assert served[0].cause == "tls.client_cert_required" and served[0].role == "server", served
    assert {e.cause for e in served} <= {"tls.client_cert_required", "tls.not_tls"}, served
    # The server's log speaks to whoever runs the server, not to the client's user.
    assert "--cert" not in served[0].fix and "CERT_OPTIONAL" in served[0].fix
    assert served[0].cause_text().summary.startswith("the client presented no certificate")


@pytest.mark.parametrize("version", TLS_VERSIONS, ids=["TLSv1.3", "TLSv1.2"])
async def test_client_certificate_is_presented(pki: Pki, version: ssl.TLSVersion) -> None:
    cert, key = pki.client_cert()
    server_ctx = only(pki.requiring_client_cert([HOST]), version)
    seen: list[object] = []

    async def who(ws: WebSocketConnection) -> None:
        assert ws.transport is not None
        seen.append(ws.transport.get_extra_info("peercert"))
        await echo(ws)

    async with asyncio.timeout(15), wsdoctor.serve(who, HOST, 0, ssl=server_ctx) as server:
        url = f"wss://{HOST}:{server.port_number}/"
        # The convenient way: a default context with the certificate, trusting the system's CAs...
        with pytest.raises(wsdoctor.TLSHandshakeError) as info:
            await wsdoctor.connect(url, client_cert=cert, client_key=key, open_timeout=5)
        assert info.value.ending.cause == "tls.untrusted"  # the demo root is not a system CA
        # ... and the context way, for a private CA.
        context = pki.client_context()
        context.load_cert_chain(cert, key)
        async with wsdoctor.connect(url, ssl=context) as ws:
            await ws.send("mutual")
            assert await ws.recv() == "mutual"
    assert seen and "client.wsdoctor.test" in str(seen[0])


async def test_client_certificate_arguments_are_checked(pki: Pki, tmp_path: Path) -> None:
    cert, key = pki.client_cert()
    with pytest.raises(ValueError, match="wss://"):
        wsdoctor.connect(f"ws://{HOST}:1/", client_cert=cert, client_key=key)
    with pytest.raises(ValueError, match="load_cert_chain"):
        wsdoctor.connect(f"wss://{HOST}:1/", ssl=pki.client_context(), client_cert=cert)
    with pytest.raises(ValueError, match="client_cert="):
        wsdoctor.connect(f"wss://{HOST}:1/", client_key=key)
    with pytest.raises(ValueError, match="cannot load the client certificate"):
        wsdoctor.connect(f"wss://{HOST}:1/", client_cert=tmp_path / "missing.pem")
    with pytest.raises(ValueError, match="cannot load the client certificate"):
        wsdoctor.connect(f"wss://{HOST}:1/", client_cert=key, client_key=cert)


class AlertingServer:
    """A blocking TLS server on a thread: OpenSSL writes its alerts to the socket before closing.

    The asyncio server drops a connection whose handshake failed without sending
    the alert. Servers such as nginx send it and then close lingeringly (they read
    what the client already sent, so that the close is a FIN, not a reset that
    would destroy the alert in flight); this server does the same.
    """

    def __init__(self, context: ssl.SSLContext, connections: int = 4) -> None:
        self.context = context
        self.connections = connections
        self.errors: list[str] = []
        self.sock = socket.create_server((HOST, 0))
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        for _ in range(self.connections):
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(10)
            raw = conn.dup()  # wrap_socket takes conn's descriptor; this one outlives a failed handshake
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(4096)
            except (OSError, ssl.SSLError) as exc:
                self.errors.append(str(exc))
                self._linger(raw)
            finally:
                conn.close()
                raw.close()

    @staticmethod
    def _linger(conn: socket.socket) -> None:
        conn.settimeout(0.5)
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_WR)
            while conn.recv(4096):
                pass

    def __enter__(self) -> AlertingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
        self.thread.join(15)


@pytest.mark.parametrize("version", TLS_VERSIONS, ids=["TLSv1.3", "TLSv1.2"])
async def test_client_certificate_alert_from_a_server_that_sends_it(pki: Pki, version: ssl.TLSVersion) -> None:
    with AlertingServer(only(pki.requiring_client_cert([HOST]), version)) as server:
        async with asyncio.timeout(15):
            with pytest.raises(wsdoctor.TLSHandshakeError) as info:
                await wsdoctor.connect(f"wss://{HOST}:{server.port}/", ssl=pki.client_context(), open_timeout=5)
    ending = info.value.ending
    assert (ending.code, ending.cause) == (1015, "tls.client_cert_required")
    if version == ssl.TLSVersion.TLSv1_3:
        # The certificate_required alert itself, read with the first bytes after the handshake.
        assert "CERTIFICATE_REQUIRED" in ending.detail.upper()
    else:
        # handshake_failure after a CertificateRequest.
        assert "HANDSHAKE_FAILURE" in ending.detail.upper() and "CertificateRequest" in ending.detail
    assert any("CERTIFICATE" in e.upper() for e in server.errors), server.errors


# ------------------------------------------------------ purpose and the chain


async def test_leaf_without_server_auth(pki: Pki) -> None:
    ending = await dial_failure(pki.wrong_purpose([HOST]), pki.client_context())
    assert (ending.code, ending.cause) == (1015, "tls.wrong_purpose")
    assert "clientAuth, not serverAuth" in ending.detail and HOST in ending.detail
    assert "serverAuth" in ending.fix
    assert "serverAuth" in ending.cause_text("es").fix


async def test_private_ca_missing_intermediate_says_both(pki: Pki) -> None:
    """No AIA URL: an unsent intermediate and an untrusted root look the same to the client."""
    ending = await dial_failure(pki.unsent_intermediate([HOST]), pki.client_context())
    issuer = "'wsdoctor demo intermediate CA'"
    # The issuer's name says "intermediate": the missing intermediate comes first.
    assert ending.cause == "tls.incomplete_chain"
    assert "likelier a missing intermediate: its name says 'intermediate'" in ending.detail
    assert f"if {issuer} is an intermediate, the server must send it (full chain)" in ending.detail
    assert ending.detail.index("is an intermediate") < ending.detail.index("is a root, trust it on the client")
    fix = ending.fix
    assert fix.startswith("If wsdoctor demo intermediate CA is an intermediate CA, the server must send it")
    assert "trust it on the client" in fix
    es = ending.cause_text("es").fix
    assert es.startswith("Si wsdoctor demo intermediate CA es una CA intermedia") and "raíz" in es


async def test_private_root_unknown_says_both_root_first(pki: Pki) -> None:
    ending = await dial_failure(pki.untrusted([HOST]), pki.client_context())
    assert ending.cause == "tls.untrusted"
    assert "likelier an untrusted root" in ending.detail
    assert ending.detail.index("is a root, trust it on the client") < ending.detail.index("is an intermediate")
    assert ending.fix.startswith("If untrusted rogue CA is a root CA, trust it on the client")
    assert "full chain" in ending.fix


@pytest.mark.parametrize("version", TLS_VERSIONS, ids=["TLSv1.3", "TLSv1.2"])
async def test_client_certificate_the_server_does_not_trust(pki: Pki, version: ssl.TLSVersion) -> None:
    from cryptography.x509.oid import ExtendedKeyUsageOID

    from wsdoctor.diagnose.certs import issue

    rogue = issue(pki.rogue, ["client.rogue.test"], purposes=[ExtendedKeyUsageOID.CLIENT_AUTH])
    cert, key = rogue.write(pki.directory, "rogue-client")
    client_ctx = pki.client_context()
    client_ctx.load_cert_chain(cert, key)
    ending = await dial_failure(only(pki.requiring_client_cert([HOST]), version), client_ctx)
    assert (ending.code, ending.cause) == (1015, "tls.client_cert_required")
    assert "or one the server does not accept" in ending.detail


@pytest.mark.parametrize("api", ["send", "send_now"])
def test_large_messages_over_tls(pki: Pki, api: str) -> None:
    # A large bytes message leaves as its header and the payload in one writelines()
    # (aio/_wire.py): over TLS that call goes to the SSL transport, which must keep the
    # two parts in order and whole; asyncio's and uvloop's SSL transports both.
    sizes = [40_000, 65_536, 1_500_000]

    async def handler(ws: wsdoctor.WebSocketConnection) -> None:
        await send_sized(ws, sizes, api)
        await ws.wait_closed()

    async def scenario() -> None:
        async with (
            asyncio.timeout(20),
            wsdoctor.serve(handler, HOST, 0, ssl=pki.healthy([HOST]), max_size=1 << 22) as server,
        ):
            async with wsdoctor.connect(
                f"wss://{HOST}:{server.port_number}/", ssl=pki.client_context(), max_size=1 << 22
            ) as ws:
                for n in sizes:
                    assert await ws.recv() == sized(n)

    asyncio.run(scenario())
    uvloop.run(scenario())
