"""Rendering endings and explanations for people: rich on a terminal, plain when piped.

Every command prints through a Console from :func:`make_console`. On a terminal it
draws panels and tables. When the output is piped it prints plain text: no colour,
no box drawing, no wrapping at 80 columns and nothing cut, one record per line, and
tables as aligned columns (see :func:`print_table`), so that ``grep``, ``cut`` and
log files get whole lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from wsdoctor.knowledge import CauseEntry, Explanation, _texts
from wsdoctor.protocol._ending import Ending

__all__ = ["label", "make_console", "print_table", "render_cause", "render_ending", "render_explanation", "ui"]

Cell = str | Text


def label(lang: str, key: str) -> str:
    """A localised UI word from the registry's labels."""
    value = _texts(lang)["labels"][key]
    return str(value)


def ui(lang: str) -> dict[str, Any]:
    """The commands' own words in ``lang`` (kept with the registry's texts, checked for parity)."""
    words: dict[str, Any] = _texts(lang)["labels"]["ui"]
    return words


def make_console(*, stderr: bool = False) -> Console:
    """A Console that never wraps or cuts lines when its output is not a terminal."""
    console = Console(highlight=False, stderr=stderr)
    if not console.is_terminal:
        console.soft_wrap = True
    return console


def _plain(cell: Cell) -> str:
    text = cell.plain if isinstance(cell, Text) else cell
    return "; ".join(part.strip() for part in text.splitlines() if part.strip())


def print_table(
    console: Console,
    headers: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    *,
    title: str | None = None,
    show_lines: bool = False,
    expand: bool = False,
) -> None:
    """A table: drawn on a terminal, aligned plain columns (one row per line) when piped.

    Piped cells lose their line breaks (parts joined with "; ") so that every row stays one
    line; columns are separated by at least two spaces and the last one is not padded.
    """
    if console.is_terminal:
        table = Table(title=title, title_justify="left", show_lines=show_lines, expand=expand)
        for heading in headers:
            table.add_column(heading, overflow="fold")
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    if title:
        console.print(title, markup=False)
    grid = [[_plain(c) for c in row] for row in [list(headers), *rows]]
    widths = [max(len(row[i]) for row in grid) for i in range(len(headers))]
    for row in grid:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        console.print(line.rstrip(), markup=False, highlight=False, soft_wrap=True)


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


def render_cause(console: Console, entry: CauseEntry) -> None:
    """One cause id: its close code, then what it means, when you see it, and the fix."""
    labels = _texts(entry.lang)["labels"]
    code = "" if entry.code is None else f"{entry.code} "
    text = Text()
    text.append(f"{labels['close_code']}: ", style="bold")
    text.append(f"{code}{entry.name}\n")
    text.append(f"{labels['retried']}: ", style="bold")
    text.append(f"{entry.retried}\n")
    summary = entry.summary[:1].upper() + entry.summary[1:]
    for heading, body in zip(entry.headings, (summary, entry.when, entry.fix), strict=True):
        text.append(f"\n{heading}\n", style="bold cyan")
        text.append(f"{body}\n")
    title = f"{labels['cause']}: {entry.cause}"
    if console.is_terminal:
        console.print(Panel(text, title=f"[bold]{title}[/bold]", title_align="left"))
    else:
        console.print(title, markup=False)
        console.print(text)


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
