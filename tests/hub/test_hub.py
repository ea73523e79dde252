"""Hub: rooms in one process, and across hubs on a real Redis, a Redis restart and a 3-node cluster."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
from collections.abc import AsyncIterator, Callable

import pytest

import wsdoctor
from _helpers import free_port
from redis_servers import RedisClusterNodes, RedisServer
from wsdoctor import Hub, WebSocketConnection


def room_server(hub: Hub) -> Callable[[WebSocketConnection], object]:
    """A handler that puts each connection in the room named by its path and keeps it there."""

    async def handler(ws: WebSocketConnection) -> None:
        hub.join(ws.path.strip("/"), ws)
        await ws.wait_closed()

    return handler


async def connect_to(server: wsdoctor.Server, room: str) -> WebSocketConnection:
    return await wsdoctor.connect(f"ws://127.0.0.1:{server.port_number}/{room}")


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.fixture
async def local() -> AsyncIterator[tuple[Hub, wsdoctor.Server]]:
    hub = Hub()
    async with wsdoctor.serve(room_server(hub), "127.0.0.1", 0) as server:
        yield hub, server
    await hub.close()


async def test_publish_reaches_the_room_and_only_the_room(local: tuple[Hub, wsdoctor.Server]) -> None:
    hub, server = local
    async with asyncio.timeout(10):
        reds = [await connect_to(server, "red") for _ in range(3)]
        blue = await connect_to(server, "blue")
        await until(lambda: len(hub.members("red")) == 3 and len(hub.members("blue")) == 1)
        assert hub.rooms() == ["blue", "red"]
        assert await hub.publish("red", "to the reds") == 3
        assert await hub.publish("blue", b"\x01 to blue") == 1
        for ws in reds:
            assert await ws.recv() == "to the reds"
        assert await blue.recv() == b"\x01 to blue"
        assert await hub.publish("nobody", "lost in space") == 0
        for ws in (*reds, blue):
            await ws.close()


async def test_a_connection_leaves_its_rooms_when_it_ends(local: tuple[Hub, wsdoctor.Server]) -> None:
    hub, server = local
    async with asyncio.timeout(10):
        a = await connect_to(server, "room")
        b = await connect_to(server, "room")
        await until(lambda: len(hub.members("room")) == 2)
        await b.close()
        await until(lambda: len(hub.members("room")) == 1)
        await a.close()
        await until(lambda: hub.rooms() == [])


async def test_leave_and_explicit_membership(local: tuple[Hub, wsdoctor.Server]) -> None:
    hub, server = local
    async with asyncio.timeout(10):
        a = await connect_to(server, "one")
        await until(lambda: len(hub.members("one")) == 1)
        (member,) = hub.members("one")
        hub.join("two", member)
        hub.leave("one", member)
        assert hub.rooms() == ["two"]
        assert await hub.publish("one", "gone") == 0
        assert await hub.publish("two", "here") == 1
        assert await a.recv() == "here"
        with pytest.raises(TypeError, match="not a WebSocket"):
            hub.join("two", object())
        await a.close()


async def test_hubs_on_one_redis_deliver_across_servers(redis_server: RedisServer) -> None:
    async with asyncio.timeout(20), Hub(redis_server.url) as hub_a, Hub(redis_server.url) as hub_b:
        async with (
            wsdoctor.serve(room_server(hub_a), "127.0.0.1", 0) as server_a,
            wsdoctor.serve(room_server(hub_b), "127.0.0.1", 0) as server_b,
        ):
            on_a = await connect_to(server_a, "lobby")
            on_b = await connect_to(server_b, "lobby")
            elsewhere = await connect_to(server_b, "other")
            await until(lambda: len(hub_a.members("lobby")) == 1 and len(hub_b.members("lobby")) == 1)
            await hub_a.sync()
            await hub_b.sync()
            assert await hub_a.publish("lobby", "from server a") == 2  # two processes subscribed
            assert await hub_b.publish("lobby", b"from server b") == 2
            for ws in (on_a, on_b):
                assert await ws.recv() == "from server a"
                assert await ws.recv() == b"from server b"
            await hub_a.publish("other", "only b's other room")
            assert await elsewhere.recv() == "only b's other room"
            for ws in (on_a, on_b, elsewhere):
                await ws.close()


async def test_a_redis_restart_is_survived_and_logged(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="wsdoctor.hub")
    async with asyncio.timeout(40), Hub(redis_server.url, max_backoff=0.5) as hub, Hub(redis_server.url) as other:
        async with wsdoctor.serve(room_server(hub), "127.0.0.1", 0) as server:
            ws = await connect_to(server, "news")
            await until(lambda: len(hub.members("news")) == 1)
            await hub.sync()
            assert await other.publish("news", "before") == 1
            assert await ws.recv() == "before"

            redis_server.stop()
            assert await other.publish("news", "during") == 0
            assert other.lost == 1
            # The WebSocket server keeps serving while Redis is gone.
            assert await ws.ping() >= 0
            await until(lambda: any("lost Redis" in r.getMessage() for r in caplog.records), 10)

            redis_server.start()
            await hub.sync(timeout=20)
            assert await other.publish("news", "after") == 1
            assert await ws.recv() == "after"
            await until(lambda: any("Redis is back" in r.getMessage() for r in caplog.records), 10)
            await ws.close()
    lost = [r.getMessage() for r in caplog.records if "hub.publish_lost" in r.getMessage()]
    assert len(lost) >= 3  # the lost publish, the lost subscription, the recovery


async def test_a_closed_hub_releases_its_redis_connections(redis_server: RedisServer) -> None:
    baseline = redis_server.clients()
    hub = Hub(redis_server.url)
    async with asyncio.timeout(20), wsdoctor.serve(room_server(hub), "127.0.0.1", 0) as server:
        ws = await connect_to(server, "room")
        await until(lambda: len(hub.members("room")) == 1)
        await hub.sync()
        await hub.publish("room", "hello")
        assert await ws.recv() == "hello"
        assert redis_server.clients() >= baseline + 2  # a publisher and a subscriber
        await hub.close()
        await until(lambda: redis_server.clients() == baseline)
        with pytest.raises(RuntimeError, match="closed"):
            await hub.publish("room", "after close")
        await ws.close()


async def test_cluster_uses_sharded_pubsub_across_shards(redis_cluster: RedisClusterNodes) -> None:
    rooms = [f"room-{i}" for i in range(12)]
    async with (
        asyncio.timeout(40),
        Hub(redis_cluster.url, cluster=True) as hub_a,
        Hub(f"redis+cluster://127.0.0.1:{redis_cluster.nodes[1].port}/0") as hub_b,
    ):
        async with wsdoctor.serve(room_server(hub_a), "127.0.0.1", 0) as server:
            clients = {room: await connect_to(server, room) for room in rooms}
            await until(lambda: all(len(hub_a.members(r)) == 1 for r in rooms))
            await hub_a.sync(timeout=20)
            for room in rooms:
                assert await hub_b.publish(room, f"to {room}") == 1
            for room, ws in clients.items():
                assert await ws.recv() == f"to {room}"
            # The rooms' channels live on more than one shard, each read by its own subscriber.
            shards = []
            for node in redis_cluster.nodes:
                out = subprocess.run(
                    ["redis-cli", "-p", str(node.port), "pubsub", "shardchannels"],
                    capture_output=True,
                    text=True,
                    timeout=10,
                ).stdout
                shards.append(len(out.split()))
            assert sum(shards) == len(rooms) and sum(1 for n in shards if n) >= 2
            for ws in clients.values():
                await ws.close()


async def test_a_burst_arrives_whole_and_in_order(redis_server: RedisServer) -> None:
    async with asyncio.timeout(20), Hub(redis_server.url) as hub, Hub(redis_server.url) as other:
        async with wsdoctor.serve(room_server(hub), "127.0.0.1", 0) as server:
            clients = [await connect_to(server, "burst") for _ in range(3)]
            await until(lambda: len(hub.members("burst")) == 3)
            await hub.sync()
            sent = [f"message {i}" if i % 2 else f"message {i}".encode() for i in range(200)]
            for message in sent:
                await other.publish("burst", message)
            for ws in clients:
                assert [await ws.recv() for _ in sent] == sent
                await ws.close()
            assert hub.skipped == 0


async def test_cluster_rooms_follow_their_slots_through_a_failover(
    redis_cluster_with_replicas: RedisClusterNodes, caplog: pytest.LogCaptureFixture
) -> None:
    cluster = redis_cluster_with_replicas
    caplog.set_level(logging.WARNING, logger="wsdoctor.hub")
    rooms = [f"room-{i}" for i in range(9)]
    async with (
        asyncio.timeout(90),
        Hub(cluster.url, cluster=True, max_backoff=0.5) as hub,
        Hub(cluster.url, cluster=True) as other,
    ):
        async with wsdoctor.serve(room_server(hub), "127.0.0.1", 0) as server:
            clients = {room: await connect_to(server, room) for room in rooms}
            await until(lambda: all(len(hub.members(r)) == 1 for r in rooms))
            await hub.sync(timeout=30)
            for room in rooms:
                await other.publish(room, "before")
            for ws in clients.values():
                assert await ws.recv() == "before"

            # A replica takes over its master's slots (a graceful manual failover).
            # It needs its replication link up, and a failover that times out (a replica still
            # catching up) is simply asked for again.
            replica = next(n for n in cluster.nodes if cluster.role(n) == "slave")
            await until(lambda: "connected" in cluster.cli(replica, "role").split(), 30)
            for _ in range(5):
                assert "OK" in await asyncio.to_thread(cluster.cli, replica, "cluster", "failover")
                with contextlib.suppress(TimeoutError):
                    await until(lambda: cluster.role(replica) == "master", 10)
                    break
            assert cluster.role(replica) == "master"

            # Pub/sub is at most once: publish until every room's member hears again.
            async def hears(room: str, ws: WebSocketConnection) -> None:
                while True:
                    await other.publish(room, "after")
                    try:
                        async with asyncio.timeout(0.5):
                            while await ws.recv() != "after":
                                pass
                        return
                    except TimeoutError:
                        continue

            await asyncio.gather(*(hears(room, ws) for room, ws in clients.items()))
            for ws in clients.values():
                await ws.close()
    assert any("its slot moved" in r.getMessage() for r in caplog.records)


async def test_cluster_publish_without_a_reachable_node_is_lost_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # redis-py's cluster client raises RedisClusterException (not a RedisError) when no
    # startup node answers; publish() must still count and log the loss instead of raising.
    caplog.set_level(logging.WARNING, logger="wsdoctor.hub")
    async with asyncio.timeout(30), Hub(f"redis://127.0.0.1:{free_port()}/0", cluster=True) as hub:
        assert await hub.publish("room", "nobody listens") == 0
        assert hub.lost == 1
    assert any("hub.publish_lost" in r.getMessage() for r in caplog.records)


async def test_cluster_publish_goes_to_the_slot_owner_and_follows_a_stale_route(
    redis_cluster: RedisClusterNodes,
) -> None:
    # The hub publishes on a plain connection to the node that owns the room's slot. When
    # its cached route is wrong (here: pointed at another node on purpose), the node answers
    # MOVED and the message still arrives through the cluster client, without a loss.
    async with (
        asyncio.timeout(40),
        Hub(redis_cluster.url, cluster=True) as hub,
        Hub(redis_cluster.url, cluster=True) as other,
    ):
        async with wsdoctor.serve(room_server(hub), "127.0.0.1", 0) as server:
            ws = await connect_to(server, "routed")
            await until(lambda: len(hub.members("routed")) == 1)
            await hub.sync(timeout=20)
            assert await other.publish("routed", "first") == 1
            assert await ws.recv() == "first"
            fanout = other._redis
            assert fanout is not None and len(fanout._direct) == 1
            owner = next(iter(fanout._direct))
            wrong = next(f"127.0.0.1:{n.port}" for n in redis_cluster.nodes if f"127.0.0.1:{n.port}" != owner)
            cluster = fanout.publisher
            slot = cluster.keyslot("wsdoctor:room:routed")  # type: ignore[union-attr]
            nodes = cluster.nodes_manager  # type: ignore[union-attr]
            nodes.slots_cache[slot] = [nodes.get_node(node_name=wrong)]
            assert await other.publish("routed", "second") == 1
            assert await ws.recv() == "second"
            assert other.lost == 0
            await ws.close()
