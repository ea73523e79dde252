"""Start-up cost: ``import wsdoctor`` against ``import websockets``, in fresh processes.

Each import runs in a new interpreter (``python -c``), so nothing is cached in
``sys.modules``; the figure is the wall time of the whole process, interpreter
start-up included, and the best of N runs is kept because this shared machine is
noisy. A second figure, measured inside the process, isolates the import itself.
It also times a first use of ``connect`` in each library (both defer their imports
until a name is used) and the command line's cheapest path (``wsdoctor --version``).

    python bench/import_time.py [--runs 10]

A benchmark, not a test: nothing here runs in CI.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

INNER = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def best_process(code: list[str], runs: int) -> float:
    """Best wall time of ``runs`` fresh processes running ``python <code>``."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, *code], check=True, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - started)
    return best


def best_inner(module: str, runs: int) -> float:
    """Best time of the import statement alone, each in a fresh process."""
    return min(
        float(
            subprocess.run(
                [sys.executable, "-c", INNER.format(module=module)], check=True, capture_output=True, text=True
            ).stdout
        )
        for _ in range(runs)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    env_note = f"PYTHONPATH={os.environ.get('PYTHONPATH', '')}" if os.environ.get("PYTHONPATH") else ""
    print(f"CPython {sys.version.split()[0]}, best of {args.runs} fresh processes {env_note}".rstrip())
    print(f"{'what':<28} {'process ms':>10} {'import ms':>10}")
    baseline = best_process(["-c", "pass"], args.runs)
    print(f"{'python -c pass':<28} {baseline * 1000:>10.1f} {'':>10}")
    for module in ("websockets", "wsdoctor", "wsdoctor.cli"):
        process = best_process(["-c", f"import {module}"], args.runs)
        inner = best_inner(module, args.runs)
        print(f"{'import ' + module:<28} {process * 1000:>10.1f} {inner * 1000:>10.1f}")
    # Both packages defer their imports: what a client program pays on first use of connect.
    for label, statement in (
        ("websockets: connect ready", "from websockets.asyncio.client import connect"),
        ("wsdoctor: connect ready", "from wsdoctor import connect"),
    ):
        process = best_process(["-c", statement], args.runs)
        print(f"{label:<28} {process * 1000:>10.1f} {'':>10}")
    version = best_process(["-m", "wsdoctor", "--version"], args.runs)
    print(f"{'wsdoctor --version':<28} {version * 1000:>10.1f} {'':>10}")


if __name__ == "__main__":
    main()
