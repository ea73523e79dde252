"""``wsdoctor demo``: reproduce common failures on loopback and diagnose each one."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from wsdoctor.aio._run import run
from wsdoctor.cli._check import ui
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
@click.option("--lang", type=click.Choice(["en", "es"]), default="en", show_default=True)
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
    console = Console(highlight=False)

    def progress(outcome: Outcome) -> None:
        if not as_json:
            mark = "ok " if outcome.matches else "MISMATCH"
            found = outcome.found
            text = "nothing" if found is None else f"{found[0]} {found[1]}"
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
                            "description": o.scenario.description,
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
    words = ui(lang)
    table = Table(title=words["demo_title"], title_justify="left", show_lines=True)
    table.add_column(words["scenario"])
    table.add_column(words["set_up"])
    table.add_column(words["found"], overflow="fold")
    table.add_column(words["how_to_fix"], overflow="fold")
    table.add_column("")
    for o in outcomes:
        ending = o.result.ending
        if ending is None:
            found, fix = "nothing", ""
        else:
            name = ending.explanation(lang).name
            found = f"{ending.code} {name}\n{ending.cause}" + (f"\n{ending.detail}" if ending.detail else "")
            fix = "" if o.result.ok else ending.fix_text(lang)
        table.add_row(
            o.scenario.name,
            o.scenario.description,
            found,
            fix,
            "[green]✓[/green]" if o.matches else "[red]✗[/red]",
        )
    console.print(table)
    summary = words["demo_summary"].format(matched=sum(o.matches for o in outcomes), total=len(outcomes))
    console.print(f"[bold {'green' if ok else 'red'}]{summary}[/]")
    raise SystemExit(0 if ok else 1)
