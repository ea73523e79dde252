"""The package's surface: every public name resolves, and importing it stays cheap."""

from __future__ import annotations

import json
import subprocess
import sys

import wsdoctor

HEAVY = ("asyncio", "ssl", "cryptography", "rich", "click", "h11")


def loaded_after(statement: str) -> set[str]:
    code = f"import sys, json; {statement}; print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return set(json.loads(out.stdout))


def test_every_public_name_resolves() -> None:
    assert set(wsdoctor.__all__) == set(wsdoctor._LAZY)
    for name in wsdoctor.__all__:
        assert getattr(wsdoctor, name) is not None
        assert name in dir(wsdoctor)
    assert wsdoctor.connect.__module__ == "wsdoctor.aio.client"


def test_import_wsdoctor_loads_nothing_heavy() -> None:
    assert not loaded_after("import wsdoctor") & set(HEAVY)
    # Using a name loads what it needs, and only that.
    assert "asyncio" in loaded_after("import wsdoctor; wsdoctor.connect")


def test_the_command_line_reads_certificates_only_when_it_must() -> None:
    assert "cryptography" not in loaded_after("import wsdoctor.cli")
