"""What every benchmark script here needs: a free loopback port and a process's CPU time.

The scripts measure server CPU per unit of work from /proc, so that a noisy machine's
wall-clock time does not decide the ratios; they share these two helpers.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

__all__ = ["TICKS", "cpu_ns", "cpu_seconds", "free_port"]

TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A loopback port free right now (the server binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` so far, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def cpu_ns(pid: int) -> int:
    """Time process ``pid``'s main thread has run so far, in nanoseconds (/proc/PID/schedstat).

    The scheduler's own count, to the nanosecond: /proc/PID/stat counts in ticks of 10 ms,
    too coarse for slices of half a second. The servers measured are single-threaded.
    """
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
