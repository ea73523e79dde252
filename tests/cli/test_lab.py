"""The failure lab: every fault served on loopback, diagnosed by ``wsdoctor check``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import wsdoctor
from _helpers import run_wsdoctor, serve_subprocess
from wsdoctor.cli._serve import echo
from wsdoctor.diagnose.certs import Pki
from wsdoctor.diagnose.faults import FAULTS, Fault, get_fault, start_fault

QUIET = logging.getLogger("tests.lab")
QUIET.propagate = False
QUIET.addHandler(logging.NullHandler())


def expected(fault: Fault) -> tuple[int, str]:
    return fault.expected_code, fault.expected_cause


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("lab"))


async def check(url: str, *args: str) -> tuple[int, dict[str, object]]:
    code, out, _ = await run_wsdoctor("check", url, "--json", "--timeout", "2", *args)
    return code, json.loads(out)


@pytest.mark.parametrize("name", [f.name for f in FAULTS])
async def test_each_fault_is_diagnosed_by_check(name: str, pki: Pki) -> None:
    fault = get_fault(name)
    lab = await start_fault(fault, pki, logger=QUIET)
    try:
        args = list(fault.check_args)
        if lab.ca_file is not None:
            args += ["--ca", lab.ca_file]
        code, result = await check(lab.url, *args)
    finally:
        await lab.close()
    ending = result["ending"]
    assert isinstance(ending, dict)
    assert (ending["code"], ending["cause"]) == expected(fault), ending
    assert (code == 0) == (fault.name == "healthy" or expected(fault)[0] == 1000)


def test_list_faults_one_per_line() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "wsdoctor", "serve", "--list-faults"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [f.name for f in FAULTS]
    expired = next(line for line in lines if line.startswith("expired "))
    assert "1015 tls.expired" in expired and "certificate expired" in expired


def test_unknown_fault_lists_the_real_ones() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "wsdoctor", "serve", "--fault", "expird"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and "'expird' is not a fault" in out.stderr and "expired" in out.stderr
    assert "Traceback" not in out.stderr


@contextlib.asynccontextmanager
async def lab_process(*args: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, list[str]]]:
    async with serve_subprocess(*args) as proc:
        assert proc.stdout is not None
        lines: list[str] = []
        while not lines or not lines[-1].startswith("(Ctrl+C"):
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line, lines
            lines.append(line.decode().rstrip("\n"))
        yield proc, lines


@pytest.mark.parametrize(
    ("name", "code", "cause"),
    [("expired", 1015, "tls.expired"), ("no-deflate", 1010, "extension.missing")],
)
async def test_serve_fault_prints_url_ca_and_what_to_expect(name: str, code: int, cause: str, tmp_path: Path) -> None:
    """The README's examples, end to end: serve --fault, then the command it suggests."""
    ca_out = tmp_path / "ca.pem"
    async with lab_process("--fault", name, "--ca-out", str(ca_out)) as (proc, lines):
        url = next(line.split("URL: ", 1)[1] for line in lines if line.startswith("URL: "))
        expect = next(line for line in lines if line.startswith("A correct client reports"))
        assert f"{code} " in expect and f"(cause {cause})" in expect
        command = next(line.split("Try it: wsdoctor check ", 1)[1] for line in lines if line.startswith("Try it:"))
        args = command.split()[1:]
        if name == "expired":
            ca = next(line.split(": ", 1)[1] for line in lines if line.startswith("CA file to trust: "))
            assert ca == str(ca_out) and ca_out.read_bytes().startswith(b"-----BEGIN CERTIFICATE")
            assert args == ["--ca", ca]
        exit_code, result = await check(url, *args)
        ending = result["ending"]
        assert isinstance(ending, dict) and (ending["code"], ending["cause"]) == (code, cause)
        assert exit_code in (5, 7)
        proc.send_signal(signal.SIGTERM)  # a graceful stop: exit 0
        assert proc.stdout is not None
        rest = (await asyncio.wait_for(proc.stdout.read(), 30)).decode()
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    assert name == "expired" or not ca_out.exists()  # a ws:// fault has no CA to write
    # The lab's own log shows the failed connection from the server's side, in one line and explained.
    assert f" {code} " in rest


async def test_check_takes_the_clients_max_size_and_origin(pki: Pki) -> None:
    lab = await start_fault(get_fault("oversized-message"), pki, logger=QUIET)
    try:
        _, small = await check(lab.url)
        code, large = await check(lab.url, "--max-size", str(4 * 1024 * 1024))
    finally:
        await lab.close()
    assert isinstance(small["ending"], dict) and small["ending"]["cause"] == "message.too_big"
    assert code == 0 and large["ok"] is True

    async with wsdoctor.serve(echo, "127.0.0.1", 0, origins=["https://app.example"], logger=QUIET) as server:
        url = f"ws://127.0.0.1:{server.port_number}/"
        code, refused = await check(url)
        assert code == 6 and isinstance(refused["ending"], dict) and refused["ending"]["cause"] == "http.forbidden"
        code, allowed = await check(url, "--origin", "https://app.example")
        assert code == 0 and allowed["ok"] is True


@pytest.mark.parametrize(("name", "status"), [("http-502", "HTTP 502:"), ("redirect-302", "Normal Closure")])
async def test_banner_fills_the_status_its_text_quotes(name: str, status: str) -> None:
    """The 502 text reads "HTTP {status}: ..."; the banner must not print "HTTP : a proxy"."""
    async with lab_process("--fault", name) as (_proc, lines):
        expect = next(line for line in lines if line.startswith("A correct client reports"))
        assert status in expect and "HTTP :" not in expect and "<status>" not in expect
        if name == "http-502":
            # Like a real proxy, the lab names itself in Server, which check shows.
            url = next(line.split("URL: ", 1)[1] for line in lines if line.startswith("URL: "))
            exit_code, result = await check(url)
            steps = result["steps"]
            assert exit_code == 6 and isinstance(steps, list)
            assert steps[-1]["details"]["shown"]["Server"] == "wsdoctor-lab-proxy"
