"""Fan-out: :func:`broadcast` to many connections, and :class:`Hub` rooms in one process or across many on Redis."""

from wsdoctor.hub._broadcast import BroadcastResult, broadcast

__all__ = ["BroadcastResult", "broadcast"]
