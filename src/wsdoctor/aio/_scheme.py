"""Telling a wrong scheme from a broken server: ``wss://`` to a plain port, ``ws://`` to TLS.

Both mistakes look, at first, like a peer that hangs up: a plain server closes on a
ClientHello it cannot parse, and most TLS servers close on an HTTP request without a
word. After such a failure the dial asks the port once more, in the other language,
with a short timeout: a plain GET (does an HTTP status line come back?) or a TLS
handshake without verification (does it complete?). Only a failed dial pays for the
probe, and its answer turns "the server closed the connection" into "use ws://" or
"use wss://".
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

__all__ = ["answers_http", "answers_tls"]


async def answers_http(host: str, port: int, host_header: str, timeout: float) -> str | None:
    """The status line a plain HTTP request gets from ``host:port``, or ``None``."""
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(f"GET / HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n\r\n".encode("latin-1"))
            line = await reader.readline()
    except (OSError, TimeoutError, ValueError, UnicodeError):
        return None
    finally:
        if writer is not None:
            writer.close()
    text = line.decode("latin-1").strip()
    return text if text.startswith("HTTP/") else None


async def answers_tls(host: str, port: int, server_hostname: str, timeout: float) -> str | None:
    """The TLS version ``host:port`` completes a handshake with (unverified), or ``None``.

    A server that answers the ClientHello with a TLS alert speaks TLS too: ``"TLS"``.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    writer = None
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=server_hostname)
            ssl_object = writer.get_extra_info("ssl_object")
            return str(ssl_object.version() or "TLS") if ssl_object is not None else "TLS"
    except ssl.SSLError as exc:
        return "TLS" if "ALERT" in str(getattr(exc, "reason", "") or "").upper() else None
    except (OSError, TimeoutError, ValueError):
        return None
    finally:
        if writer is not None:
            # A polite close: the server should see a client that changed its mind, not an attack.
            writer.close()
            with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
