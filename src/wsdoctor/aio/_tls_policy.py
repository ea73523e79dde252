"""The oldest TLS version wsdoctor speaks, set on purpose rather than inherited.

Python and OpenSSL refuse TLS 1.0 and 1.1 today, but only by their own defaults: a
context built with ``ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)`` on an older system, or
one whose options were loosened for some other peer, would still accept them. Both
``connect()`` and ``serve()`` therefore raise the minimum of the context they use to
``tls_min_version`` (TLS 1.2 unless the application asks otherwise).
"""

from __future__ import annotations

import ssl

__all__ = ["TLS_MIN_VERSION", "enforce_tls_minimum"]

TLS_MIN_VERSION = ssl.TLSVersion.TLSv1_2


def enforce_tls_minimum(context: ssl.SSLContext, minimum: ssl.TLSVersion) -> None:
    """Make ``minimum`` the oldest TLS version the context accepts, unless it is stricter already.

    The context is changed in place: it is the one the connection will use, and an
    ``SSLContext`` cannot be copied. A context that already demands more (TLS 1.3 only)
    keeps its own minimum; ``TLSVersion.MINIMUM_SUPPORTED`` leaves the context as it is,
    for testing old peers.
    """
    current = context.minimum_version
    if minimum == ssl.TLSVersion.MINIMUM_SUPPORTED:
        return
    if current == ssl.TLSVersion.MINIMUM_SUPPORTED or current < minimum:
        context.minimum_version = minimum
