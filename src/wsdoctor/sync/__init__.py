"""The synchronous client, for scripts and tests that do not use asyncio.

``wsdoctor.sync.connect(uri)`` takes the same options as :func:`wsdoctor.connect`
and raises the same exceptions with the same endings; the asyncio client does the
work on a private event loop in a background thread.
"""

from wsdoctor.sync.client import ClientConnection, connect

__all__ = ["ClientConnection", "connect"]
