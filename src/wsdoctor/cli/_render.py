"""Rendering endings and explanations for people: rich on a terminal, plain when piped.

Every command prints through a rich Console; rich itself drops colour and markup
styling when the output is not a terminal, so piped output is plain text that
scripts and logs can read.
"""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.text import Text

from wsdoctor.knowledge import Explanation, _texts
from wsdoctor.protocol._ending import Ending

__all__ = ["label", "render_ending", "render_explanation"]


def label(lang: str, key: str) -> str:
    """A localised UI word from the registry's labels."""
    value = _texts(lang)["labels"][key]
    return str(value)


def _facts(exp: Explanation, lang: str) -> Text:
    labels = _texts(lang)["labels"]
    text = Text()
    rows = [
        (labels["range"], exp.range),
        (labels["may_send"], labels["yes"] if exp.sendable else labels["no"]),
        (labels["sent_by"], labels["sender"][exp.sender]),
        (labels["stage_label"], labels["stage"][exp.stage]),
        (labels["retried"], labels["retry_yes" if exp.retry else "retry_no"]),
    ]
    for name, value in rows:
        text.append(f"{name}: ", style="bold")
        text.append(f"{value}\n")
    return text


def _sections(exp: Explanation) -> Text:
    text = Text()
    for heading, body in zip(exp.headings, (exp.meaning, exp.when, exp.fix), strict=True):
        text.append(f"\n{heading}\n", style="bold cyan")
        text.append(f"{body}\n")
    return text


def render_explanation(console: Console, exp: Explanation) -> None:
    """The full entry for one code: facts, then description, when, and fix."""
    body = Group(_facts(exp, exp.lang), _sections(exp))
    if console.is_terminal:
        console.print(Panel(body, title=f"[bold]{exp.code} {exp.name}[/bold]", title_align="left"))
    else:
        console.print(f"{exp.code} {exp.name}", markup=False)
        console.print(body)


def render_ending(console: Console, ending: Ending, lang: str = "en") -> None:
    """How a connection ended: code, name, cause, reason, detail, meaning and the fix."""
    exp = ending.explanation(lang)
    cause = ending.cause_text(lang)
    labels = _texts(lang)["labels"]
    text = Text()
    text.append(f"{ending.code} {exp.name}", style="bold red" if not ending.ok else "bold green")
    text.append(f"  ({labels['cause']}: {ending.cause})\n")
    summary = cause.summary[:1].upper() + cause.summary[1:]
    text.append(summary + "\n")
    if ending.detail and ending.detail != ending.reason:
        text.append(f"{labels['detail']}: ", style="bold")
        text.append(f"{ending.detail}\n")
    if ending.reason:
        text.append(f"{labels['reason']}: ", style="bold")
        text.append(f"{ending.reason}\n")
    text.append(f"\n{exp.headings[0]}\n", style="bold cyan")
    text.append(f"{exp.meaning}\n")
    text.append(f"\n{exp.headings[2]}\n", style="bold cyan")
    text.append(f"{ending.fix_text(lang)}\n")
    if console.is_terminal:
        console.print(Panel(text, border_style="red" if not ending.ok else "green"))
    else:
        console.print(text)
