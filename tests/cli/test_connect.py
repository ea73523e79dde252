"""``wsdoctor connect`` against real servers on loopback: piped, scripted and on a terminal."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import wsdoctor
from _helpers import run_wsdoctor
from wsdoctor import WebSocketConnection
from wsdoctor.cli._connect import describe_binary
from wsdoctor.protocol._redact import redact_header

HOST = "127.0.0.1"


class Recorder:
    """An echo handler that also remembers what it received and the request headers."""

    def __init__(self) -> None:
        self.received: list[str | bytes] = []
        self.headers: list[tuple[str, str]] = []

    async def __call__(self, ws: WebSocketConnection) -> None:
        self.headers = list(ws.request_headers)
        with contextlib.suppress(wsdoctor.ConnectionClosed):
            async for message in ws:
                self.received.append(message)
                await ws.send(message)


@contextlib.asynccontextmanager
async def echo_server(handler: object | None = None) -> AsyncIterator[tuple[str, Recorder]]:
    recorder = Recorder()
    async with wsdoctor.serve(handler or recorder, HOST, 0) as server:  # type: ignore[arg-type]
        yield f"ws://{HOST}:{server.port_number}/", recorder


async def run_connect(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    return await run_wsdoctor("connect", *args, stdin=stdin)


def test_mask_and_binary_helpers() -> None:
    assert redact_header("Authorization", "Bearer abc.def") == "Bearer ***"
    assert redact_header("proxy-authorization", "Basic dXNlcjpwdw==") == "Basic ***"
    assert redact_header("Cookie", "session=s3cr3t; theme=dark") == "***"
    assert redact_header("Set-Cookie", "id=42; Path=/; HttpOnly") == "***"
    assert redact_header("X-Trace", "visible") == "visible"
    assert describe_binary(b"\x00\xff\x10") == "[binary, 3 bytes] 00 ff 10"
    assert describe_binary(b"\x01") == "[binary, 1 byte] 01"


async def test_execute_sends_in_order_and_splits_stdout_from_stderr() -> None:
    async with echo_server() as (url, recorder):
        code, out, err = await run_connect(url, "-x", "hello", "-x", "/binary 00ff10", "-x", "//x", "-w", "0.5")
    assert code == 0, err
    assert out.splitlines() == ["hello", "[binary, 3 bytes] 00 ff 10", "/x"]
    assert recorder.received == ["hello", b"\x00\xff\x10", "/x"]
    assert "connected to" in err and "connected to" not in out


async def test_wait_keeps_replies_that_come_late() -> None:
    async def slow(ws: WebSocketConnection) -> None:
        async for message in ws:
            await asyncio.sleep(1.0)
            await ws.send(f"answer to {message}")

    async with echo_server(slow) as (url, _):
        code, out, err = await run_connect(url, "--wait", "3", stdin=b"query\n")
        assert code == 0, err
        assert out.splitlines() == ["answer to query"]
        code, out, _ = await run_connect(url, "-x", "query", "--wait", "0.1")
    assert code == 0 and out == ""


async def test_bad_commands_get_usage_and_the_session_goes_on() -> None:
    async with echo_server() as (url, recorder):
        code, out, err = await run_connect(
            url, "-x", "/close abc", "-x", "/binary zz", "-x", "/close 1006", "-x", "/nope", "-x", "after", "-w", "0.5"
        )
    assert code == 0
    assert "usage: /close [CODE [REASON]]" in err and "'abc'" in err
    assert "usage: /binary HEX" in err
    assert "1006" in err and "3000-4999" in err
    assert "unknown command /nope" in err and "//nope" in err
    assert "Traceback" not in err
    assert recorder.received == ["after"] and out.splitlines() == ["after"]


async def test_jsonl_messages_and_ending() -> None:
    async def closer(ws: WebSocketConnection) -> None:
        await ws.send("first")
        await ws.send(b"\x00\x01")
        await ws.recv()
        await ws.close(4001, "go away")

    async with echo_server(closer) as (url, _):
        code, out, _err = await run_connect(url, "--jsonl", "-x", "hi", "-w", "5")
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["type"] for r in records] == ["text", "binary", "ending"]
    assert records[0]["data"] == "first"
    assert records[1] == {"type": "binary", "size": 2, "hex": "0001", "t": records[1]["t"]}
    ending = records[2]
    assert ending["code"] == 4001 and ending["reason"] == "go away" and ending["cause"] == "closed.by_peer"
    assert ending["ok"] is False and code == 1


async def test_exit_status_and_ending_on_stderr() -> None:
    async def closer(ws: WebSocketConnection) -> None:
        await ws.recv()
        await ws.close(1011, "database down")

    async with echo_server(closer) as (url, _):
        code, out, err = await run_connect(url, "-x", "hi", "-w", "5")
    assert code == 1 and out == ""
    assert "1011" in err and "database down" in err and "closed.by_peer" in err
    # Nothing listens on a port we just closed: the TCP step fails, exit 4 as in check.
    with contextlib.closing(__import__("socket").socket()) as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    code, out, err = await run_connect(f"ws://{HOST}:{port}/", "-x", "hi")
    assert code == 4 and "tcp.refused" in err and out == ""


async def test_show_headers_masks_secrets_and_sends_origin() -> None:
    async with echo_server() as (url, recorder):
        code, out, err = await run_connect(
            url,
            "-H",
            "Authorization: Bearer top-secret",
            "--header",
            "Cookie: sid=abc123",
            "--origin",
            "https://app.example",
            "--show-headers",
            "-x",
            "x",
            "-w",
            "0.2",
        )
    assert code == 0
    assert "> Authorization: Bearer ***" in err and "> Cookie: ***" in err
    assert "> Origin: https://app.example" in err and "< sec-websocket-accept:" in err.lower()
    assert "top-secret" not in err + out and "abc123" not in err + out
    received = [(k.lower(), v) for k, v in recorder.headers]
    assert ("authorization", "Bearer top-secret") in received and ("origin", "https://app.example") in received


async def test_max_size_ends_with_1009() -> None:
    async def big(ws: WebSocketConnection) -> None:
        await ws.send("x" * 5000)
        await ws.wait_closed()

    async with echo_server(big) as (url, _):
        code, _out, err = await run_connect(url, "--max-size", "1000", "-x", "/ping", "-w", "5")
    assert code == 1 and "1009" in err and "message.too_big" in err


def _read_until(fd: int, needle: bytes, seen: bytearray, deadline: float) -> bool:
    """Read the terminal's output until ``needle`` shows up (after what was already seen)."""
    start = len(seen)
    while time.monotonic() < deadline:
        if needle in seen[start:]:
            return True
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return needle in seen[start:]
            if not chunk:
                break
            seen += chunk
    return needle in seen[start:]


