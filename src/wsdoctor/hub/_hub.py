"""Rooms of connections, in one process or across many on Redis pub/sub.

Theory of operation
-------------------
A :class:`Hub` keeps, per room, the connections of *this* process that joined it.
``await hub.publish(room, message)`` reaches every member of the room:

- without Redis, at once, with :func:`broadcast`;
- with Redis, through ``PUBLISH`` on the room's channel. Every process with members
  in a room is subscribed to its channel (the hub subscribes when a room gets its
  first local member and unsubscribes when its last one leaves), and delivers what
  arrives to its own members with :func:`broadcast`. The publishing process hears
  its own messages like the others, so every member sees one order per publisher.
- with a Redis Cluster, through sharded pub/sub (``SPUBLISH``/``SSUBSCRIBE``, Redis 7+):
  a room's channel hashes to one slot, so its messages touch only the shard that
  owns that slot and the fan-out capacity grows with the number of shards. The hub
  keeps one subscriber connection per shard that owns a subscribed room.

Delivery is at most once, as Redis pub/sub is: a process that is not connected when a
message is published never gets it. When the connection to Redis breaks, the hub
logs it, keeps serving its WebSockets, reconnects with exponential backoff and
subscribes again; it then logs how long it was away (what was published meanwhile
is lost). A publish that cannot reach Redis is logged and counted in
:attr:`Hub.lost`; it does not raise, so one Redis outage never takes a WebSocket
server down. Use Redis Streams (or a queue) when every message must arrive.

``redis`` is imported only when a hub with a URL is built (the ``redis`` extra).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from wsdoctor.aio.connection import WebSocketConnection
from wsdoctor.hub._broadcast import BroadcastResult, broadcast, broadcast_many

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub
    from redis.asyncio.cluster import RedisCluster

__all__ = ["Hub"]

Message = str | bytes

_POLL = 0.05  # how often a subscriber looks at its room list while messages are quiet
_BATCH = 64  # messages delivered in one go at most, so that one burst cannot hold the loop long
_TEXT, _BINARY = b"t", b"b"


def _encode(message: Message | bytearray | memoryview, origin: bytes = b"") -> bytes:
    """The wire form: a kind byte, the origin's length and the origin (the sender to skip), the body."""
    if isinstance(message, str):
        return b"".join((_TEXT, bytes((len(origin),)), origin, message.encode()))
    if isinstance(message, bytes | bytearray | memoryview):
        return b"".join((_BINARY, bytes((len(origin),)), origin, message))
    raise TypeError(f"publish() takes str or bytes, not {type(message).__name__}")


def _decode(data: bytes) -> tuple[Message, bytes] | None:
    if len(data) < 2 or len(data) < 2 + data[1]:
        return None
    kind, end = data[:1], 2 + data[1]
    origin, body = data[2:end], data[end:]
    if kind == _TEXT:
        try:
            return body.decode(), origin
        except UnicodeDecodeError:
            return None
    if kind == _BINARY:
        return body, origin
    return None


def connection_of(member: Any) -> WebSocketConnection | None:
    """The wsdoctor connection behind ``member``: itself, or the one under an ASGI WebSocket.

    An ASGI app served by ``wsdoctor.asgi`` holds a framework object (Starlette's
    ``WebSocket``, ...) whose scope carries the connection, so the hub can broadcast to
    it directly.
    """
    if isinstance(member, WebSocketConnection):
        return member
    scope = getattr(member, "scope", None)
    if isinstance(scope, dict):
        ext = scope.get("extensions", {}).get("wsdoctor")
        conn = ext.get("connection") if isinstance(ext, dict) else None
        if isinstance(conn, WebSocketConnection):
            return conn
    return None


