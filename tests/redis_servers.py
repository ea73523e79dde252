"""Real Redis for the tests: Debian's redis-server on free loopback ports, started and stopped here.

A single server (``RedisServer``) can be stopped and started again on the same port, to
test what survives a Redis restart; ``RedisCluster`` builds a 3-node cluster with
``redis-cli --cluster create``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from _helpers import free_port


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server on port {port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"redis-server did not answer on port {port} within {timeout} s")


def redis_server_path() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise RuntimeError("Debian's redis-server is needed: scripts/test installs it")
    return path


class RedisServer:
    """One redis-server process on 127.0.0.1, without persistence, in its own directory."""

    def __init__(self, workdir: Path, port: int | None = None, *extra: str) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.extra = list(extra)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                redis_server_path(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_listening(self.port, self.proc)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def clients(self) -> int:
        """How many client connections the server has, this query's own excluded."""
        out = subprocess.run(
            ["redis-cli", "-p", str(self.port), "client", "list"], capture_output=True, text=True, timeout=10
        ).stdout
        return len([line for line in out.splitlines() if line.strip()]) - 1


class RedisClusterNodes:
    """Three masters in cluster mode (and ``replicas`` replicas of each), joined with redis-cli."""

    def __init__(self, workdir: Path, replicas: int = 0) -> None:
        self.replicas = replicas
        self.nodes = [
            RedisServer(
                workdir / f"node{i}",
                None,
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
                # The bus port defaults to the port + 10000, which may be taken or above 65535.
                "--cluster-port",
                str(free_port()),
            )
            for i in range(3 * (1 + replicas))
        ]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{n.port}" for n in self.nodes),
                "--cluster-replicas",
                str(self.replicas),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            out = subprocess.run(
                ["redis-cli", "-p", str(self.nodes[0].port), "cluster", "info"],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout
            if "cluster_state:ok" in out:
                return
            time.sleep(0.1)
        raise RuntimeError("the Redis cluster did not reach cluster_state:ok")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def cli(self, node: RedisServer, *args: str) -> str:
        return subprocess.run(
            ["redis-cli", "-p", str(node.port), *args], capture_output=True, text=True, timeout=10
        ).stdout

    def role(self, node: RedisServer) -> str:
        return self.cli(node, "role").split("\n", 1)[0].strip()
