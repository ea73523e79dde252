"""The sans-I/O WebSocket core: bytes in, events and bytes out, no sockets and no clocks."""

from wsdoctor.protocol._connection import Connection, Opcode, State
from wsdoctor.protocol._deflate import DeflateConfig, PerMessageDeflate
from wsdoctor.protocol._ending import CloseFrame, Ending
from wsdoctor.protocol._events import BinaryMessage, CloseReceived, Event, Ping, Pong, TextMessage
from wsdoctor.protocol._handshake import ClientHandshake, ServerHandshake
from wsdoctor.protocol._uri import WSURI, parse_uri

__all__ = [
    "WSURI",
    "BinaryMessage",
    "ClientHandshake",
    "CloseFrame",
    "CloseReceived",
    "Connection",
    "DeflateConfig",
    "Ending",
    "Event",
    "Opcode",
    "PerMessageDeflate",
    "Ping",
    "Pong",
    "ServerHandshake",
    "State",
    "TextMessage",
    "parse_uri",
]