class Hub:
    """Rooms of WebSocket connections: ``Hub()`` in one process, ``Hub("redis://host:6379/0")`` across many.

    ``Hub("redis://host:7000", cluster=True)`` (or a ``redis+cluster://`` URL) uses a
    Redis Cluster's sharded pub/sub. ``prefix`` namespaces the channels, so that several
    applications can share one Redis.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        cluster: bool = False,
        prefix: str = "wsdoctor:room:",
        max_backoff: float = 5.0,
        logger: logging.Logger | None = None,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.logger = logger or logging.getLogger("wsdoctor.hub")
        self.lost = 0  # publishes that could not reach Redis
        self.skipped = 0  # deliveries skipped because a member's write buffer was full
        self._rooms: dict[str, set[WebSocketConnection]] = {}
        self._others: dict[str, set[Any]] = {}
        self._joined: dict[WebSocketConnection, set[str]] = {}
        # A number per member connection, unique for the hub's life (unlike id()), so that a
        # publish can name its sender for the other processes' deliveries to skip it.
        self._tokens: dict[WebSocketConnection, int] = {}
        self._by_token: dict[int, WebSocketConnection] = {}
        self._next_token = 0
        self._closed = False
        self._id = os.urandom(8)  # tells this hub's publishes from other processes'
        self._redis: _RedisFanout | None = None
        if url is not None:
            if url.startswith("redis+cluster://"):
                url, cluster = "redis://" + url[len("redis+cluster://") :], True
            self._redis = _RedisFanout(self, url, cluster, max_backoff)

    # ---------------------------------------------------------------- rooms

    def join(self, room: str, member: Any) -> None:
        """Add a connection to ``room``; it leaves by itself when the connection ends.

        ``member`` is a :class:`WebSocketConnection`, or an ASGI framework's WebSocket
        (served by ``wsdoctor.asgi``, or by any server when it has ``send_text`` and
        ``send_bytes``: those members must :meth:`leave` themselves).
        """
        if self._closed:
            raise RuntimeError("the hub is closed")
        ws = connection_of(member)
        first = room not in self._rooms and room not in self._others
        if ws is None:
            if not (hasattr(member, "send_text") and hasattr(member, "send_bytes")):
                raise TypeError(f"cannot join {type(member).__name__}: not a WebSocket connection")
            self._others.setdefault(room, set()).add(member)
        else:
            if ws.closed:
                return
            self._rooms.setdefault(room, set()).add(ws)
            rooms = self._joined.get(ws)
            if rooms is None:
                rooms = self._joined[ws] = set()
                self._next_token += 1
                self._tokens[ws] = self._next_token
                self._by_token[self._next_token] = ws
                ws.add_close_callback(self._forget)
            rooms.add(room)
        if first and self._redis is not None:
            self._redis.want(self.prefix + room)

    def leave(self, room: str, member: Any) -> None:
        """Remove a connection from ``room`` (nothing happens if it is not there)."""
        ws = connection_of(member)
        if ws is None:
            others = self._others.get(room)
            if others is not None:
                others.discard(member)
                if not others:
                    del self._others[room]
        else:
            members = self._rooms.get(room)
            if members is not None:
                members.discard(ws)
                if not members:
                    del self._rooms[room]
            rooms = self._joined.get(ws)
            if rooms is not None:
                rooms.discard(room)
        if room not in self._rooms and room not in self._others and self._redis is not None:
            self._redis.unwant(self.prefix + room)

    def _forget(self, ws: WebSocketConnection) -> None:
        for room in self._joined.pop(ws, ()):
            self.leave(room, ws)
        token = self._tokens.pop(ws, None)
        if token is not None:
            del self._by_token[token]

    def members(self, room: str) -> frozenset[WebSocketConnection]:
        """This process's wsdoctor connections in ``room``."""
        return frozenset(self._rooms.get(room, ()))

    def rooms(self) -> list[str]:
        """The rooms with at least one member in this process."""
        return sorted(set(self._rooms) | set(self._others))

    # ------------------------------------------------------------- messages

    async def publish(self, room: str, message: Message, *, exclude: Any = None) -> int:
        """Send ``message`` to every member of ``room``, on every server attached to the hub.

        ``exclude`` names one member of this process that should not get it (the sender,
        for a relay). Returns how many local connections got it without Redis, and with it
        how many subscribed processes Redis handed it to (0 when Redis could not be
        reached: the message is lost, logged and counted in :attr:`lost`).
        """
        if self._closed:
            raise RuntimeError("the hub is closed")
        skip = None if exclude is None else connection_of(exclude)
        if self._redis is None:
            return self.deliver(room, message, exclude=skip).sent
        token = None if skip is None else self._tokens.get(skip)
        origin = b"" if token is None else self._id + token.to_bytes(8, "little")
        return await self._redis.publish(self.prefix + room, _encode(message, origin))

    def deliver(self, room: str, message: Message, *, exclude: WebSocketConnection | None = None) -> BroadcastResult:
        """Hand ``message`` to this process's members of ``room`` (what a received publish does)."""
        members: Iterable[WebSocketConnection] = self._rooms.get(room, ())
        if exclude is not None:
            members = [ws for ws in members if ws is not exclude]
        result = broadcast(members, message)
        self.skipped += result.skipped
        others = self._others.get(room)
        if others:
            self._send_others(room, others, message)
        return result

    def _send_others(self, room: str, others: set[Any], message: Message) -> None:
        for member in list(others):
            send = member.send_text(message) if isinstance(message, str) else member.send_bytes(message)
            task = asyncio.ensure_future(send)
            task.add_done_callback(lambda t, m=member, r=room: self._other_sent(t, r, m))

    def _other_sent(self, task: asyncio.Future[Any], room: str, member: Any) -> None:
        if task.cancelled() or task.exception() is not None:
            self.leave(room, member)

    def _received(self, batch: list[tuple[bytes | str, bytes]]) -> None:
        """Deliver what the subscriber read, room by room, in order; the publisher's own sender skipped."""
        by_room: dict[str, list[Message]] = {}
        for channel, data in batch:
            name = channel.decode() if isinstance(channel, bytes) else channel
            if not name.startswith(self.prefix):
                continue
            decoded = _decode(data)
            if decoded is None:
                self.logger.warning("hub: ignored a malformed message on %s", name)
                continue
            message, origin = decoded
            room = name[len(self.prefix) :]
            if origin:
                exclude = None
                if origin[:8] == self._id:
                    exclude = self._by_token.get(int.from_bytes(origin[8:], "little"))
                self._flush(room, by_room.pop(room, None))
                self.deliver(room, message, exclude=exclude)
            else:
                by_room.setdefault(room, []).append(message)
        for room, messages in by_room.items():
            self._flush(room, messages)

    def _flush(self, room: str, messages: list[Message] | None) -> None:
        if not messages:
            return
        if len(messages) == 1:
            self.deliver(room, messages[0])
            return
        self.skipped += broadcast_many(self._rooms.get(room, ()), messages).skipped
        others = self._others.get(room)
        if others:
            for message in messages:
                self._send_others(room, others, message)

    # ------------------------------------------------------------ lifecycle

    async def sync(self, timeout: float = 10.0) -> None:
        """Wait until Redis knows every room with members here, so a publish from elsewhere reaches them.

        Returns at once without Redis. Raises TimeoutError if Redis stays unreachable.
        """
        if self._redis is not None:
            async with asyncio.timeout(timeout):
                await self._redis.synced()

    async def close(self) -> None:
        """Stop subscribing and release every Redis connection; the members stay connected."""
        if self._closed:
            return
        self._closed = True
        if self._redis is not None:
            await self._redis.close()

    async def __aenter__(self) -> Hub:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class _Subscriber:
    """One subscriber connection (to the Redis server, or to one cluster shard) and its reading task."""

    def __init__(self, fanout: _RedisFanout, name: str, client: Redis) -> None:
        self.fanout = fanout
        self.name = name
        self.client = client
        self.channels: set[str] = set()  # what this subscriber should listen to
        self.subscribed: set[str] = set()  # what it asked Redis for on the current connection
        self.confirmed: set[str] = set()  # what Redis confirmed on the current connection
        self.wake = asyncio.Event()
        self.in_sync = asyncio.Event()
        self.pubsub: PubSub | None = None
        self.delay = 0.05
        self.task = asyncio.get_running_loop().create_task(self._run())

    def changed(self) -> None:
        self.in_sync.clear()
        self.wake.set()

    async def _run(self) -> None:
        while True:
            try:
                await self._pump()
            except Exception as exc:
                await self._drop_pubsub(exc)
                if self.fanout.sharded:
                    # The shard may be gone for good (a failover moved its slots): hand the
                    # rooms back, to be placed again on whichever node owns them now.
                    await asyncio.sleep(self.delay)
                    self.fanout.release(self)
                    with contextlib.suppress(Exception):
                        await self.client.aclose()
                    return
                await asyncio.sleep(self.delay)
                self.delay = min(self.delay * 2, self.fanout.max_backoff)

    async def _pump(self) -> None:
        fanout = self.fanout
        while True:
            want = set(self.channels)
            if not want and not self.subscribed:
                self.in_sync.set()
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), 1.0)
                continue
            pubsub = self.pubsub
            if pubsub is None:
                pubsub = self.pubsub = self.client.pubsub()
            add, remove = want - self.subscribed, self.subscribed - want
            if add:
                if fanout.sharded:  # one slot per SSUBSCRIBE: rooms hash to different slots
                    for channel in add:
                        await pubsub.ssubscribe(channel)
                else:
                    await pubsub.subscribe(*add)
            if remove:
                if fanout.sharded:
                    for channel in remove:
                        await pubsub.sunsubscribe(channel)
                else:
                    await pubsub.unsubscribe(*remove)
                self.confirmed -= remove
            self.subscribed = want
            message = await pubsub.get_message(timeout=_POLL)
            # Everything already read is delivered together: a server that fell behind
            # writes each connection once for all the messages that piled up.
            batch: list[tuple[bytes | str, bytes]] = []
            while message is not None:
                kind = message["type"]
                if kind in ("message", "smessage"):
                    batch.append((message["channel"], message["data"]))
                elif kind in ("subscribe", "ssubscribe"):
                    channel = message["channel"]
                    self.confirmed.add(channel.decode() if isinstance(channel, bytes) else channel)
                elif kind == "sunsubscribe":
                    # Ours (a room emptied), or the server's: a shard that lost a slot (a
                    # failover, a resharding) unsubscribes its clients from the slot's channels.
                    raw = message["channel"]
                    channel = raw.decode() if isinstance(raw, bytes) else raw
                    self.confirmed.discard(channel)
                    self.subscribed.discard(channel)
                    if channel in self.channels:
                        self.channels.discard(channel)
                        fanout.moved(self, channel)
                message = await pubsub.get_message(timeout=0) if len(batch) < _BATCH else None
            if batch:
                fanout.hub._received(batch)
            if self.channels <= self.confirmed:
                self.in_sync.set()
                self.delay = 0.05
                fanout.recovered(self)

    async def _drop_pubsub(self, exc: Exception) -> None:
        self.fanout.went_down(self, exc)
        pubsub, self.pubsub = self.pubsub, None
        self.subscribed = set()
        self.confirmed = set()
        self.in_sync.clear()
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        pubsub, self.pubsub = self.pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
        with contextlib.suppress(Exception):
            await self.client.aclose()


