"""The wsdoctor command, run for real: CliRunner for the quick ones, subprocesses for the rest."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import wsdoctor
from _helpers import echo, run_wsdoctor, serve_process, wsdoctor_subprocess
from wsdoctor import WebSocketConnection
from wsdoctor.cli import main
from wsdoctor.diagnose.certs import Pki

HOST = "127.0.0.1"


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


# --------------------------------------------------------------- knowledge


def test_explain_english_and_plain_when_piped() -> None:
    code, out = run_cli("explain", "1010")
    assert code == 0
    assert "1010 Mandatory Extension" in out
    for heading in ("Description", "When you'll see it", "How to fix it"):
        assert heading in out
    assert "Sec-WebSocket-Extensions" in out
    assert "\x1b[" not in out


def test_explain_spanish() -> None:
    code, out = run_cli("explain", "1006", "--lang", "es")
    assert code == 0
    assert "1006 Cierre anómalo" in out
    for heading in ("Descripción", "Cuándo lo verás", "Cómo solucionarlo"):
        assert heading in out


def test_explain_json_and_private_range() -> None:
    code, out = run_cli("explain", "4001", "--json")
    data = json.loads(out)
    assert code == 0 and data["code"] == 4001 and data["key"] == "4000-4999" and data["sendable"] is True


@pytest.mark.parametrize("bad", ["abc", "-3", "10.5"])
def test_explain_bad_code(bad: str) -> None:
    code, out = run_cli("explain", bad)
    assert code == 2 and "error:" in out


def test_compare_text_and_json() -> None:
    code, out = run_cli("compare", "1010", "1015")
    assert code == 0
    assert "Key differences" in out and "When each applies" in out
    assert "1010 Mandatory Extension" in out and "1015 TLS Handshake Failure" in out
    code, out = run_cli("compare", "1006", "1000", "--json", "--lang", "es")
    data = json.loads(out)
    assert {d["aspect"] for d in data["differences"]} >= {"En la red", "Se puede enviar"}
    assert len(data["when_each"]) == 2


def test_compare_spanish_titles() -> None:
    code, out = run_cli("compare", "1001", "1012", "--lang", "es")
    assert code == 0 and "Diferencias clave" in out and "Cuándo aplica cada uno" in out


def test_codes_table() -> None:
    code, out = run_cli("codes")
    assert code == 0 and "4000-4999" in out and "Normal Closure" in out
    code, out = run_cli("codes", "--json", "--lang", "es")
    assert code == 0 and len(json.loads(out)) == 24


def test_help_has_examples() -> None:
    for command in ("explain", "compare", "codes", "check", "connect", "serve", "demo", "reference"):
        code, out = run_cli(command, "--help")
        assert code == 0 and "Examples:" in out, command


def test_python_dash_m() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "wsdoctor", "explain", "1015"], capture_output=True, text=True, timeout=60, check=True
    )
    assert "1015 TLS Handshake Failure" in out.stdout


# -------------------------------------------------------------------- check


async def check_json(*args: str) -> tuple[int, dict[str, object]]:
    code, out, _ = await run_wsdoctor("check", *args, "--json")
    return code, json.loads(out)


async def test_check_healthy_json_shape() -> None:
    async with wsdoctor.serve(echo, HOST, 0) as server:
        code, data = await check_json(f"ws://{HOST}:{server.port_number}/")
    assert code == 0 and data["ok"] is True
    assert set(data) == {"url", "ok", "steps", "ending"}
    steps = data["steps"]
    assert isinstance(steps, list)
    assert [s["name"] for s in steps] == ["dns", "tcp", "http", "negotiate", "ping", "close"]
    assert all(set(s) == {"name", "ok", "ms", "details"} and s["ok"] for s in steps)
    ending = data["ending"]
    assert isinstance(ending, dict)
    assert {"code", "name", "cause", "reason", "explanation", "fix"} <= set(ending)
    assert ending["code"] == 1000


async def test_check_1010_exit_code_and_text() -> None:
    async with wsdoctor.serve(echo, HOST, 0, compression=None) as server:
        url = f"ws://{HOST}:{server.port_number}/"
        code, data = await check_json(url, "--require-extension", "permessage-deflate")
        text_code, output, _ = await run_wsdoctor("check", url, "--require-extension", "permessage-deflate")
    assert code == 7 and text_code == 7
    ending = data["ending"]
    assert isinstance(ending, dict) and (ending["code"], ending["cause"]) == (1010, "extension.missing")
    assert "Negotiation: FAILED" in output and "1010 Mandatory Extension" in output
    assert "Sec-WebSocket-Extensions" in output and "\x1b[" not in output


async def test_check_1015_expired(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    async with wsdoctor.serve(echo, HOST, 0, ssl=pki.expired([HOST])) as server:
        code, data = await check_json(f"wss://{HOST}:{server.port_number}/", "--ca", str(pki.ca_file))
    assert code == 5
    ending = data["ending"]
    assert isinstance(ending, dict) and (ending["code"], ending["cause"]) == (1015, "tls.expired")
    assert "expired on" in str(ending["detail"])


async def test_check_healthy_tls_details(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    async with wsdoctor.serve(echo, HOST, 0, ssl=pki.healthy([HOST])) as server:
        code, data = await check_json(f"wss://{HOST}:{server.port_number}/", "--ca", str(pki.ca_file))
    assert code == 0
    tls = next(s for s in data["steps"] if s["name"] == "tls")  # type: ignore[attr-defined]
    assert tls["details"]["version"].startswith("TLSv1")
    assert len(tls["details"]["chain"]) == 2 and tls["details"]["chain"][0]["names"] == [HOST]


async def test_check_refused_and_usage_errors() -> None:
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    code, data = await check_json(f"ws://{HOST}:{port}/")
    assert code == 4 and data["ending"]["cause"] == "tcp.refused"  # type: ignore[index]
    for args, message in [
        (["check", "http://example.com/"], "use ws://"),
        (["check", "ws://h/", "--ca", "/nonexistent/ca.pem"], "does not exist"),
        (["check", "ws://h/", "--header", "no colon"], "Name: value"),
    ]:
        exit_code, out = run_cli(*args)
        assert exit_code == 2 and message in out, (args, out)


# ------------------------------------------------------------------ connect


async def test_connect_piped() -> None:
    async with wsdoctor.serve(echo, HOST, 0) as server:
        code, out, _ = await run_wsdoctor(
            "connect", f"ws://{HOST}:{server.port_number}/", stdin=b"hello\n/binary 00ff\nworld\n"
        )
    assert code == 0
    assert out.splitlines()[:3] == ["hello", "[binary, 2 bytes] 00 ff", "world"]


async def test_connect_explains_server_close() -> None:
    async def closer(ws: WebSocketConnection) -> None:
        await ws.recv()
        await ws.close(4001, "go away")

    async with wsdoctor.serve(closer, HOST, 0) as server:
        async with wsdoctor_subprocess(
            "connect",
            f"ws://{HOST}:{server.port_number}/",
            stdin=asyncio.subprocess.PIPE,
            stdout=None,
            stderr=asyncio.subprocess.PIPE,
        ) as proc:
            assert proc.stdin is not None
            proc.stdin.write(b"hi\n")
            await proc.stdin.drain()
            out = await asyncio.wait_for(proc.stderr.read(), 60) if proc.stderr else b""
            await asyncio.wait_for(proc.wait(), 30)
    text = out.decode()
    assert proc.returncode == 1
    assert "4001" in text and "go away" in text and "closed.by_peer" in text


# -------------------------------------------------------------------- serve


def test_serve_logs_endings_and_shuts_down() -> None:
    with serve_process(env={**os.environ, "COLUMNS": "200"}) as server:
        assert "listening on ws://127.0.0.1:" in server.banner

        async def talk() -> None:
            async with wsdoctor.connect(server.url) as ws:
                await ws.send("x")
                assert await ws.recv() == "x"
                await ws.close(4002, "client done")

        asyncio.run(talk())
        server.proc.send_signal(signal.SIGINT)
        out, _ = server.proc.communicate(timeout=30)
    assert server.proc.returncode == 130  # stopped by Ctrl-C, as shells report it
    assert "4002" in out and "client done" in out and "closed.by_peer" in out
    assert "shutting down" in out


# --------------------------------------------------------------------- demo


def test_demo_passes_and_reports_every_scenario() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "wsdoctor", "demo", "--json"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads(out.stdout)
    assert data["ok"] is True
    found = {s["name"]: (s["check"]["ending"]["code"], s["check"]["ending"]["cause"]) for s in data["scenarios"]}
    assert found == {
        "healthy": (1000, "closed.locally"),
        "mandatory-extension": (1010, "extension.missing"),
        "expired-cert": (1015, "tls.expired"),
        "untrusted-ca": (1015, "tls.untrusted"),
        "hostname-mismatch": (1015, "tls.hostname"),
        "incomplete-chain": (1015, "tls.incomplete_chain"),
        "forbidden": (1006, "http.forbidden"),
        "no-pong": (1011, "keepalive.timeout"),
        "internal-error": (1011, "closed.by_peer"),
    }


async def test_check_in_spanish() -> None:
    async with wsdoctor.serve(echo, HOST, 0, compression=None) as server:
        code, text, _ = await run_wsdoctor(
            "check", f"ws://{HOST}:{server.port_number}/", "--require-extension", "permessage-deflate", "--lang", "es"
        )
    assert code == 7
    assert "Negociación: FALLÓ" in text and "1010 Extensión obligatoria" in text and "Cómo solucionarlo" in text
