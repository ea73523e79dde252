"""explain and compare at their edges: cause ids, the limits of the code range, a code with itself."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from wsdoctor.cli import main


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_explain_a_cause_id() -> None:
    code, out, err = run("explain", "tls.expired")
    assert code == 0 and err == ""
    assert "Cause: tls.expired" in out and "Close code: 1015 TLS Handshake Failure" in out
    assert "The server's certificate has expired." in out
    for heading in ("Description", "When you'll see it", "How to fix it"):
        assert heading in out
    assert "TLS handshake" in out and "Renew the server's certificate" in out


def test_explain_a_cause_id_in_spanish_and_json() -> None:
    code, out, _ = run("explain", "tls.expired", "--lang", "es")
    assert code == 0 and "Causa: tls.expired" in out and "Cómo solucionarlo" in out and "Renueva" in out
    code, out, _ = run("explain", "keepalive.timeout", "--json")
    data = json.loads(out)
    assert code == 0 and data["cause"] == "keepalive.timeout" and data["code"] == 1011
    assert data["name"] == "Internal Error" and data["summary"] and data["when"] and data["fix"]
    code, out, _ = run("explain", "closed.by_peer", "--json")
    assert code == 0 and json.loads(out)["code"] is None


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["tls.expired"], "Retried on reconnect: no (permanent)"),
        (["tcp.refused"], "Retried on reconnect: yes (transient)"),
        (["closed.by_peer"], "Retried on reconnect: as its close code says"),
        (["handshake.status"], "Retried on reconnect: yes for HTTP 429 and 5xx"),
        (["tls.expired", "--lang", "es"], "Se reintenta al reconectar: no (permanente)"),
        (["handshake.status", "--lang", "es"], "Se reintenta al reconectar: sí para HTTP 429 y 5xx"),
    ],
)
def test_explain_a_cause_says_whether_it_is_retried(args: list[str], line: str) -> None:
    """The reconnecting client follows each cause's retry rule: explain shows it, as it does for codes."""
    code, out, _ = run("explain", *args)
    assert code == 0 and line in out.splitlines()[2]
    code, out, _ = run("explain", *args, "--json")
    assert code == 0 and line.split(": ", 1)[1] in json.loads(out)["retried"]


@pytest.mark.parametrize("value", ["0", "65535", "1015", "4999"])
def test_explain_accepts_the_whole_range(value: str) -> None:
    code, out, _ = run("explain", value, "--json")
    assert code == 0 and json.loads(out)["code"] == int(value)


@pytest.mark.parametrize(
    ("value", "message"), [("65536", "out of range"), ("70000", "out of range"), ("-1", "negative")]
)
def test_explain_refuses_outside_the_range(value: str, message: str) -> None:
    code, out, err = run("explain", value)
    assert code == 2 and out == "" and message in err and len(err.splitlines()) == 1


def test_compare_a_code_with_itself() -> None:
    code, out, _ = run("compare", "1000", "1000")
    assert code == 0 and "1000 and 1000 are the same code" in out and "Key differences" not in out
    code, out, _ = run("compare", "1011", "1011", "--json", "--lang", "es")
    data = json.loads(out)
    assert data["same"] is True and data["differences"] == [] and "mismo código" in data["note"]


def test_compare_lists_only_rows_that_differ() -> None:
    code, out, _ = run("compare", "4000", "4001", "--json")
    data = json.loads(out)
    assert code == 0 and data["same"] is False
    assert data["differences"] == [{"aspect": "Code", "a": "4000", "b": "4001"}]
    assert "share one registry entry (4000-4999)" in data["note"]
    code, out, _ = run("compare", "1006", "1015", "--json")
    for row in json.loads(out)["differences"]:
        assert row["a"] != row["b"], row
