"""wsdoctor: a WebSocket toolkit for asyncio that tells you why a connection ended."""

__version__ = "0.1.0"
