"""Fan-out: :func:`broadcast` to many connections, and :class:`Hub` rooms in one process or across many on Redis."""

from wsdoctor.hub._broadcast import BroadcastResult, broadcast
from wsdoctor.hub._hub import Hub

__all__ = ["BroadcastResult", "Hub", "broadcast"]
