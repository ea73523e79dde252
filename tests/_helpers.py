"""``wsdoctor serve`` as a real child process, for the tests that need the command itself, not the library.

Every such test starts the server on a free port (``--port 0``), learns its URL from the banner, and
must never leave a server behind when an assertion fails halfway: these context managers do all three.
On leaving, a server that is still running gets Ctrl-C (SIGINT), the way a person stops it, and is
killed if it has not stopped after a while. A test that stops the server itself (to check the exit
status or the last lines) does so inside the block; the cleanup then has nothing to do.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

SERVE = [sys.executable, "-m", "wsdoctor", "serve", "--port", "0"]


@dataclass
class ServeProcess:
    """A running ``wsdoctor serve``: the process, its first line and the URL that line gives."""

    proc: subprocess.Popen[str]
    banner: str
    url: str


def listening_url(banner: str) -> str:
    """The URL in the banner line ``... listening on ws://host:port/ (Ctrl+C to stop)``."""
    assert "listening on " in banner, banner
    return banner.split("listening on ", 1)[1].split()[0]


@contextmanager
def serve_process(
    *args: str,
    env: Mapping[str, str] | None = None,
    stderr: int | None = None,
    preexec_fn: Callable[[], object] | None = None,
) -> Iterator[ServeProcess]:
    """``wsdoctor serve --port 0 ARGS`` with its standard output piped as text; yields once the banner is read.

    ``env`` is the child's whole environment (None: this process's); ``stderr`` and ``preexec_fn`` are
    passed to ``Popen`` as they are (``subprocess.STDOUT`` to read the warnings in line with the log).
    """
    proc = subprocess.Popen(
        [*SERVE, *args], stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, preexec_fn=preexec_fn
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        yield ServeProcess(proc, banner, listening_url(banner))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@asynccontextmanager
async def serve_subprocess(
    *args: str, env: Mapping[str, str] | None = None, stderr: int | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``wsdoctor serve --port 0 ARGS`` under asyncio, standard output piped (bytes); the caller reads it.

    Unlike ``serve_process`` it reads nothing first: the lab prints several lines before its URL, and
    each test knows which line it waits for.
    """
    proc = await asyncio.create_subprocess_exec(*SERVE, *args, stdout=asyncio.subprocess.PIPE, stderr=stderr, env=env)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
