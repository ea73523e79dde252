"""check and connect through proxies and redirects, and the retry flag in explain and the reference."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pproxy
import pytest
from click.testing import CliRunner

import wsdoctor
from _helpers import echo, run_wsdoctor
from wsdoctor import WebSocketConnection
from wsdoctor.cli import main
from wsdoctor.protocol._handshake import Request

HOST = "127.0.0.1"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return env | extra


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


async def wsdoctor_cli(
    *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> tuple[int, str, str]:
    """``wsdoctor ARGS`` with none of this machine's proxy variables, unless ``env`` sets them."""
    return await run_wsdoctor(*args, env=env or clean_env(), stdin=stdin)


@pytest.fixture
async def proxy_port() -> AsyncIterator[int]:
    handle = await pproxy.Server(f"http://{HOST}:0").start_server(
        {"rserver": [], "verbose": lambda *args: None, "authtime": -1}
    )
    yield handle.sockets[0].getsockname()[1]
    handle.close()


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    async with wsdoctor.serve(echo, HOST, 0) as server:
        yield f"ws://{HOST}:{server.port_number}/"


async def test_check_through_a_proxy(echo_url: str, proxy_port: int) -> None:
    code, out, _ = await wsdoctor_cli("check", echo_url, "--proxy", f"http://{HOST}:{proxy_port}", "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"] is True
    assert [s["name"] for s in data["steps"]] == ["dns", "tcp", "proxy", "http", "negotiate", "ping", "close"]
    proxy = data["steps"][2]["details"]
    assert proxy["source"] == "argument" and proxy["answer"].startswith("200")

    code, out, _ = await wsdoctor_cli("check", echo_url, env=clean_env(HTTP_PROXY=f"http://{HOST}:{proxy_port}"))
    assert code == 0
    assert "Proxy: ok" in out
    assert f"http://{HOST}:{proxy_port} (from HTTP_PROXY) answered 200" in " ".join(out.split())


async def test_check_proxy_failures_and_bypass(echo_url: str) -> None:
    dead = f"http://{HOST}:{closed_port()}"
    code, out, _ = await wsdoctor_cli("check", echo_url, "--json", env=clean_env(HTTP_PROXY=dead))
    assert code == 10 and json.loads(out)["ending"]["cause"] == "proxy.refused"

    code, out, _ = await wsdoctor_cli("check", echo_url, "--no-proxy", env=clean_env(HTTP_PROXY=dead))
    assert code == 0
    code, out, _ = await wsdoctor_cli("check", echo_url, "--proxy", "", env=clean_env(HTTP_PROXY=dead))
    assert code == 0

    code, out, _ = await wsdoctor_cli("check", echo_url, env=clean_env(HTTP_PROXY=dead, NO_PROXY=HOST))
    assert code == 0
    assert f"HTTP_PROXY is set but NO_PROXY={HOST} bypasses it: dialling directly" in " ".join(out.split())


async def test_check_json_carries_the_proxy_step_from_the_environment(echo_url: str, proxy_port: int) -> None:
    """The proxy step in --json: which proxy, from which variable, its answer; also bypassed or unreachable."""
    proxy = f"http://{HOST}:{proxy_port}"
    code, out, _ = await wsdoctor_cli("check", echo_url, "--json", env=clean_env(http_proxy=proxy))
    data = json.loads(out)
    assert code == 0 and data["ok"] is True
    [step] = [s for s in data["steps"] if s["name"] == "proxy"]
    assert step["ok"] is True and step["ms"] >= 0
    target = echo_url.removeprefix("ws://").rstrip("/")
    assert step["details"] == {
        "proxy": proxy,
        "source": "http_proxy",
        "target": target,
        "answer": step["details"]["answer"],
    }
    assert step["details"]["answer"].startswith("200")
    assert [s["details"].get("via") for s in data["steps"][:2]] == ["proxy", "proxy"]

    code, out, _ = await wsdoctor_cli("check", echo_url, "--json", env=clean_env(HTTP_PROXY=proxy, NO_PROXY="*"))
    data = json.loads(out)
    assert code == 0
    assert data["steps"][0] == {
        "name": "proxy",
        "ok": True,
        "ms": data["steps"][0]["ms"],
        "details": {"bypassed": "HTTP_PROXY", "no_proxy": "NO_PROXY=*", "direct": True},
    }
    assert all("via" not in s["details"] for s in data["steps"][1:])

    code, out, _ = await wsdoctor_cli(
        "check", echo_url, "--lang", "es", env=clean_env(HTTP_PROXY=proxy, no_proxy=f"{HOST},.example")
    )
    assert code == 0
    assert f"HTTP_PROXY está definida pero no_proxy={HOST},.example la excluye: conexión directa" in " ".join(
        out.split()
    )


