"""`wsdoctor check` and `wsdoctor connect` with a client certificate, as subprocesses."""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path

import pytest

import wsdoctor
from _helpers import echo, listening_url, run_wsdoctor, serve_subprocess
from wsdoctor import WebSocketConnection
from wsdoctor.diagnose.certs import Pki

HOST = "127.0.0.1"


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2], ids=["TLSv1.3", "TLSv1.2"])
async def test_check_with_and_without_a_client_certificate(tmp_path: Path, version: ssl.TLSVersion) -> None:
    pki = Pki(tmp_path)
    cert, key = pki.client_cert()
    server_ctx = pki.requiring_client_cert([HOST])
    server_ctx.maximum_version = version
    async with wsdoctor.serve(echo, HOST, 0, ssl=server_ctx) as server:
        url = f"wss://{HOST}:{server.port_number}/"
        ca = ("--ca", str(pki.ca_file))
        without = await run_wsdoctor("check", url, *ca, "--json")
        with_cert = await run_wsdoctor("check", url, *ca, "--cert", str(cert), "--key", str(key), "--json")
        text = await run_wsdoctor("check", url, *ca)
    code, out, _ = without
    assert code == 5
    ending = json.loads(out)["ending"]
    assert (ending["code"], ending["cause"]) == (1015, "tls.client_cert_required")
    assert "--cert FILE --key FILE" in ending["fix"]
    code, out, _ = with_cert
    assert code == 0 and json.loads(out)["ok"] is True
    code, out, _ = text
    assert code == 5 and "1015 TLS Handshake Failure" in out and "(Cause: tls.client_cert_required)" in out
    assert "The server requires a client certificate" in out


async def test_connect_with_a_client_certificate(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    cert, key = pki.client_cert()
    async with wsdoctor.serve(echo, HOST, 0, ssl=pki.requiring_client_cert([HOST])) as server:
        url = f"wss://{HOST}:{server.port_number}/"
        code, out, _ = await run_wsdoctor(
            "connect", url, "--ca", str(pki.ca_file), "--cert", str(cert), "--key", str(key), stdin=b"over mtls\n"
        )
        refused = await run_wsdoctor("connect", url, "--ca", str(pki.ca_file), "--lang", "es", stdin=b"x\n")
    assert code == 0 and "over mtls" in out
    code, out, err = refused  # the ending goes to stderr; the exit status names the TLS step, as check's does
    assert code == 5 and out == "" and "tls.client_cert_required" in err and "certificado de cliente" in err


async def test_cert_and_key_usage_errors(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    cert, key = pki.client_cert()
    cases = [
        (["check", "wss://127.0.0.1:1/", "--key", str(key)], "--key needs --cert"),
        (["check", "ws://127.0.0.1:1/", "--cert", str(cert)], "needs a wss:// URL"),
        (["check", "wss://127.0.0.1:1/", "--cert", str(key), "--key", str(cert)], "cannot load"),
        (["connect", "wss://127.0.0.1:1/", "--cert", str(tmp_path / "none.pem")], "does not exist"),
    ]
    for args, message in cases:
        code, out, err = await run_wsdoctor(*args)
        assert code == 2, (args, out, err)
        assert message in err and "Traceback" not in err, (args, err)


async def test_serve_requires_client_certificates_with_tls_client_ca(tmp_path: Path) -> None:
    """`wsdoctor serve --tls-client-ca`: check with --cert/--key passes, check without one is told why."""
    pki = Pki(tmp_path)
    server_cert, server_key = pki.leaf([HOST]).write(tmp_path, "server")
    cert, key = pki.client_cert()
    async with serve_subprocess(
        "--lang",
        "en",
        "--tls-cert",
        str(server_cert),
        "--tls-key",
        str(server_key),
        "--tls-client-ca",
        str(pki.ca_file),
        stderr=asyncio.subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None
        banner = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        url = listening_url(banner)
        assert url.startswith("wss://")
        notice = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert "must present a certificate" in notice and str(pki.ca_file) in notice
        ca = ("--ca", str(pki.ca_file))
        with_cert = await run_wsdoctor("check", url, *ca, "--cert", str(cert), "--key", str(key), "--json")
        without = await run_wsdoctor("check", url, *ca, "--json")
        rogue_dir = tmp_path / "rogue"
        rogue_dir.mkdir()
        rogue = Pki(rogue_dir)  # a certificate from a CA the server does not trust is no better than none
        rogue_cert, rogue_key = rogue.client_cert()
        stranger = await run_wsdoctor("check", url, *ca, "--cert", str(rogue_cert), "--key", str(rogue_key), "--json")
        proc.terminate()
        await asyncio.wait_for(proc.communicate(), 30)
    code, out, _ = with_cert
    assert code == 0 and json.loads(out)["ok"] is True
    for code, out, _ in (without, stranger):
        assert code == 5
        ending = json.loads(out)["ending"]
        assert (ending["code"], ending["cause"]) == (1015, "tls.client_cert_required")
    assert proc.returncode == 0


async def test_tls_client_ca_usage_errors(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    server_cert, server_key = pki.leaf([HOST]).write(tmp_path, "server")
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("not a certificate")
    tls = ["--tls-cert", str(server_cert), "--tls-key", str(server_key)]
    cases = [
        (["serve", "--port", "0", "--tls-client-ca", str(pki.ca_file)], "needs --tls-cert"),
        (["serve", "--port", "0", *tls, "--tls-client-ca", str(not_pem)], "cannot load"),
        (["serve", "--fault", "expired", "--tls-client-ca", str(pki.ca_file)], "brings its own server"),
    ]
    for args, message in cases:
        code, out, err = await run_wsdoctor(*args)
        assert code == 2, (args, out, err)
        assert message in err and "Traceback" not in err, (args, err)


async def test_the_handler_sees_the_verified_client_certificate(tmp_path: Path) -> None:
    """What the serve() documentation promises a mutual-TLS server: the peer's certificate, verified."""
    pki = Pki(tmp_path)
    cert, key = pki.client_cert("alice.wsdoctor.test")
    subjects: list[object] = []

    async def who(ws: WebSocketConnection) -> None:
        assert ws.transport is not None
        subjects.append(ws.transport.get_extra_info("peercert")["subject"])
        await ws.close()

    client = pki.client_context()
    client.load_cert_chain(str(cert), str(key))
    async with wsdoctor.serve(who, HOST, 0, ssl=pki.requiring_client_cert([HOST])) as server:
        async with wsdoctor.connect(f"wss://{HOST}:{server.port_number}/", ssl=client) as ws:
            ending = await asyncio.wait_for(ws.wait_closed(), 10)
    assert ending.code == 1000
    [subject] = subjects
    assert (("commonName", "alice.wsdoctor.test"),) in subject  # type: ignore[operator]
