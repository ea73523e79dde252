"""Fan-out: :func:`broadcast` to many connections, and :class:`Hub` rooms in one process or across many on Redis."""

from wsdoctor.hub._broadcast import BroadcastResult, broadcast, broadcast_many
from wsdoctor.hub._hub import Hub

__all__ = ["BroadcastResult", "Hub", "broadcast", "broadcast_many"]
