"""One message to many connections: the frame is built once and written without waiting.

Theory of operation
-------------------
A server's frames are not masked, so the bytes of a message are the same for every
connection that did not negotiate compression. With permessage-deflate they are the
same too when the connection compresses each message from a fresh state (no context
takeover in the server's direction) with the same window, level and memory level:
those connections are grouped and the message is compressed once per group. Only a
connection whose compressor carries its history from message to message (the RFC
7692 default), or a client's connection (which masks every frame), builds its own
frame.

Nothing is awaited. A connection whose write buffer is above its limit, or that is
closing, or that is halfway through a fragmented message, is skipped: a slow reader
misses the message instead of slowing the others down or growing memory without
bound. The caller learns how many were skipped and can act on it (close the slow
ones, log, resend later).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from wsdoctor.aio._wire import write_plain
from wsdoctor.aio.connection import WebSocketConnection
from wsdoctor.protocol._connection import unmasked_frame
from wsdoctor.protocol._deflate import compress_shared

__all__ = ["BroadcastResult", "broadcast", "broadcast_many"]


@dataclass(frozen=True, slots=True)
class BroadcastResult:
    """What one :func:`broadcast` did: how many connections got the message, how many missed it."""

    sent: int
    skipped: int

    def __bool__(self) -> bool:
        return self.skipped == 0


def broadcast(
    connections: Iterable[WebSocketConnection], message: str | bytes | bytearray | memoryview
) -> BroadcastResult:
    """Send ``message`` to every open connection in ``connections`` without waiting.

    ``str`` goes as a text message, bytes as a binary one. Connections that are not
    open, or whose write buffer is above their ``write_limit``, are skipped and
    counted in :attr:`BroadcastResult.skipped`.
    """
    return broadcast_many(connections, (message,))


def broadcast_many(
    connections: Iterable[WebSocketConnection], messages: Sequence[str | bytes | bytearray | memoryview]
) -> BroadcastResult:
    """Send several messages, in order, to every open connection: one write per connection.

    A server that falls behind (a hub that read several publishes at once) pays one
    system call per connection for all of them instead of one per message. A
    connection is skipped, and counted once, when it cannot take the first message.
    """
    kinds: list[tuple[int, bytes | bytearray | memoryview]] = []
    own: list[str | bytes] = []
    for message in messages:
        if isinstance(message, str):
            kinds.append((1, message.encode()))
            own.append(message)
        elif isinstance(message, bytes | bytearray | memoryview):
            kinds.append((2, message))
            own.append(bytes(message))
        else:
            raise TypeError(f"broadcast() takes str or bytes, not {type(message).__name__}")
    if not kinds:
        return BroadcastResult(0, 0)
    # The common case in compiled code: every open server connection without compression
    # gets the one plain frame; the rest come back to be served here.
    plain = b"".join([unmasked_frame(opcode, payload) for opcode, payload in kinds])
    rest: list[WebSocketConnection] = []
    sent, skipped = write_plain(connections, plain, rest)
    compressed: dict[tuple[int, int, int, int], bytes] = {}
    for ws in rest:
        core = ws.core
        frame: bytes | None = None  # built by the connection itself: a client, or a compressor with context
        if core is not None and not ws.is_client and core.deflate is not None:
            key = core.deflate.shared_key
            if key is not None:
                frame = compressed.get(key)
                if frame is None:
                    frame = compressed[key] = b"".join(
                        [_shared_frame(opcode, payload, key) for opcode, payload in kinds]
                    )
        if frame is None:
            # Built by the connection itself, message by message.
            if ws.send_prepared(None, own[0]):
                sent += 1
                for message in own[1:]:
                    ws.send_prepared(None, message)
            else:
                skipped += 1
        elif ws.send_prepared(frame):
            sent += 1
        else:
            skipped += 1
    return BroadcastResult(sent, skipped)


def _shared_frame(opcode: int, payload: bytes | bytearray | memoryview, key: tuple[int, int, int, int]) -> bytes:
    deflated = compress_shared(payload, key)
    if deflated is None:
        return unmasked_frame(opcode, payload)
    return unmasked_frame(opcode, deflated, rsv1=True)
