"""A tour of the failure lab: start a few broken servers, check each one, compare.

``wsdoctor demo`` starts each scenario's fault (see :mod:`wsdoctor.diagnose.faults`)
on 127.0.0.1, runs the same step-by-step check as ``wsdoctor check`` against it, and
compares what the check found with what the scenario set up. It doubles as a smoke
test of the whole stack: real sockets, real TLS with generated certificates, the
real client and server.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from wsdoctor.diagnose.check import CheckResult, run_check
from wsdoctor.diagnose.faults import RunningFault, get_fault, start_fault

if TYPE_CHECKING:
    from wsdoctor.diagnose.certs import Pki

__all__ = ["Outcome", "Scenario", "run_demo", "scenarios"]

HOST = "127.0.0.1"


@dataclass
class Scenario:
    """One broken (or healthy) server and what a correct diagnosis says about it."""

    name: str
    description: str
    expected_code: int
    expected_cause: str
    secure: bool = False
    require_extensions: tuple[str, ...] = ()
    fault: str = "healthy"


@dataclass
class Outcome:
    scenario: Scenario
    result: CheckResult
    url: str

    @property
    def found(self) -> tuple[int, str] | None:
        ending = self.result.ending
        return None if ending is None else (ending.code, ending.cause)

    @property
    def matches(self) -> bool:
        return self.found == (self.scenario.expected_code, self.scenario.expected_cause)


# The demo's scenario names (stable in its JSON output) and the lab faults they run.
_TOUR: tuple[tuple[str, str, str], ...] = (
    ("healthy", "healthy", "a healthy echo server"),
    ("mandatory-extension", "no-deflate", "a server that ignores the required permessage-deflate"),
    ("expired-cert", "expired", "a wss:// server whose certificate expired"),
    ("untrusted-ca", "untrusted", "a wss:// server with a certificate from an unknown CA"),
    ("hostname-mismatch", "hostname-mismatch", "a wss:// server whose certificate names another host"),
    ("incomplete-chain", "incomplete-chain", "a wss:// server that omits its intermediate certificate"),
    ("forbidden", "http-403", "a server that answers the upgrade with HTTP 403"),
    ("no-pong", "no-pong", "a server that stops answering pings"),
    ("internal-error", "close-1011", "a server that closes with 1011"),
)


def scenarios() -> list[Scenario]:
    result = []
    for name, fault_name, description in _TOUR:
        fault = get_fault(fault_name)
        result.append(
            Scenario(
                name,
                description,
                fault.expected_code,
                fault.expected_cause,
                secure=fault.secure,
                require_extensions=fault.require_extensions,
                fault=fault_name,
            )
        )
    return result


@contextlib.asynccontextmanager
async def _pki() -> AsyncIterator[Pki]:
    from wsdoctor.diagnose.certs import Pki  # cryptography: only when the demo runs

    with tempfile.TemporaryDirectory(prefix="wsdoctor-demo-") as tmp:
        yield Pki(Path(tmp))


async def run_demo(timeout: float = 3.0, on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Start every scenario, check each one, stop them all; returns the outcomes in order."""
    quiet = logging.getLogger("wsdoctor.demo.servers")
    quiet.propagate = False
    quiet.addHandler(logging.NullHandler())
    outcomes: list[Outcome] = []
    running: list[RunningFault] = []
    async with _pki() as pki:
        try:
            for scenario in scenarios():
                lab = await start_fault(get_fault(scenario.fault), pki, host=HOST, logger=quiet)
                running.append(lab)
                url = f"{lab.url}{scenario.name}"
                result = await run_check(
                    url,
                    ssl_context=lab.client_context,
                    require_extensions=scenario.require_extensions,
                    timeout=timeout,
                )
                outcome = Outcome(scenario, result, url)
                outcomes.append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)
        finally:
            for lab in running:
                await lab.close()
    return outcomes
