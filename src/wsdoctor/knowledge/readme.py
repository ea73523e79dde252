"""The README's table of cause ids, generated from the registry so that it cannot drift.

``python3 -m wsdoctor.knowledge.readme [README.md]`` rewrites the table between the
``<!-- causes:start -->`` and ``<!-- causes:end -->`` markers; ``--check`` only says
whether it is up to date (exit 1 when not). A test calls :func:`update` to keep the
committed README in sync with ``data/en.json`` and ``data/codes.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wsdoctor.knowledge import _codes, cause_ids, describe_cause

__all__ = ["END", "START", "cause_table", "main", "update"]

START = "<!-- causes:start -->"
END = "<!-- causes:end -->"
COMMAND = "python3 -m wsdoctor.knowledge.readme README.md"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def cause_code_is_any(cause: str) -> bool:
    """A cause without a code either takes the Close frame's code or ends no connection at all."""
    return bool(_codes()["causes"].get(cause, {}).get("ends", True))


def cause_table(lang: str = "en") -> str:
    """One Markdown row per cause id, in registry order: the id, its close code, its meaning."""
    rows = ["| cause | code | what it means |", "|---|---|---|"]
    for cause in cause_ids():
        entry = describe_cause(cause, lang)
        if entry.code is not None:
            code = str(entry.code)
        else:
            code = "any (the Close frame's)" if cause_code_is_any(cause) else "none"
        summary = entry.summary[:1].upper() + entry.summary[1:]
        rows.append(f"| `{cause}` | {code} | {_cell(summary)} |")
    return "\n".join(rows)


def update(text: str, lang: str = "en") -> str:
    """``text`` with the table between the markers regenerated; ``ValueError`` without markers."""
    start = text.find(START)
    end = text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the markers {START} and {END} are missing or out of order")
    before = text[: start + len(START)]
    return f"{before}\n{cause_table(lang)}\n{text[end:]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m wsdoctor.knowledge.readme", description=__doc__)
    parser.add_argument("readme", nargs="?", default="README.md", type=Path)
    parser.add_argument("--check", action="store_true", help="Exit 1 if the table is out of date; write nothing.")
    args = parser.parse_args(argv)
    path: Path = args.readme
    try:
        text = path.read_text(encoding="utf-8")
        new = update(text)
    except (OSError, ValueError) as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 2
    if new == text:
        print(f"{path}: the cause table is up to date")
        return 0
    if args.check:
        print(f"{path}: the cause table is out of date; run {COMMAND}", file=sys.stderr)
        return 1
    path.write_text(new, encoding="utf-8")
    print(f"{path}: cause table regenerated ({len(cause_ids())} causes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
