"""The README's table of limits is the code's defaults, and client and server agree on them."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest

from wsdoctor.aio.client import connect
from wsdoctor.aio.connection import Limits
from wsdoctor.aio.server import Server
from wsdoctor.diagnose.limits import END, START, limits_table, update_readme

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_table_matches_the_code() -> None:
    text = README.read_text(encoding="utf-8")
    assert update_readme(text) == text, "run: python3 -m wsdoctor.diagnose.limits README.md"
    block = text.split(START, 1)[1].split(END, 1)[0]
    assert block.strip() == limits_table()


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(Limits)])
def test_connect_and_serve_share_the_defaults(field: str) -> None:
    default = next(f.default for f in dataclasses.fields(Limits) if f.name == field)
    assert inspect.signature(connect.__init__).parameters[field].default == default
    assert inspect.signature(Server.__init__).parameters[field].default == default
    assert inspect.signature(Server.__init__).parameters["tls_min_version"].default == (
        inspect.signature(connect.__init__).parameters["tls_min_version"].default
    )


def test_a_changed_default_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    import wsdoctor.diagnose.limits as limits

    monkeypatch.setattr(limits, "RETRY_AFTER", 99)
    assert "Retry-After: 99" in limits_table()
    assert update_readme(README.read_text(encoding="utf-8")) != README.read_text(encoding="utf-8")


def test_update_needs_the_markers() -> None:
    with pytest.raises(ValueError, match="limits:start"):
        update_readme("no table here")