class Terminal:
    """``wsdoctor connect`` on a real pseudo-terminal, with HOME in a folder of the test's own."""

    def __init__(self, url: str, home: Path, **env: str) -> None:
        self.master, slave = pty.openpty()
        environ = {k: v for k, v in os.environ.items() if k not in ("XDG_STATE_HOME", "WSDOCTOR_HISTFILE")}
        environ.update(TERM="xterm", WSDOCTOR_LANG="en", HOME=str(home), **env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wsdoctor", "connect", url],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=environ,
            close_fds=True,
        )
        os.close(slave)
        self.seen = bytearray()
        self.deadline = time.monotonic() + 60

    async def expect(self, needle: bytes) -> None:
        found = await asyncio.to_thread(_read_until, self.master, needle, self.seen, self.deadline)
        assert found, (needle, bytes(self.seen))

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    async def wait(self) -> int:
        try:
            return await asyncio.to_thread(self.proc.wait, 30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            os.close(self.master)


UP = b"\x1b[A"


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
async def test_terminal_history_and_double_slash(tmp_path: Path) -> None:
    """On a real pseudo-terminal: arrow up recalls the last line, //x sends "/x"; the history is kept."""
    async with echo_server() as (url, recorder):
        term = Terminal(url, tmp_path)
        try:
            await term.expect(b"> ")
            term.type(b"hello\r")
            await term.expect(b"< hello")
            term.type(UP + b"\r")  # arrow up, enter: the same line again
            await term.expect(b"< hello")
            term.type(b"//x\r")
            await term.expect(b"< /x")
            term.type(b"/ping\r")
            await term.expect(b"pong in")
            term.type(b"/close\r")
            await term.expect(b"Normal Closure")
        finally:
            returncode = await term.wait()
        assert recorder.received == ["hello", "hello", "/x"]
        assert returncode == 0
        history = tmp_path / ".local" / "state" / "wsdoctor" / "history"
        assert history.read_text().split()[-3:] == ["//x", "/ping", "/close"]
        assert history.stat().st_mode & 0o077 == 0  # what was typed may hold tokens

        # The next session starts with that history: three times up is "//x" again.
        term = Terminal(url, tmp_path)
        try:
            await term.expect(b"> ")
            term.type(UP * 3 + b"\r")
            await term.expect(b"< /x")
            term.type(b"/close\r")
            await term.expect(b"Normal Closure")
        finally:
            assert await term.wait() == 0
    assert recorder.received == ["hello", "hello", "/x", "/x"]


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
async def test_history_file_from_the_environment_and_unwritable_is_silent(tmp_path: Path) -> None:
    async with echo_server() as (url, recorder):
        state = tmp_path / "state"
        term = Terminal(url, tmp_path, XDG_STATE_HOME=str(state))
        try:
            await term.expect(b"> ")
            term.type(b"kept\r")
            await term.expect(b"< kept")
            term.type(b"/close\r")
            await term.expect(b"Normal Closure")
        finally:
            assert await term.wait() == 0
        assert (state / "wsdoctor" / "history").read_text().split()[-2:] == ["kept", "/close"]

        # WSDOCTOR_HISTFILE wins; a place that cannot be written costs nothing but the history.
        blocker = tmp_path / "a-file"
        blocker.write_text("")
        term = Terminal(url, tmp_path, XDG_STATE_HOME=str(state), WSDOCTOR_HISTFILE=str(blocker / "history"))
        try:
            await term.expect(b"> ")
            term.type(UP + b"still works\r")  # nothing to recall: the line is only what was typed
            await term.expect(b"< still works")
            term.type(b"/close\r")
            await term.expect(b"Normal Closure")
        finally:
            assert await term.wait() == 0
        assert b"Traceback" not in term.seen and blocker.read_text() == ""
    assert recorder.received == ["kept", "still works"]


async def test_jsonl_ending_when_the_dial_fails() -> None:
    async def forbid(ws: WebSocketConnection, request: object) -> tuple[int, str]:
        return 403, "no\n"

    async with wsdoctor.serve(Recorder(), HOST, 0, process_request=forbid) as server:
        code, out, err = await run_connect(f"ws://{HOST}:{server.port_number}/", "--jsonl", "-x", "hi")
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 1 and records[0]["type"] == "ending"
    assert records[0]["cause"] == "http.forbidden" and records[0]["ok"] is False
    assert code == 6 and "Traceback" not in err
