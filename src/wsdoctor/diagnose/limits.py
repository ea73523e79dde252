"""Every limit wsdoctor applies, with its default read from the code itself.

The README's table of limits is generated from here (``python3 -m
wsdoctor.diagnose.limits README.md`` rewrites it between its markers) and a test
checks that the two agree, so a changed default cannot leave the documentation behind.
The defaults are read from the signatures and dataclasses that apply them; only the
sentences that explain them are written here.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wsdoctor.aio._tls_policy import TLS_MIN_VERSION
from wsdoctor.aio.connection import Limits
from wsdoctor.aio.server import ACCEPT_PAUSE, RETRY_AFTER, Server
from wsdoctor.protocol._handshake import MAX_BODY, ClientHandshake, ServerHandshake

__all__ = ["END", "START", "limits_rows", "limits_table", "update_readme"]

START = "<!-- limits:start -->"
END = "<!-- limits:end -->"


def _param(func: Callable[..., Any], name: str) -> Any:
    return inspect.signature(func).parameters[name].default


def _field(name: str) -> Any:
    return next(f.default for f in dataclasses.fields(Limits) if f.name == name)


def _limit(name: str, unit: str, effect: str) -> tuple[str, str, str, str]:
    """The row of one ``Limits`` field: named once, so the row and the default it shows cannot disagree."""
    return f"`{name}`", _show(_field(name), unit), "both", effect


def _show(value: Any, unit: str = "") -> str:
    if value is None:
        return "none"
    if isinstance(value, ssl.TLSVersion):
        return value.name.replace("_", ".").replace("TLSv", "TLS ")
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) and unit == "bytes":
        for size, suffix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
            if value >= size and value % size == 0:
                return f"{value // size} {suffix}"
        return f"{value} bytes"
    return f"{value:g} {unit}".strip() if isinstance(value, float | int) else str(value)


def limits_rows() -> list[tuple[str, str, str, str]]:
    """(setting, default, side, what happens at the limit) for every limit."""
    server_handshake = ServerHandshake.__init__
    client_handshake = ClientHandshake.__init__
    return [
        (
            "`max_headers` (handshake)",
            f"{_param(server_handshake, 'max_headers')} server, {_param(client_handshake, 'max_headers')} client",
            "both",
            "more header lines in the upgrade: the server answers 431, the client fails `handshake.malformed`",
        ),
        (
            "`max_header_size` (handshake)",
            f"{_show(_param(server_handshake, 'max_header_size'), 'bytes')} server, "
            f"{_show(_param(client_handshake, 'max_header_size'), 'bytes')} client",
            "both",
            "a larger request head: 431; a larger response head: `handshake.malformed`",
        ),
        (
            "error response body kept",
            _show(MAX_BODY, "bytes"),
            "client",
            "the rest of a non-101 response's body is read and dropped",
        ),
        _limit(
            "max_size",
            "bytes",
            "a larger message (counted after inflation, so a deflate bomb stops here) ends with 1009",
        ),
        _limit("max_frame_size", "bytes", "a larger frame ends with 1009 (`none`: only `max_size` applies)"),
        _limit(
            "max_queue",
            "messages",
            "reading from the socket pauses until the application reads; the peer's writes then slow down",
        ),
        _limit("write_limit", "bytes", "`send()` waits while more than this is buffered for the peer"),
        _limit(
            "open_timeout",
            "s",
            "the whole dial (DNS to 101) or the server's TLS and upgrade; a slow request head gets 408",
        ),
        _limit(
            "close_timeout", "s", "a close handshake or a final flush that does not finish is aborted (`close.timeout`)"
        ),
        _limit(
            "ping_interval", "s", "a keepalive Ping is sent this long after the previous one (`none`: no keepalive)"
        ),
        _limit(
            "ping_timeout",
            "s",
            "no Pong in time ends with 1011 `keepalive.timeout`, or `write.stalled` when the peer stopped reading",
        ),
        (
            "`max_connections`",
            _show(_param(Server.__init__, "max_connections")),
            "server",
            f"further upgrades are answered 503 with `Retry-After: {RETRY_AFTER}` (`server.full`)",
        ),
        (
            "`tls_min_version`",
            _show(TLS_MIN_VERSION),
            "both",
            "older TLS versions are refused in the handshake (1015)",
        ),
        (
            "accept pause",
            _show(ACCEPT_PAUSE, "s"),
            "server",
            "out of descriptors (EMFILE): accepting pauses this long, logged once per episode",
        ),
    ]


def limits_table() -> str:
    """The Markdown table that the README holds between its markers."""
    lines = ["| setting | default | side | at the limit |", "|---|---|---|---|"]
    lines += [f"| {name} | {default} | {side} | {effect} |" for name, default, side, effect in limits_rows()]
    return "\n".join(lines)


def update_readme(text: str) -> str:
    """``text`` with the block between the markers replaced by the current table."""
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"no {START} ... {END} block to update")
    return pattern.sub(lambda _: f"{START}\n{limits_table()}\n{END}", text)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python3 -m wsdoctor.diagnose.limits README.md", file=sys.stderr)
        return 2
    path = Path(argv[0])
    path.write_text(update_readme(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
