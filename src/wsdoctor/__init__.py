"""wsdoctor: a WebSocket toolkit for asyncio that tells you why a connection ended.

The small public API lives here; everything else is reachable through the
subpackages (``wsdoctor.protocol`` for the sans-I/O core, ``wsdoctor.aio`` for the
asyncio client and server, ``wsdoctor.sync`` for the blocking client,
``wsdoctor.knowledge`` for the close-code registry).
"""

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
    LocalProtocolError,
    NegotiationError,
    ProtocolError,
    TLSHandshakeError,
    WebSocketError,
)

__version__ = "0.1.0"

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
