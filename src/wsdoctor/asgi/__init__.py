"""ASGI servers on wsdoctor: ``uvicorn app:app --ws wsdoctor.asgi:WebSocketProtocol``.

Importing this package imports uvicorn (the ``asgi`` extra); ``import wsdoctor`` does not.
"""

from wsdoctor.asgi._protocol import WebSocketProtocol

__all__ = ["WebSocketProtocol"]
