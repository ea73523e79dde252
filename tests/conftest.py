"""Shared test fixtures: a headless Chromium that can reach nothing but loopback, real Redis servers."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from redis_servers import RedisClusterNodes, RedisServer

# Headless, no background traffic, and a resolver that answers NOTFOUND for every
# host name: pages can only reach IP literals on loopback (and file:// URLs).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[list[str]]:
    """The command line that starts Chromium with a fresh profile and the flags above."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Debian's chromium is needed: scripts/test installs it")
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    yield [path, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """Debian's redis-server on a free loopback port, no persistence; stopped after the test."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[RedisClusterNodes]:
    """A 3-node Redis Cluster (no replicas) on free loopback ports; stopped after the test."""
    cluster = RedisClusterNodes(tmp_path / "cluster")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def redis_cluster_with_replicas(tmp_path: Path) -> Iterator[RedisClusterNodes]:
    """Three masters with one replica each (6 nodes), for failovers; stopped after the test."""
    cluster = RedisClusterNodes(tmp_path / "cluster", replicas=1)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
