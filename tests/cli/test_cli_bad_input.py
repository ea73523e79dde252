"""Bad input on the command line: one line on stderr, exit 2, never a traceback; Ctrl-C exits 130.

The cases named in the issue run as real subprocesses; the long tail runs through
CliRunner, which goes through the same ``main`` and keeps stderr apart.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import wsdoctor
from _helpers import run_wsdoctor, serve_process, serve_subprocess, wsdoctor_subprocess
from wsdoctor import WebSocketConnection
from wsdoctor.cli import main

HOST = "127.0.0.1"
LONG_LABEL = "a" * 64


class Counter:
    """A loopback listener that counts accepted connections and never answers."""

    def __init__(self) -> None:
        self.accepted = asyncio.Event()
        self.count = 0
        self.port = 0
        self.writers: list[asyncio.StreamWriter] = []

    def on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.count += 1
        self.writers.append(writer)
        self.accepted.set()


@pytest.fixture
async def counter() -> AsyncIterator[Counter]:
    c = Counter()
    server = await asyncio.start_server(c.on_connect, HOST, 0)
    c.port = server.sockets[0].getsockname()[1]
    async with server:
        yield c
        for w in c.writers:
            w.close()


def assert_one_line_usage_error(returncode: int, stdout: str, stderr: str, message: str) -> None:
    assert returncode == 2, (returncode, stdout, stderr)
    assert "Traceback" not in stdout + stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and "error:" in lines[0], stderr
    assert message in lines[0], (message, stderr)
    assert stdout == "", stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "ws://{addr}/path with space"], "space at position"),
        (["check", f"ws://{LONG_LABEL}.example/"], "DNS allows 63"),
        (["connect", f"ws://{LONG_LABEL}.example/"], "DNS allows 63"),
        (["check", "ws://{addr}/", "--timeout", "nan"], "NaN"),
        (["connect", "ws://{addr}/", "--timeout", "inf"], "infinite"),
        (["check", "ws://{addr}/", "--header", "X-A: b\r\nX-B: c"], "line break"),
        (["check", "ws://{addr}/", "--header", "Host: evil"], "comes from the URL"),
        (["connect", "ws://{addr}/", "--header", "Sec-WebSocket-Key: x"], "fresh random key"),
        (["check", "ws://{addr}/", "--subprotocol", "bad proto"], "'bad proto'"),
        (["check", "ws://{addr}/", "--subprotocol", ""], "empty"),
        (["check", "ws://127.0.0.1:99999/"], "1 to 65535"),
        (["check", "gopher://{addr}/"], "ws:// or wss://"),
        (["reference", "--out", "/proc/nope/x"], "cannot write to /proc/nope/x"),
        (["serve", "--port", "70000"], "70000"),
        (["explain", "70000"], "0 to 65535"),
        (["explain", "-1"], "negative"),
        (["explain", "foo"], "neither a close code"),
        (["compare", "1000", "-5"], "negative"),
        (["check", "ws://{addr}/", "--origin", "a\r\nX-B: c"], "line break"),
        (["connect", "ws://{addr}/", "--origin", "a\nb", "-x", "hi"], "line break"),
        (["connect", "ws://{addr}/", "-x", "hi", "--wait", "nan"], "NaN"),
        (["connect", "ws://{addr}/", "-x", "hi", "--wait", "inf"], "infinite"),
        (["check", "ws://{addr}/", "--proxy", "not a url"], "spaces or control characters"),
        (["serve", "--fault", "expired", "--port", "0", "--ca-out", "/proc/nope/ca.pem"], "'--ca-out'"),
    ],
)
async def test_bad_input_subprocess(counter: Counter, args: list[str], message: str) -> None:
    addr = f"{HOST}:{counter.port}"
    code, out, err = await run_wsdoctor(*(a.replace("{addr}", addr) for a in args))
    assert_one_line_usage_error(code, out, err, message)
    assert counter.count == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "ws://h/", "--header", "no colon"], "Name: value"),
        (["check", "ws://h/", "--header", "Bad Name: v"], "not a valid header name"),
        (["check", "ws://h/", "--header", "Upgrade: h2c"], "handshake writes it"),
        (["check", "ws://h/", "--header", "Sec-WebSocket-Protocol: chat"], "--subprotocol"),
        (["check", "ws://h/", "--header", "Sec-WebSocket-Extensions: x"], "--require-extension"),
        (["check", "ws://h/", "--header", "User-Agent: a", "--header", "User-Agent: b"], "twice"),
        (["check", "ws://h/", "--header", "X-A: caf\u00e9"], "non-ASCII"),
        (["check", "ws://h/", "--subprotocol", "a,b"], "token"),
        (["check", "ws://h/", "--require-extension", "not a name"], "extension name"),
        (["check", "ws://h/", "--timeout", "-1"], "more than 0"),
        (["check", "ws://h/", "--timeout", "0"], "more than 0"),
        (["check", "ws://h/", "--timeout", "soon"], "not a number of seconds"),
        (["check", "ws://h\tx/"], "control character"),
        (["check", "ws://:80/"], "no host"),
        (["check", "ws://h:0/"], "port 0"),
        (["check", "ws://a..b/"], "empty label"),
        (["check", "ws://[::zz]/"], "not a valid"),
        (["check", "https://h/"], "use wss://"),
        (["check"], "Missing argument"),
        (["check", "ws://h/", "--nope"], "No such option"),
        (["connect", "ws://h/", "--ca", "/nonexistent/ca.pem"], "does not exist"),
        (["connect", "ws://h/", "--lang", "fr"], "'fr'"),
        (["serve", "--port", "-1"], "-1"),
        (["serve", "--max-size", "-5"], "-5"),
        (["serve", "--max-size", "1.5"], "1.5"),
        (["serve", "--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.pem"], "does not exist"),
        (["explain", "10.5"], "not a close code"),
        (["explain", "tls.expird"], "did you mean tls.expired"),
        (["explain"], "Missing argument"),
        (["compare", "1000", "65536"], "out of range"),
        (["compare", "1000"], "Missing argument"),
        (["codes", "--lang", "xx"], "'xx'"),
        (["demo", "--bogus"], "No such option"),
        (["demo", "--timeout", "nan"], "NaN"),
        (["connect", "ws://h/", "--wait", "-1"], "0 seconds or more"),
        (["check", "ws://h/\udcff\udcfe"], "not valid UTF-8"),
        (["check", "ws://h/", "--header", "X-A: \udcff"], "the byte 0xff (not UTF-8) at position 0"),
        (["nosuch"], "No such command"),
    ],
)
def test_bad_input_in_process(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, args)
    assert_one_line_usage_error(result.exit_code, result.stdout, result.stderr, message)


def test_serve_on_an_address_it_cannot_use() -> None:
    result = CliRunner().invoke(main, ["serve", "--host", "256.0.0.1", "--port", "0"])
    assert_one_line_usage_error(result.exit_code, result.stdout, result.stderr, "cannot listen on 256.0.0.1")


def test_serve_with_a_key_that_does_not_fit(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    result = CliRunner().invoke(main, ["serve", "--tls-cert", str(junk), "--tls-key", str(junk)])
    assert_one_line_usage_error(result.exit_code, result.stdout, result.stderr, "cannot load")


def test_reference_out_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    result = CliRunner().invoke(main, ["reference", "--out", str(target / "sub")])
    assert_one_line_usage_error(result.exit_code, result.stdout, result.stderr, "cannot write to")


# ------------------------------------------------------------------- Ctrl-C


async def interrupt(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_ctrl_c_on_serve_exits_130() -> None:
    async with serve_subprocess(stderr=asyncio.subprocess.PIPE, env={**os.environ, "COLUMNS": "200"}) as proc:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert b"listening on" in line
        code, err = await interrupt(proc)
    assert code == 130 and "Traceback" not in err and err == ""


async def test_ctrl_c_on_connect_exits_130() -> None:
    connected = asyncio.Event()

    async def handler(ws: WebSocketConnection) -> None:
        connected.set()
        async for _ in ws:
            pass

    async with wsdoctor.serve(handler, HOST, 0) as server:
        async with wsdoctor_subprocess(
            "connect",
            f"ws://{HOST}:{server.port_number}/",
            stdin=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        ) as proc:
            await asyncio.wait_for(connected.wait(), 30)
            code, err = await interrupt(proc)
    assert code == 130 and "Traceback" not in err


async def test_ctrl_c_on_check_exits_130(counter: Counter) -> None:
    async with wsdoctor_subprocess(
        "check", f"ws://{HOST}:{counter.port}/", "--timeout", "30", stderr=asyncio.subprocess.PIPE
    ) as proc:
        await asyncio.wait_for(counter.accepted.wait(), 30)
        code, err = await interrupt(proc)
    assert code == 130 and "Traceback" not in err


def test_sigterm_on_serve_is_a_graceful_stop() -> None:
    with serve_process(stderr=subprocess.PIPE) as server:
        assert "listening on" in server.banner
        server.proc.send_signal(signal.SIGTERM)
        _, err = server.proc.communicate(timeout=30)
    assert server.proc.returncode == 0 and "Traceback" not in err


async def test_ctrl_c_on_a_lab_with_a_client_connected_is_quiet() -> None:
    """A raw fault server cancelled at shutdown must not print asyncio's callback traceback."""
    async with wsdoctor_subprocess(
        "serve", "--fault", "no-pong", "--port", "0", stderr=asyncio.subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None
        url = ""
        while not url:
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line, "the lab ended before printing its URL"
            if line.startswith("URL: "):
                url = line.split("URL: ", 1)[1].strip()
        # An open connection whose handler is parked reading: it is cancelled at shutdown.
        ws = await wsdoctor.connect(url, ping_interval=None, open_timeout=10)
        code, err = await interrupt(proc)
        await ws.close()
    assert code == 130 and "Traceback" not in err and "Exception in callback" not in err, err