class _RedisFanout:
    """The hub's Redis side: one client to publish, subscribers to listen."""

    def __init__(self, hub: Hub, url: str, cluster: bool, max_backoff: float) -> None:
        import redis.asyncio
        import redis.exceptions

        self.hub = hub
        self.url = url
        self.sharded = cluster
        self.max_backoff = max_backoff
        self.down_since: float | None = None
        self._redis = redis.asyncio
        # Raised by the cluster client when no node answers; not a RedisError.
        self._cluster_error: type[Exception] = redis.exceptions.RedisClusterException
        self._options: dict[str, Any] = {"socket_connect_timeout": 2.0, "socket_keepalive": True}
        self.publisher: Redis | RedisCluster
        if cluster:
            self.publisher = redis.asyncio.RedisCluster.from_url(url, **self._options)
        else:
            self.publisher = redis.asyncio.Redis.from_url(url, **self._options)
        self.channels: set[str] = set()
        self._direct: dict[str, Redis] = {}  # per cluster node, the connection a publish goes out on
        self.subscribers: dict[str, _Subscriber] = {}
        self.owner: dict[str, _Subscriber] = {}
        self._placing: asyncio.Task[None] | None = None
        self._refresh = False  # the cluster's slot map must be read again before placing
        self._placed = asyncio.Event()
        self._placed.set()

    # ------------------------------------------------------------- channels

    def want(self, channel: str) -> None:
        self.channels.add(channel)
        self._place()

    def unwant(self, channel: str) -> None:
        self.channels.discard(channel)
        sub = self.owner.pop(channel, None)
        if sub is not None:
            sub.channels.discard(channel)
            sub.changed()

    def moved(self, sub: _Subscriber, channel: str) -> None:
        """A shard dropped ``channel``: find its slot's owner again and subscribe there."""
        if self.owner.get(channel) is sub:
            del self.owner[channel]
        self.hub.logger.warning("hub: %s left %s (its slot moved); subscribing where it is now", channel, sub.name)
        self._refresh = True
        self._place()

    def release(self, sub: _Subscriber) -> None:
        """A shard's subscriber gave up its connection: its rooms go to the slots' owners as they are now."""
        if self.subscribers.get(sub.name) is sub:
            del self.subscribers[sub.name]
        for channel in sub.channels:
            if self.owner.get(channel) is sub:
                del self.owner[channel]
        sub.channels = set()
        self._refresh = True
        self._place()

    def _place(self) -> None:
        self._placed.clear()
        if self._placing is None or self._placing.done():
            self._placing = asyncio.get_running_loop().create_task(self._place_all())

    async def _place_all(self) -> None:
        """Give every wanted channel to a subscriber: the only one, or its shard's in a cluster."""
        delay = 0.05
        while True:
            try:
                if self._refresh and self.sharded:
                    cluster = self.publisher
                    assert isinstance(cluster, self._redis.RedisCluster)
                    self._refresh = False
                    await cluster.nodes_manager.initialize()
                for channel in list(self.channels):
                    if channel in self.owner:
                        continue
                    name = await self._node_of(channel)
                    sub = self.subscribers.get(name)
                    if sub is None:
                        sub = self.subscribers[name] = _Subscriber(self, name, self._client_for(name))
                    sub.channels.add(channel)
                    self.owner[channel] = sub
                    sub.changed()
                if all(c in self.owner for c in self.channels):
                    self._placed.set()
                    return
            except Exception as exc:  # a cluster that cannot be reached yet: try again, never give up
                self.hub.logger.warning("hub: cannot place rooms on the cluster yet (%s); retrying", exc)
                self._refresh = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff)

    async def _node_of(self, channel: str) -> str:
        if not self.sharded:
            return self.url
        cluster = self.publisher
        assert isinstance(cluster, self._redis.RedisCluster)
        await cluster.initialize()
        node = cluster.get_node_from_key(channel)
        if node is None:
            raise RuntimeError(f"no cluster node serves the slot of {channel}")
        return f"{node.host}:{node.port}"

    def _client_for(self, name: str) -> Redis:
        if not self.sharded:
            return self._redis.Redis.from_url(self.url, **self._options)
        host, _, port = name.rpartition(":")
        return self._redis.Redis(host=host, port=int(port), **self._options)

    async def synced(self) -> None:
        await self._placed.wait()
        while True:
            subs = {self.owner[c] for c in self.channels if c in self.owner}
            pending = [s for s in subs if not s.in_sync.is_set()]
            if not pending and all(c in self.owner for c in self.channels):
                return
            await asyncio.gather(*(s.in_sync.wait() for s in pending), self._placed.wait())

    # -------------------------------------------------------------- health

    def went_down(self, sub: _Subscriber, exc: Exception) -> None:
        if not isinstance(exc, OSError | self._redis.ConnectionError | self._redis.TimeoutError):
            self.hub.logger.error("hub: subscriber at %s failed: %r; starting it again", sub.name, exc)
            return
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.hub.logger.warning(
                "hub: lost Redis at %s (%s: %s); its %d room(s) miss what is published until it is back "
                "(cause hub.publish_lost: pub/sub is at most once); reconnecting with backoff",
                sub.name,
                type(exc).__name__,
                exc,
                len(sub.channels),
            )

    def recovered(self, sub: _Subscriber) -> None:
        if self.down_since is None:
            return
        away = time.monotonic() - self.down_since
        self.down_since = None
        self.hub.logger.warning(
            "hub: Redis is back at %s after %.1f s; resubscribed %d room(s); messages published to them "
            "meanwhile were lost (cause hub.publish_lost)",
            sub.name,
            away,
            len(sub.channels),
        )

    # ------------------------------------------------------------ messages

    async def publish(self, channel: str, payload: bytes) -> int:
        try:
            if self.sharded:
                result = await self._shard_publish(channel, payload)
            else:
                result = await self.publisher.publish(channel, payload)
        except (OSError, self._redis.RedisError, self._cluster_error) as exc:
            self.hub.lost += 1
            self.hub.logger.warning(
                "hub: a message to %s was lost: Redis is unreachable (%s) (cause hub.publish_lost)", channel, exc
            )
            return 0
        return int(result)

    async def _shard_publish(self, channel: str, payload: bytes) -> Any:
        """SPUBLISH on the connection to the node that owns the channel's slot.

        redis-py's cluster client does the same, but its routing (command policies, key
        extraction, a task per timed read) costs several times a plain client's work per
        call, and on a loaded machine that showed as the relay's worst latencies (single
        publishes of 50-60 ms). The slot map is the cluster client's; when a node answers
        MOVED or goes away, the map is read again and the cluster client, which follows
        redirections, sends this one.
        """
        cluster = self.publisher
        assert isinstance(cluster, self._redis.RedisCluster)
        await cluster.initialize()  # returns at once once the slot map is known
        node = cluster.get_node_from_key(channel)
        if node is not None:
            name = f"{node.host}:{node.port}"
            client = self._direct.get(name)
            if client is None:
                client = self._direct[name] = self._client_for(name)
            try:
                return await client.spublish(channel, payload)
            except (OSError, self._redis.RedisError):
                del self._direct[name]
                with contextlib.suppress(Exception):
                    await client.aclose()
                with contextlib.suppress(Exception):  # the cluster client retries, and says why it failed
                    await cluster.nodes_manager.initialize()
        return await cluster.spublish(channel, payload)

    async def close(self) -> None:
        for client in self._direct.values():
            with contextlib.suppress(Exception):
                await client.aclose()
        self._direct.clear()
        if self._placing is not None:
            self._placing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._placing
        for sub in list(self.subscribers.values()):
            await sub.close()
        self.subscribers.clear()
        self.owner.clear()
        with contextlib.suppress(Exception):
            await self.publisher.aclose()
