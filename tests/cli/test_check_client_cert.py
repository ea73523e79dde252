"""`wsdoctor check` and `wsdoctor connect` with a client certificate, as subprocesses."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import pytest

import wsdoctor
from _helpers import echo, run_wsdoctor
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
