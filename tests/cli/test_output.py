"""What every command prints when piped, and in Spanish: plain lines, no English left over."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import wsdoctor
from _helpers import run_wsdoctor, serve_subprocess
from wsdoctor import WebSocketConnection
from wsdoctor.cli._lang import default_lang
from wsdoctor.cli._serve import echo
from wsdoctor.diagnose.demo import scenarios
from wsdoctor.diagnose.faults import FAULTS
from wsdoctor.protocol._handshake import Request

HOST = "127.0.0.1"
DATA = Path(wsdoctor.__file__).parent / "knowledge" / "data"
BOX = re.compile("[\u2500-\u257f]")  # box drawing
ENV = {**os.environ, "COLUMNS": "60", "WSDOCTOR_LANG": ""}


def wsdoctor_cmd(*args: str, timeout: float = 120, lang_env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out = subprocess.run(
        [sys.executable, "-m", "wsdoctor", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**ENV, **(lang_env or {})},
    )
    return out.returncode, out.stdout, out.stderr


# ------------------------------------------------------------- --lang default


@pytest.mark.parametrize(
    ("env", "lang"),
    [
        ({}, "en"),
        ({"LANG": "es_ES.UTF-8"}, "es"),
        ({"LANG": "fr_FR.UTF-8"}, "en"),
        ({"LC_ALL": "es_MX.UTF-8", "LANG": "en_US.UTF-8"}, "es"),
        ({"LC_MESSAGES": "en_GB.UTF-8", "LANG": "es_ES.UTF-8"}, "en"),
        ({"WSDOCTOR_LANG": "es", "LC_ALL": "en_US.UTF-8"}, "es"),
        ({"WSDOCTOR_LANG": "en", "LANG": "es_AR.UTF-8"}, "en"),
    ],
)
def test_default_lang_from_environment(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], lang: str) -> None:
    for name in ("WSDOCTOR_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert default_lang() == lang


def test_lang_from_environment_and_help() -> None:
    code, out, _ = wsdoctor_cmd("explain", "1006", lang_env={"LANG": "es_ES.UTF-8", "LC_ALL": ""})
    assert code == 0 and "Cierre anómalo" in out
    for command in ("explain", "compare", "codes", "check", "connect", "serve", "demo"):
        code, out, _ = wsdoctor_cmd(command, "--help")
        assert code == 0 and "--lang" in out and "WSDOCTOR_LANG" in out, command


# ---------------------------------------------------------- plain when piped


def assert_plain(text: str) -> None:
    assert not BOX.search(text), text
    assert "…" not in text and "\x1b[" not in text


def test_piped_output_is_plain_one_record_per_line() -> None:
    code, out, _ = wsdoctor_cmd("codes")
    assert code == 0
    assert_plain(out)
    lines = out.splitlines()
    assert len(lines) == 1 + 24  # a header, then one line per code or range
    assert re.match(r"^1006 +Abnormal Closure +no +local +none$", next(x for x in lines if x.startswith("1006")))
    code, out, _ = wsdoctor_cmd("explain", "1006")
    assert_plain(out)
    fix = wsdoctor.explain(1006).fix
    assert fix in out.splitlines()  # one line, however long: no wrapping at COLUMNS
    code, out, _ = wsdoctor_cmd("compare", "1010", "1015")
    assert_plain(out)
    differences = out.split("Key differences", 1)[1].splitlines()
    assert any(re.match(r"^Who sends it +the client +nobody \(never sent\)$", x) for x in differences)


def test_demo_piped_rows_are_whole() -> None:
    code, out, _ = wsdoctor_cmd("demo")
    assert code == 0
    assert_plain(out)
    rows = [line for line in out.splitlines() if line.startswith("mandatory-extension ")]
    assert len(rows) == 1 and "1010 Mandatory Extension; extension.missing" in rows[0]
    assert "Enable the extension on the server" in rows[0]


# ------------------------------------------------------------ the Spanish walk


def _strings(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, str):
        yield path, value


def english_words() -> set[str]:
    """Words of the English labels that the Spanish texts never use."""
    en = json.loads((DATA / "en.json").read_text())
    es = json.loads((DATA / "es.json").read_text())
    es_labels = dict(_strings(es["labels"]))
    spanish = {w for _, text in _strings(es) for w in re.findall(r"[A-Za-z]+", text.lower())}
    words = set()
    for path, text in _strings(en["labels"]):
        if es_labels.get(path) != text:
            words |= {w for w in re.findall(r"[A-Za-z]{4,}", re.sub(r"\{[a-z_]+\}", "", text).lower())}
    return words - spanish


def ids() -> set[str]:
    """Names that are identifiers, printed as they are in every language."""
    return {f.name for f in FAULTS} | {s.name for s in scenarios()} | {s.fault for s in scenarios()}


def leftover_english(text: str, details: list[str]) -> set[str]:
    for detail in details:  # endings' details come from the peer or the network, as they are
        pattern = r"\d+".join(re.escape(part) for part in re.split(r"\d+", detail))  # dates and ports vary
        text = re.sub(pattern, " ", text)
    tokens = [t for t in text.split() if not re.search(r"[./_:=\-\[\]]", t) or t.strip("():,;") in ids()]
    found = set()
    words = english_words()
    for token in tokens:
        if token.strip("():,;") in ids():
            continue
        found |= {w for w in re.findall(r"[A-Za-z]+", token.lower()) if w in words}
    return found


def test_english_word_list_is_meaningful() -> None:
    words = english_words()
    assert {"either", "none", "step", "scenario", "found", "messages", "connected", "nothing"} <= words


def forbid_no(ws: WebSocketConnection, request: Request) -> tuple[int, str] | None:
    return (403, "no") if request.target == "/no" else None


async def _spanish_session() -> list[tuple[str, str]]:
    """Every command in Spanish against real servers: (what ran, what it printed)."""
    printed: list[tuple[str, str]] = []

    async def run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
        code, out, err = await run_wsdoctor(*args, stdin=stdin, env={**ENV, "WSDOCTOR_LANG": "es"}, timeout=120)
        printed.append((" ".join(args), out + err))
        return code, out, err

    for args in (
        ["codes"],
        ["explain", "1006"],
        ["explain", "4001"],
        ["explain", "tls.expired"],
        ["compare", "1000", "1006"],
        ["compare", "1000", "1000"],
        ["demo"],
    ):
        await run(*args)
    await run("serve", "--list-faults")
    with tempfile.TemporaryDirectory() as site:
        await run("reference", "--out", site)
    async with wsdoctor.serve(echo, HOST, 0, process_request=forbid_no) as server:
        url = f"ws://{HOST}:{server.port_number}/"
        await run("check", url)
        await run("check", url + "no")
        commands = ["hola", "/ping", "/close abc", "/nada", "/binary zz", "/binary 00ff10", "/binary 01"]
        await run("connect", url, *[arg for command in commands for arg in ("-x", command)], "-w", "0.3")
    async with wsdoctor.serve(echo, HOST, 0, compression=None) as server:
        await run("check", f"ws://{HOST}:{server.port_number}/", "--require-extension", "permessage-deflate")

    # serve and the lab: start, one connection, stop.
    for extra in ([], ["--fault", "healthy"]):
        async with serve_subprocess(*extra, env={**ENV, "WSDOCTOR_LANG": "es"}) as proc:
            assert proc.stdout is not None
            first = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
            lines = [first]
            while "ws://" not in lines[-1]:
                lines.append((await asyncio.wait_for(proc.stdout.readline(), 60)).decode())
            server_url = re.search(r"ws://\S+/", lines[-1])
            assert server_url is not None
            async with wsdoctor.connect(server_url.group(0)) as ws:
                await ws.send("x")
                await ws.recv()
            await asyncio.sleep(0.3)
            proc.send_signal(signal.SIGINT)
            rest = await asyncio.wait_for(proc.stdout.read(), 30)
            await asyncio.wait_for(proc.wait(), 30)
        printed.append((f"serve {' '.join(extra)}", "".join(lines) + rest.decode()))
    return printed


async def test_every_command_in_spanish_has_no_english_words() -> None:
    printed = await _spanish_session()
    _, out, _ = wsdoctor_cmd("demo", "--json", "--lang", "es")
    details = []
    for scenario in json.loads(out)["scenarios"]:
        check = scenario["check"]
        details += [check["ending"]["detail"], check["ending"]["reason"]]
        details += [str(step["details"].get("error", "")) for step in check["steps"]]
    details = sorted({d for d in details if d}, key=len, reverse=True)
    problems = {}
    for what, text in printed:
        assert_plain(text)
        assert "Traceback" not in text, (what, text)
        found = leftover_english(text, details)
        if found:
            problems[what] = (sorted(found), text)
    assert not problems, problems
    everything = "\n".join(text for _, text in printed)
    spoken = (
        "código",
        "abierta",
        "ambos",
        "escenario",
        "mensajes recibidos",
        "conectado a",
        "pong en",
        "páginas escritas",
    )
    for spanish in (*spoken, "[binario, 3 bytes] 00 ff 10", "[binario, 1 byte] 01"):
        assert spanish in everything, spanish


# Values that are identifiers, the same in every language: what scripts match on.
IDENTIFIER_KEYS = {"cause", "stage", "sender", "type", "initiator", "role", "lang", "key"}
# Words that come from the peer or the protocol as they are: HTTP reason phrases, step names.
AS_RECEIVED = {("steps", "name"), ("steps", "details", "reason"), ("steps", "details", "error")}


def _json_texts(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key not in IDENTIFIER_KEYS and (*path, key) not in AS_RECEIVED:
                yield from _json_texts(item, (*path, key))
    elif isinstance(value, list):
        for item in value:
            yield from _json_texts(item, path)
    elif isinstance(value, str):
        yield path, value


async def test_json_values_in_spanish_have_no_english_words() -> None:
    """--json and --jsonl: keys and identifiers stay English, every text meant to be read is Spanish."""

    async def run(*args: str) -> list[Any]:
        _, out, err = await run_wsdoctor(*args, env={**ENV, "WSDOCTOR_LANG": "es"}, timeout=120)
        assert "Traceback" not in err
        return [json.loads(line) for line in out.splitlines()] if "--jsonl" in args else [json.loads(out)]

    outputs: dict[str, list[Any]] = {}
    for args in (
        ["codes", "--json"],
        ["explain", "1011", "--json"],
        ["explain", "tls.expired", "--json"],
        ["compare", "1000", "1006", "--json"],
        ["compare", "1000", "1000", "--json"],
    ):
        outputs[" ".join(args)] = await run(*args)
    async with wsdoctor.serve(echo, HOST, 0, process_request=forbid_no) as server:
        url = f"ws://{HOST}:{server.port_number}/"
        for args in (
            ["check", url, "--json"],
            ["check", url + "no", "--json"],
            ["connect", url, "-x", "hola", "-x", "/binary 00ff", "--jsonl", "-w", "0.3"],
            ["connect", url + "no", "--jsonl"],
        ):
            outputs[" ".join(args)] = await run(*args)
    problems = {}
    for what, documents in outputs.items():
        for document in documents:
            for path, text in _json_texts(document):
                found = leftover_english(text, [])
                if found:
                    problems[(what, path)] = (sorted(found), text)
    assert not problems, problems
    check_403 = outputs[f"check {url}no --json"][0]
    assert check_403["ending"]["name"] == "Cierre anómalo" and check_403["steps"][-1]["name"] == "http"
