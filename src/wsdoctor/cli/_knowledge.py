"""``wsdoctor explain``, ``compare`` and ``codes``: the close-code registry from the shell."""

from __future__ import annotations

import dataclasses
import difflib
import json
from typing import Any

import click

from wsdoctor.cli._lang import LANG_OPTION
from wsdoctor.cli._render import label, make_console, print_table, render_cause, render_explanation, ui
from wsdoctor.knowledge import Explanation, all_entries, cause_ids, compare, describe_cause, explain

LANG = LANG_OPTION
JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def _as_dict(exp: Explanation) -> dict[str, Any]:
    data = dataclasses.asdict(exp)
    data["causes"] = list(exp.causes)
    data["headings"] = list(exp.headings)
    return data


MAX_CODE = 65535  # a close code is an unsigned 16-bit integer (RFC 6455 5.5.1)


class CodeType(click.ParamType):  # type: ignore[type-arg]
    """A close code: an integer from 0 to 65535."""

    name = "CODE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            code = int(value)
        except ValueError:
            self.fail(f"{value!r} is not a close code (an integer from 0 to {MAX_CODE}, such as 1006)", param, ctx)
        if code < 0:
            self.fail(f"{code} is negative; close codes are 0 to {MAX_CODE}", param, ctx)
        if code > MAX_CODE:
            self.fail(f"{code} is out of range; close codes are 0 to {MAX_CODE} (two bytes on the wire)", param, ctx)
        return code


class CodeOrCauseType(CodeType):
    """A close code, or a cause id such as ``tls.expired``."""

    name = "CODE|CAUSE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | str:  # type: ignore[override]
        if isinstance(value, str) and value[:1].isalpha():
            if value in cause_ids():
                return value
            close = difflib.get_close_matches(value, cause_ids(), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            self.fail(
                f"{value!r} is neither a close code (0 to {MAX_CODE}) nor a known cause id such as tls.expired{hint}",
                param,
                ctx,
            )
        return super().convert(value, param, ctx)


CODE = CodeType()
CODE_OR_CAUSE = CodeOrCauseType()
# "-1" must reach the type, which explains why it is refused, instead of being read as an option.
NEGATIVE_AS_ARGUMENT = {"ignore_unknown_options": True}


@click.command(
    context_settings=NEGATIVE_AS_ARGUMENT,
    epilog="""\b
Examples:
  wsdoctor explain 1006
  wsdoctor explain 1015 --lang es
  wsdoctor explain 4001 --json
  wsdoctor explain tls.expired
""",
)
@click.argument("code", type=CODE_OR_CAUSE)
@LANG
@JSON
def explain_cmd(code: int | str, lang: str, as_json: bool) -> None:
    """Explain a close code (0-65535) or a cause id: what it means, when you see it, how to fix it."""
    if isinstance(code, str):
        entry = describe_cause(code, lang)
        if as_json:
            click.echo(json.dumps(dataclasses.asdict(entry), ensure_ascii=False, indent=2))
            return
        render_cause(make_console(), entry)
        return
    exp = explain(code, lang)
    if as_json:
        click.echo(json.dumps(_as_dict(exp), ensure_ascii=False, indent=2))
        return
    render_explanation(make_console(), exp)


@click.command(
    context_settings=NEGATIVE_AS_ARGUMENT,
    epilog="""\b
Examples:
  wsdoctor compare 1006 1000
  wsdoctor compare 1010 1015 --lang es
""",
)
@click.argument("first", type=CODE)
@click.argument("second", type=CODE)
@LANG
@JSON
def compare_cmd(first: int, second: int, lang: str, as_json: bool) -> None:
    """Compare two close codes side by side, with their key differences."""
    comp = compare(first, second, lang)
    note = _same_note(comp.a, comp.b, lang)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "a": _as_dict(comp.a),
                    "b": _as_dict(comp.b),
                    "same": first == second,
                    "note": note,
                    "differences": [{"aspect": a, "a": x, "b": y} for a, x, y in comp.differences],
                    "when_each": list(comp.when_each),
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    console = make_console()
    if first == second:
        console.print(note, markup=False)
        render_explanation(console, comp.a)
        return
    sections = zip(
        comp.a.headings,
        (comp.a.meaning, comp.a.when, comp.a.fix),
        (comp.b.meaning, comp.b.when, comp.b.fix),
        strict=True,
    )
    print_table(
        console,
        ["", f"{comp.a.code} {comp.a.name}", f"{comp.b.code} {comp.b.name}"],
        [[heading, x, y] for heading, x, y in sections],
        show_lines=True,
        expand=console.is_terminal,
    )
    print_table(
        console,
        ["", str(comp.a.code), str(comp.b.code)],
        [[aspect, x, y] for aspect, x, y in comp.differences],
        title=label(lang, "key_differences"),
        show_lines=True,
    )
    if note:
        console.print(note, markup=False)
    console.print(f"[bold]{label(lang, 'when_each_title')}[/bold]")
    for sentence in comp.when_each:
        console.print(f"- {sentence}", markup=False)


def _same_note(a: Explanation, b: Explanation, lang: str) -> str:
    """What to say when there is little or nothing to compare: one code, or one shared entry."""
    if a.code == b.code:
        return label(lang, "same_code").format(code=a.code)
    if a.key == b.key:
        return label(lang, "same_entry").format(a=a.code, b=b.code, key=a.key)
    return ""


@click.command(epilog="\b\nExamples:\n  wsdoctor codes\n  wsdoctor codes --lang es --json\n")
@LANG
@JSON
def codes_cmd(lang: str, as_json: bool) -> None:
    """List every close code and range."""
    entries = all_entries(lang)
    if as_json:
        click.echo(json.dumps([_as_dict(e) | {"code": e.key} for e in entries], ensure_ascii=False, indent=2))
        return
    words = ui(lang)
    print_table(
        make_console(),
        [
            words["code"],
            label(lang, "name"),
            label(lang, "may_send"),
            label(lang, "stage_label"),
            label(lang, "sent_by"),
        ],
        [
            [
                e.key,
                e.name,
                label(lang, "yes") if e.sendable else label(lang, "no"),
                words["stage_short"][e.stage],
                words["sender_short"][e.sender],
            ]
            for e in entries
        ],
    )
