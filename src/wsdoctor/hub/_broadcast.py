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

from collections.abc import Iterable
from dataclasses import dataclass

from wsdoctor.aio.connection import WebSocketConnection
from wsdoctor.protocol._connection import unmasked_frame
from wsdoctor.protocol._deflate import compress_shared

__all__ = ["BroadcastResult", "broadcast"]


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
    if isinstance(message, str):
        opcode = 1
        payload: bytes | bytearray | memoryview = message.encode()
        own: str | bytes = message
    elif isinstance(message, bytes | bytearray | memoryview):
        opcode = 2
        payload = message
        own = bytes(message)
    else:
        raise TypeError(f"broadcast() takes str or bytes, not {type(message).__name__}")
    plain: bytes | None = None
    compressed: dict[tuple[int, int, int, int], bytes] = {}
    sent = skipped = 0
    for ws in connections:
        core = ws.core
        frame: bytes | None
        if core is None or ws.is_client:
            frame = None
        elif core.deflate is None:
            if plain is None:
                plain = unmasked_frame(opcode, payload)
            frame = plain
        else:
            key = core.deflate.shared_key
            if key is None:
                frame = None  # its compressor keeps context: it compresses for itself
            else:
                frame = compressed.get(key)
                if frame is None:
                    deflated = compress_shared(payload, key)
                    if deflated is None:
                        if plain is None:
                            plain = unmasked_frame(opcode, payload)
                        frame = plain
                    else:
                        frame = unmasked_frame(opcode, deflated, rsv1=True)
                    compressed[key] = frame
        if ws.send_prepared(frame, own):
            sent += 1
        else:
            skipped += 1
    return BroadcastResult(sent, skipped)
