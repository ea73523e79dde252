"""``wsdoctor demo``: reproduce common failures on loopback and diagnose each one."""

from __future__ import annotations

import json

import click
from rich.text import Text

from wsdoctor.aio._run import run
from wsdoctor.cli._lang import LANG_OPTION
from wsdoctor.cli._render import make_console, print_table, ui
from wsdoctor.diagnose.demo import Outcome, run_demo


@click.command(
    epilog="""\b
Examples:
  wsdoctor demo
  wsdoctor demo --lang es
  wsdoctor demo --json

\b
Exit status 0 when every diagnosis matches the failure the demo set up, 1 otherwise.
Every server listens on 127.0.0.1 only and stops when the demo ends.
"""
)
@LANG_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=3.0,
    show_default=True,
    help="Seconds for each step of each check.",
)
def demo(lang: str, as_json: bool, timeout: float) -> None:
    """Start broken servers on loopback, diagnose each one, and show the fixes."""
    console = make_console()
    words = ui(lang)

    def progress(outcome: Outcome) -> None:
        if not as_json:
            mark = words["match"] if outcome.matches else words["mismatch"]
            found = outcome.found
            text = words["nothing"] if found is None else f"{found[0]} {found[1]}"
            console.print(f"[{mark}] {outcome.scenario.name}: {text}", markup=False)

    outcomes = run(run_demo(timeout, progress))
    ok = all(o.matches for o in outcomes)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": ok,
                    "scenarios": [
                        {
                            "name": o.scenario.name,
                            "description": words["scenarios"].get(o.scenario.name, o.scenario.description),
                            "url": o.url,
                            "expected": {
                                "code": o.scenario.expected_code,
                                "cause": o.scenario.expected_cause,
                            },
                            "matches": o.matches,
                            "check": o.result.to_dict(lang),
                        }
                        for o in outcomes
                    ],
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        raise SystemExit(0 if ok else 1)
    rows: list[list[str | Text]] = []
    for o in outcomes:
        ending = o.result.ending
        if ending is None:
            found, fix = words["nothing"], ""
        else:
            name = ending.explanation(lang).name
            found = f"{ending.code} {name}\n{ending.cause}" + (f"\n{ending.detail}" if ending.detail else "")
            fix = "" if o.result.ok else ending.fix_text(lang)
        rows.append(
            [
                o.scenario.name,
                words["scenarios"].get(o.scenario.name, o.scenario.description),
                found,
                fix,
                Text("✓", style="green") if o.matches else Text("✗", style="red"),
            ]
        )
    print_table(
        console,
        [words["scenario"], words["set_up"], words["found"], words["how_to_fix"], ""],
        rows,
        title=words["demo_title"],
        show_lines=True,
    )
    summary = words["demo_summary"].format(matched=sum(o.matches for o in outcomes), total=len(outcomes))
    console.print(f"[bold {'green' if ok else 'red'}]{summary}[/]")
    raise SystemExit(0 if ok else 1)
