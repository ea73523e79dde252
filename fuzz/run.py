"""Run every fuzz target for a bounded time, starting from the committed seed corpus.

    python3 fuzz/run.py [--seconds 10] [--only frames,uri]

New inputs go to a temporary directory, not into fuzz/corpus, so a run leaves the tree
as it was; a crash's input is copied to fuzz/crashes/ and the run fails. Turn a crash
into a regression test in tests/robust/test_fuzz_regressions.py, fix it, and add its
input to the seed corpus.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGETS = ["handshake", "frames", "inflate", "uri"]


def run(target: str, seconds: float) -> bool:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{target}-") as scratch:
        started = time.monotonic()
        proc = subprocess.run(
            [
                sys.executable,
                str(HERE / f"fuzz_{target}.py"),
                scratch,
                str(HERE / "corpus" / target),
                f"-max_total_time={seconds:g}",
                f"-artifact_prefix={scratch}/",
                "-print_final_stats=1",
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        elapsed = time.monotonic() - started
        runs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", proc.stderr)
        crashes = [p for p in Path(scratch).iterdir() if p.name.startswith(("crash-", "timeout-", "oom-"))]
        if proc.returncode != 0 or crashes:
            keep = HERE / "crashes"
            keep.mkdir(exist_ok=True)
            for crash in crashes:
                shutil.copy(crash, keep / f"{target}-{crash.name}")
            tail = "\n".join(line for line in proc.stderr.splitlines() if not line.startswith("INFO: Instrumenting"))
            print(f"{target}: FAILED after {elapsed:.0f} s\n{tail[-4000:]}", file=sys.stderr)
            return False
        print(f"{target}: {runs[-1] if runs else '?'} inputs in {elapsed:.0f} s, no crash")
        return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="per target")
    parser.add_argument("--only", default=",".join(TARGETS))
    args = parser.parse_args()
    results = [run(target, args.seconds) for target in args.only.split(",")]
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
