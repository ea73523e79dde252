"""``wsdoctor explain``, ``compare`` and ``codes``: the close-code registry from the shell."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from wsdoctor.cli._render import label, render_explanation
from wsdoctor.knowledge import LANGS, Explanation, all_entries, compare, explain

LANG = click.option("--lang", type=click.Choice(LANGS), default="en", show_default=True, help="Language.")
JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def _as_dict(exp: Explanation) -> dict[str, Any]:
    data = dataclasses.asdict(exp)
    data["causes"] = list(exp.causes)
    data["headings"] = list(exp.headings)
    return data


class CodeType(click.ParamType):  # type: ignore[type-arg]
    name = "CODE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            code = int(value)
        except ValueError:
            self.fail(f"{value!r} is not a close code (an integer such as 1006)", param, ctx)
        if code < 0:
            self.fail(f"{code} is negative; close codes are 0 to 65535", param, ctx)
        return code


CODE = CodeType()


@click.command(
    epilog="""\b
Examples:
  wsdoctor explain 1006
  wsdoctor explain 1015 --lang es
  wsdoctor explain 4001 --json
"""
)
@click.argument("code", type=CODE)
@LANG
@JSON
def explain_cmd(code: int, lang: str, as_json: bool) -> None:
    """Explain a close code: what it means, when you see it, how to fix it."""
    exp = explain(code, lang)
    if as_json:
        click.echo(json.dumps(_as_dict(exp), ensure_ascii=False, indent=2))
        return
    render_explanation(Console(highlight=False), exp)


@click.command(
    epilog="""\b
Examples:
  wsdoctor compare 1006 1000
  wsdoctor compare 1010 1015 --lang es
"""
)
@click.argument("first", type=CODE)
@click.argument("second", type=CODE)
@LANG
@JSON
def compare_cmd(first: int, second: int, lang: str, as_json: bool) -> None:
    """Compare two close codes side by side, with their key differences."""
    comp = compare(first, second, lang)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "a": _as_dict(comp.a),
                    "b": _as_dict(comp.b),
                    "differences": [{"aspect": a, "a": x, "b": y} for a, x, y in comp.differences],
                    "when_each": list(comp.when_each),
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    console = Console(highlight=False)
    table = Table(show_lines=True, expand=console.is_terminal)
    table.add_column("")
    table.add_column(f"{comp.a.code} {comp.a.name}", overflow="fold")
    table.add_column(f"{comp.b.code} {comp.b.name}", overflow="fold")
    for heading, x, y in zip(
        comp.a.headings,
        (comp.a.meaning, comp.a.when, comp.a.fix),
        (comp.b.meaning, comp.b.when, comp.b.fix),
        strict=True,
    ):
        table.add_row(heading, x, y)
    console.print(table)
    diff = Table(title=label(lang, "key_differences"), title_justify="left", show_lines=True)
    diff.add_column("")
    diff.add_column(str(comp.a.code), overflow="fold")
    diff.add_column(str(comp.b.code), overflow="fold")
    for aspect, x, y in comp.differences:
        diff.add_row(aspect, x, y)
    console.print(diff)
    console.print(f"[bold]{label(lang, 'when_each_title')}[/bold]")
    for sentence in comp.when_each:
        console.print(f"- {sentence}", markup=False)


@click.command(epilog="\b\nExamples:\n  wsdoctor codes\n  wsdoctor codes --lang es --json\n")
@LANG
@JSON
def codes_cmd(lang: str, as_json: bool) -> None:
    """List every close code and range."""
    entries = all_entries(lang)
    if as_json:
        click.echo(json.dumps([_as_dict(e) | {"code": e.key} for e in entries], ensure_ascii=False, indent=2))
        return
    console = Console(highlight=False)
    table = Table()
    for heading in (
        "code",
        label(lang, "name"),
        label(lang, "may_send"),
        label(lang, "stage_label"),
        label(lang, "sent_by"),
    ):
        table.add_column(heading, overflow="fold")
    for e in entries:
        table.add_row(
            e.key,
            e.name,
            label(lang, "yes") if e.sendable else label(lang, "no"),
            e.stage,
            e.sender,
        )
    console.print(table)