async def test_an_unreachable_proxy_is_named_with_its_variable(echo_url: str) -> None:
    dead = f"http://{HOST}:{closed_port()}"
    code, out, _ = await wsdoctor_cli("check", echo_url, "--json", env=clean_env(HTTP_PROXY=dead))
    data = json.loads(out)
    assert code == 10 and data["ending"]["cause"] == "proxy.refused"
    assert [(s["name"], s["ok"]) for s in data["steps"]] == [("dns", True), ("tcp", False), ("proxy", False)]
    details = data["steps"][2]["details"]
    assert (details["proxy"], details["source"], details["cause"]) == (dead, "HTTP_PROXY", "proxy.refused")

    code, out, _ = await wsdoctor_cli("check", echo_url, env=clean_env(HTTP_PROXY=dead))
    assert code == 10
    assert "Proxy: FAILED" in out and f"nothing is listening at the proxy {dead} (from HTTP_PROXY)" in " ".join(
        out.split()
    )


def test_bad_proxy_url_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["check", "ws://h/", "--proxy", "ftp://proxy:21"])
    assert result.exit_code == 2 and "proxy scheme" in result.output


async def test_check_shows_redirects() -> None:
    def moved(ws: WebSocketConnection, request: Request) -> object:
        if request.target in ("/old", "/loop"):
            return 302, [("Location", "/new" if request.target == "/old" else "/loop")], ""
        return None

    async with wsdoctor.serve(echo, HOST, 0, process_request=moved) as server:
        base = f"ws://{HOST}:{server.port_number}"
        code, out, _ = await wsdoctor_cli("check", base + "/old")
        loop_code, loop_out, _ = await wsdoctor_cli("check", base + "/loop", "--max-redirects", "2", "--json")
    assert loop_code == 11
    loop = json.loads(loop_out)
    assert loop["ending"]["cause"] == "redirect.too_many"
    assert [s["name"] for s in loop["steps"]].count("redirect") == 3
    assert code == 0
    assert "Redirect: ok" in out and f"302 Found; Location: /new -> {base}/new" in out


async def test_connect_through_a_proxy(echo_url: str, proxy_port: int) -> None:
    code, out, _ = await wsdoctor_cli("connect", echo_url, "--proxy", f"http://{HOST}:{proxy_port}", stdin=b"through\n")
    assert code == 0 and out.splitlines()[0] == "through"


def test_explain_and_reference_say_whether_a_code_is_retried(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["explain", "1012"])
    assert "Retried on reconnect: yes (transient)" in result.output
    result = CliRunner().invoke(main, ["explain", "1008", "--lang", "es"])
    assert "Se reintenta al reconectar: no (permanente)" in result.output
    result = CliRunner().invoke(main, ["explain", "1013", "--json"])
    assert json.loads(result.output)["retry"] is True
    result = CliRunner().invoke(main, ["reference", "--out", str(tmp_path)])
    assert result.exit_code == 0
    assert "Retried on reconnect</dt><dd>yes (transient)" in (tmp_path / "en" / "1001.html").read_text()
    assert "Se reintenta al reconectar</dt><dd>no (permanente)" in (tmp_path / "es" / "1002.html").read_text()
