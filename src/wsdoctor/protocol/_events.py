"""The events the sans-I/O core hands to the layer above: the whole receiving vocabulary."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BinaryMessage", "CloseReceived", "Event", "Ping", "Pong", "TextMessage"]


@dataclass(frozen=True, slots=True)
class TextMessage:
    """A complete text message, already checked as UTF-8 and inflated."""

    data: str


@dataclass(frozen=True, slots=True)
class BinaryMessage:
    """A complete binary message, already inflated."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Ping:
    """A Ping from the peer; the core has already queued the Pong."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Pong:
    """A Pong from the peer, solicited or not."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """The peer's Close frame; ``code`` is None when the frame had no payload."""

    code: int | None
    reason: str


Event = TextMessage | BinaryMessage | Ping | Pong | CloseReceived
