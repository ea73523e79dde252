"""``wsdoctor check URL``: dial step by step and say which step failed and why."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.text import Text

from wsdoctor.aio._run import run
from wsdoctor.aio.client import Step
from wsdoctor.cli._lang import LANG_OPTION
from wsdoctor.cli._options import (
    MAX_SIZE_OPTION,
    ORIGIN_OPTION,
    Dial,
    dial_options,
    validate_url,
)
from wsdoctor.cli._render import make_console, print_table, render_ending, ui
from wsdoctor.diagnose.check import EXIT_CODES, CheckResult, exit_code, run_check


def title(step: Step, lang: str) -> str:
    return str(ui(lang)["steps"].get(step.name, step.name))


EPILOG = f"""\b
Examples:
  wsdoctor check ws://127.0.0.1:8765/
  wsdoctor check wss://example.com/socket --ca my-ca.pem
  wsdoctor check wss://mtls.example.com/ --cert client.pem --key client.key
  wsdoctor check wss://example.com/ --require-extension permessage-deflate --json
  wsdoctor check wss://example.com/ --proxy http://user:pass@proxy.local:3128

\b
Exit status: {", ".join(f"{v} {k}" for k, v in EXIT_CODES.items())}
(the step that failed; 0 when every step passed).
"""


def describe(step: Step, lang: str = "en") -> str:
    """One line of details for a step, as a person wants to read it, in ``lang``."""
    d = step.details
    words = ui(lang)
    say: dict[str, str] = words["describe"]
    if not step.ok and step.name == "http" and d.get("status") is not None and d.get("status") != 101:
        # A refusal: the status and the values that say what to do, on the step line itself.
        shown = d.get("shown") or {}
        values = [f"{k}: {v!r}" if k == "body" else f"{k}: {v}" for k, v in shown.items()]
        return "; ".join([f"{d['status']} {d.get('reason', '')}".strip(), *values])
    if not step.ok and step.name == "proxy" and d.get("source") and d.get("error"):
        source = d["source"]
        return say["proxy_failed"].format(error=d["error"], origin="--proxy" if source == "argument" else source)
    if not step.ok:
        for key in ("error", "missing", "cause"):
            if key in d:
                value = d[key]
                return say["missing"].format(names=", ".join(value)) if key == "missing" else str(value)
        return ""
    if step.name == "proxy":
        if d.get("bypassed"):
            return say["proxy_bypassed"].format(variable=d["bypassed"], no_proxy=d.get("no_proxy", "NO_PROXY"))
        source = d.get("source", "")
        return say["proxy"].format(
            proxy=d.get("proxy", ""),
            origin="--proxy" if source == "argument" else source,
            answer=d.get("answer", ""),
            target=d.get("target", ""),
        )
    if step.name == "redirect":
        return f"{d.get('status')} {d.get('reason', '')}; Location: {d.get('location')} -> {d.get('to')}"
    if step.name == "dns":
        via = say["via_proxy"] if d.get("via") == "proxy" else ""
        return ", ".join(d.get("addresses", [])) + via
    if step.name == "tcp":
        via = say["via_proxy"] if d.get("via") == "proxy" else ""
        return say["connected_to"].format(peer=d.get("peer", "")) + via
    if step.name == "tls":
        parts = [f"{d.get('version', '')} {d.get('cipher', '')}".strip()]
        chain = d.get("chain") or ()
        if chain:
            leaf = chain[0]
            parts.append(say["subject"].format(value=leaf.subject))
            parts.append(say["names"].format(value=", ".join(leaf.names)))
            parts.append(say["issuer"].format(value=leaf.issuer))
            parts.append(say["valid"].format(start=f"{leaf.not_before:%Y-%m-%d}", end=f"{leaf.not_after:%Y-%m-%d}"))
            parts.append(say["chain"].format(count=len(chain)))
        return "; ".join(p for p in parts if p)
    if step.name == "http":
        headers = d.get("headers") or []
        ext = next((v for k, v in headers if k.lower() == "sec-websocket-extensions"), None)
        text = f"{d.get('status')} {d.get('reason', '')}".strip()
        return text + (f"; Sec-WebSocket-Extensions: {ext}" if ext else f"; {say['no_extensions']}")
    if step.name == "negotiate":
        return say["negotiated"].format(
            extensions=", ".join(d.get("extensions") or []) or words["none_feminine"],
            offered=d.get("offered") or words["nothing"],
            required=", ".join(d.get("required") or []) or words["nothing"],
            subprotocol=d.get("subprotocol") or words["none"],
            asked=", ".join(d.get("subprotocols_offered") or []) or words["none"],
        )
    if step.name == "ping":
        return say["round_trip"].format(ms=f"{d.get('rtt_ms', 0):.2f}")
    if step.name == "close":
        return say["close"].format(sent=d.get("sent"), received=d.get("received"))
    return ""


def render_result(console: Console, result: CheckResult, lang: str = "en") -> None:
    words = ui(lang)
    rows: list[list[str | Text]] = []
    for step in result.steps:
        mark = Text(words["ok"], style="green") if step.ok else Text(words["failed"], style="bold red")
        rows.append([title(step, lang), mark, f"{step.ms:.1f} ms", describe(step, lang)])
    print_table(
        console,
        [words["step"], words["result"], words["time"], words["details"]],
        rows,
        title=f"wsdoctor check {result.url}",
    )
    if result.ending is not None and not result.ok:
        render_ending(console, result.ending, lang)
    elif result.ok:
        console.print(f"[bold green]{words['healthy']}[/bold green]")


@click.command(epilog=EPILOG)
@click.argument("url", callback=validate_url)
@dial_options
@MAX_SIZE_OPTION
@ORIGIN_OPTION
@LANG_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def check(
    url: str,
    dial: Dial,
    max_size: int,
    origin: str | None,
    lang: str,
    as_json: bool,
) -> None:
    """Connect to URL step by step and show which step fails, and why.

    DNS, TCP, TLS, the HTTP upgrade, negotiation, one ping and a clean close; each
    step is shown as it completes and the check stops at the first failure with its
    close code, cause, explanation and fix.
    """
    console = make_console()

    status: Any = None
    if not as_json and console.is_terminal:
        status = console.status("DNS ...")
        status.start()

    def on_step(step: Step) -> None:
        if as_json:
            return
        if status is not None:
            status.update(f"{title(step, lang)} ...")
        else:
            mark = ui(lang)["ok"] if step.ok else ui(lang)["failed"]
            console.print(f"{title(step, lang)}: {mark} ({step.ms:.1f} ms) {describe(step, lang)}", markup=False)

    try:
        result = run(
            run_check(
                url,
                ssl_context=dial.ssl,
                require_extensions=dial.require_extensions,
                subprotocols=dial.subprotocols,
                headers=dial.headers,
                timeout=dial.timeout,
                proxy=dial.proxy,
                max_redirects=dial.max_redirects,
                max_size=max_size,
                origin=origin,
                on_step=on_step,
            )
        )
    finally:
        if status is not None:
            status.stop()
    if as_json:
        click.echo(json.dumps(result.to_dict(lang), indent=2, ensure_ascii=False))
    elif status is not None:
        render_result(console, result, lang)
    else:
        if result.ending is not None and not result.ok:
            render_ending(console, result.ending, lang)
        elif result.ok:
            console.print(ui(lang)["healthy"], markup=False)
    raise SystemExit(exit_code(result))
