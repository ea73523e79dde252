"""``wsdoctor serve --relay``, ``--redis`` across two servers and ``--workers`` on one port, with a real Redis."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import wsdoctor
from _helpers import ServeProcess, serve_process
from redis_servers import RedisServer

CHANNEL = "wsdoctor:room:/chat"
ENV = {**os.environ, "COLUMNS": "200"}


@contextmanager
def serving(*args: str) -> Iterator[ServeProcess]:
    """``wsdoctor serve ARGS`` on a free loopback port (see ``serve_process``), its banner checked."""
    with serve_process(*args, env=ENV) as server:
        assert "listening on ws://127.0.0.1:" in server.banner, server.banner
        yield server


def subscribers(redis: RedisServer, channel: str = CHANNEL) -> int:
    out = subprocess.run(
        ["redis-cli", "-p", str(redis.port), "pubsub", "numsub", channel], capture_output=True, text=True, timeout=10
    ).stdout.split()
    return int(out[1]) if len(out) == 2 else 0


async def wait_subscribers(redis: RedisServer, n: int) -> None:
    async with asyncio.timeout(45):
        while await asyncio.to_thread(subscribers, redis) < n:
            await asyncio.sleep(0.05)


def test_relay_sends_to_the_others_on_the_same_path() -> None:
    with serving("--relay") as server:
        url = server.url

        async def talk() -> None:
            async with asyncio.timeout(15):
                a = await wsdoctor.connect(url + "chat")
                b = await wsdoctor.connect(url + "chat")
                other = await wsdoctor.connect(url + "elsewhere")
                await asyncio.sleep(0.2)  # both handlers have joined
                await a.send("hello b")
                assert await b.recv() == "hello b"
                await b.send(b"\x00 hello a")
                assert await a.recv() == b"\x00 hello a"
                with pytest.raises(TimeoutError):  # neither the sender nor another path gets it
                    async with asyncio.timeout(0.3):
                        await asyncio.gather(a.recv(), other.recv())
                for ws in (a, b, other):
                    await ws.close()

        asyncio.run(talk())


def test_relay_across_two_servers_on_one_redis(redis_server: RedisServer) -> None:
    with serving("--redis", redis_server.url) as a, serving("--redis", redis_server.url) as b:
        url_a, proc_a, url_b = a.url, a.proc, b.url
        assert url_a != url_b

        async def talk() -> None:
            async with asyncio.timeout(30):
                on_a = await wsdoctor.connect(url_a + "chat")
                on_b = await wsdoctor.connect(url_b + "chat")
                await wait_subscribers(redis_server, 2)
                await on_a.send("from a")
                assert await on_b.recv() == "from a"
                await on_b.send("from b")
                assert await on_a.recv() == "from b"
                for ws in (on_a, on_b):
                    await ws.close()

        asyncio.run(talk())
        proc_a.send_signal(signal.SIGINT)
        out, _ = proc_a.communicate(timeout=30)
    # The server explains each ending, the relayed connections' included.
    assert "closed.by_peer" in out


def test_workers_share_one_port_and_relay_through_redis(redis_server: RedisServer) -> None:
    with serving("--redis", redis_server.url, "--workers", "2") as server:
        url, proc = server.url, server.proc
        assert proc.stdout is not None
        for line in proc.stdout:  # until the second worker listens too
            if "listening on" in line:
                break
        else:
            pytest.fail("the second worker did not start")

        async def talk() -> None:
            async with asyncio.timeout(90):
                clients = [await wsdoctor.connect(url + "chat") for _ in range(24)]
                await wait_subscribers(redis_server, 2)  # the kernel gave connections to both workers
                await clients[0].send("to everyone")
                for ws in clients[1:]:
                    assert await ws.recv() == "to everyone"
                for ws in clients:
                    await ws.close()

        asyncio.run(talk())
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert proc.returncode == 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--redis", "http://nowhere"], "is not a Redis URL"),
        (["--relay", "--workers", "2"], "needs --redis"),
    ],
)
def test_bad_relay_options_are_usage_errors(args: list[str], expected: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "wsdoctor", "serve", "--port", "0", *args], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 2
    assert expected in out.stderr
    assert "Traceback" not in out.stderr


def test_two_servers_keep_relaying_across_a_redis_restart(redis_server: RedisServer) -> None:
    with serving("--redis", redis_server.url) as a, serving("--redis", redis_server.url) as b:
        url_a, proc_a, url_b = a.url, a.proc, b.url

        async def talk() -> None:
            async with asyncio.timeout(60):
                on_a = await wsdoctor.connect(url_a + "chat")
                on_b = await wsdoctor.connect(url_b + "chat")
                await wait_subscribers(redis_server, 2)
                await on_a.send("before")
                assert await on_b.recv() == "before"

                await asyncio.to_thread(redis_server.stop)
                await on_a.send("while redis is down")  # lost: pub/sub is at most once
                assert await on_a.ping() >= 0 and await on_b.ping() >= 0  # both servers still serve
                await asyncio.to_thread(redis_server.start)
                await wait_subscribers(redis_server, 2)  # both resubscribed by themselves

                await on_b.send("after")
                assert await on_a.recv() == "after"  # and not the lost message
                for ws in (on_a, on_b):
                    await ws.close()

        asyncio.run(talk())
        proc_a.send_signal(signal.SIGINT)
        out, _ = proc_a.communicate(timeout=30)
    assert "was lost" in out and "hub.publish_lost" in out
    assert "Redis is back" in out
