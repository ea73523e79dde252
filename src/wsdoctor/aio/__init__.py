"""The asyncio client and server."""

from wsdoctor.aio._run import run
from wsdoctor.aio.client import Backoff, Step, connect
from wsdoctor.aio.connection import WebSocketConnection
from wsdoctor.aio.server import Server, serve

__all__ = ["Backoff", "Server", "Step", "WebSocketConnection", "connect", "run", "serve"]
