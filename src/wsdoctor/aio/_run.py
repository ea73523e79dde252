"""Running a coroutine on the fastest event loop available."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["run"]


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Like ``asyncio.run``, but on uvloop when it is installed (``pip install wsdoctor[speed]``).

    uvloop cuts the event loop's share of each message; everything in wsdoctor works the
    same on either loop, and the test suite runs on the default one.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)
