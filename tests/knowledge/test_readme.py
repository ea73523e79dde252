"""The README's cause table matches the registry: every cause id, its code and its meaning."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from wsdoctor.knowledge import cause_code, cause_ids
from wsdoctor.knowledge.readme import COMMAND, END, START, cause_code_is_any, cause_table, main, update

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_cause_table_is_up_to_date() -> None:
    text = README.read_text(encoding="utf-8")
    assert text == update(text), f"the README's cause table is out of date: run {COMMAND}"


def test_table_lists_every_cause_with_its_code() -> None:
    rows = cause_table().splitlines()[2:]
    assert len(rows) == len(cause_ids())
    for cause, row in zip(cause_ids(), rows, strict=True):
        code = cause_code(cause)
        shown = str(code) if code is not None else ("any" if cause_code_is_any(cause) else "none")
        assert row.startswith(f"| `{cause}` | {shown}"), row
    assert "| `tls.expired` | 1015 | The server's certificate has expired. |" in rows


def test_update_replaces_only_between_the_markers() -> None:
    text = f"intro\n{START}\nstale | row\n{END}\nrest\n"
    new = update(text)
    assert new.startswith(f"intro\n{START}\n| cause | code |") and new.endswith(f"\n{END}\nrest\n")
    assert "stale" not in new and update(new) == new
    with pytest.raises(ValueError, match="markers"):
        update("no markers here")


def test_command_regenerates_and_checks(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{START}\n{END}\n", encoding="utf-8")
    assert main([str(readme), "--check"]) == 1
    assert main([str(readme)]) == 0 and "tls.expired" in readme.read_text(encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "wsdoctor.knowledge.readme", str(readme), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and "up to date" in out.stdout
    assert main([str(tmp_path / "missing.md")]) == 2


def test_readme_except_block_passes_mypy_strict(tmp_path: Path) -> None:
    """The README promises that ``exc.ending.code`` type-checks: run its own block through mypy --strict."""
    text = README.read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "except wsdoctor.WebSocketError" in b)
    program = tmp_path / "readme_except.py"
    program.write_text(
        "import wsdoctor\n\n\nasync def main() -> None:\n" + textwrap.indent(block, "    "), encoding="utf-8"
    )
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), str(program)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(README.parent / "src")},
    )
    assert out.returncode == 0, out.stdout + out.stderr
