"""wsdoctor: a WebSocket toolkit for asyncio that tells you why a connection ended.

The small public API lives here; everything else is reachable through the
subpackages (``wsdoctor.protocol`` for the sans-I/O core, ``wsdoctor.aio`` for the
asyncio client and server, ``wsdoctor.sync`` for the blocking client,
``wsdoctor.knowledge`` for the close-code registry).

The names below are imported on first use (PEP 562), as ``websockets`` does: a
script or a command that needs only the registry does not pay for asyncio, ssl and
the handshake parser, and ``import wsdoctor`` costs a few milliseconds.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wsdoctor import sync
    from wsdoctor.aio._run import run
    from wsdoctor.aio.client import connect
    from wsdoctor.aio.connection import WebSocketConnection
    from wsdoctor.aio.server import Server, serve
    from wsdoctor.hub import BroadcastResult, Hub, broadcast
    from wsdoctor.knowledge import CloseCode, explain
    from wsdoctor.protocol._deflate import DeflateConfig
    from wsdoctor.protocol._ending import CloseFrame, Ending
    from wsdoctor.protocol._errors import (
        ConnectionClosed,
        ConnectionClosedError,
        ConnectionClosedOK,
        DialError,
        HandshakeError,
        InvalidCloseCode,
        InvalidOption,
        LocalProtocolError,
        NegotiationError,
        ProtocolError,
        TLSHandshakeError,
        WebSocketError,
    )
    from wsdoctor.protocol._headers import InvalidHeader, InvalidSubprotocol
    from wsdoctor.protocol._uri import InvalidURI

__version__ = "0.1.0"

# Public name -> the module that defines it. Keep in step with the imports above.
_LAZY: dict[str, str] = {
    "run": "wsdoctor.aio._run",
    "connect": "wsdoctor.aio.client",
    "WebSocketConnection": "wsdoctor.aio.connection",
    "Server": "wsdoctor.aio.server",
    "serve": "wsdoctor.aio.server",
    "BroadcastResult": "wsdoctor.hub",
    "Hub": "wsdoctor.hub",
    "broadcast": "wsdoctor.hub",
    "CloseCode": "wsdoctor.knowledge",
    "explain": "wsdoctor.knowledge",
    "DeflateConfig": "wsdoctor.protocol._deflate",
    "CloseFrame": "wsdoctor.protocol._ending",
    "Ending": "wsdoctor.protocol._ending",
    "ConnectionClosed": "wsdoctor.protocol._errors",
    "ConnectionClosedError": "wsdoctor.protocol._errors",
    "ConnectionClosedOK": "wsdoctor.protocol._errors",
    "DialError": "wsdoctor.protocol._errors",
    "HandshakeError": "wsdoctor.protocol._errors",
    "InvalidCloseCode": "wsdoctor.protocol._errors",
    "InvalidOption": "wsdoctor.protocol._errors",
    "InvalidHeader": "wsdoctor.protocol._headers",
    "InvalidSubprotocol": "wsdoctor.protocol._headers",
    "InvalidURI": "wsdoctor.protocol._uri",
    "LocalProtocolError": "wsdoctor.protocol._errors",
    "NegotiationError": "wsdoctor.protocol._errors",
    "ProtocolError": "wsdoctor.protocol._errors",
    "TLSHandshakeError": "wsdoctor.protocol._errors",
    "WebSocketError": "wsdoctor.protocol._errors",
    "sync": "wsdoctor.sync",  # a subpackage: the module itself
}

__all__ = [
    "BroadcastResult",
    "CloseCode",
    "CloseFrame",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "DeflateConfig",
    "DialError",
    "Ending",
    "HandshakeError",
    "Hub",
    "InvalidCloseCode",
    "InvalidHeader",
    "InvalidOption",
    "InvalidSubprotocol",
    "InvalidURI",
    "LocalProtocolError",
    "NegotiationError",
    "ProtocolError",
    "Server",
    "TLSHandshakeError",
    "WebSocketConnection",
    "WebSocketError",
    "broadcast",
    "connect",
    "explain",
    "run",
    "serve",
    "sync",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'wsdoctor' has no attribute {name!r}")
    imported = importlib.import_module(module)
    value = imported if module == f"wsdoctor.{name}" else getattr(imported, name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
