"""Reaching a server through a forward proxy: choosing it, and opening the tunnel.

Which proxy
-----------
``connect(uri, proxy=...)`` takes a proxy URL, ``None`` (or ``False``, or ``""``) to
dial directly, or ``True`` (the default) to read the environment the way curl,
requests and websockets do: ``https_proxy``/``HTTPS_PROXY`` for ``wss://``,
``http_proxy``/``HTTP_PROXY`` for ``ws://``, then ``all_proxy``/``ALL_PROXY``, unless
``no_proxy``/``NO_PROXY`` names the host. :func:`choose_proxy` also remembers *which*
variable it used, and which variable was bypassed, because "my proxy variable is
ignored" and "my proxy variable is used when it should not be" are the two questions
people bring to ``wsdoctor check``.

The tunnel
----------
An HTTP proxy (``http://``, or ``https://`` for a proxy that speaks TLS itself) is
asked with ``CONNECT host:port`` (RFC 9110 9.3.6), with Basic credentials taken from
the proxy URL; its answer is read with h11 through the same handshake hook that reads
the 101 response, so the bytes go through the connection's own protocol object and
TLS to the server can start on top of whatever transport the tunnel runs on. A SOCKS
proxy (``socks5://``, ``socks5h://``, ``socks4://``, ``socks4a://``) is spoken to by
``python-socks`` (the ``socks`` extra), which hands back a connected socket.

Every failure becomes a :class:`DialError` whose cause starts with ``proxy.``.
"""

from __future__ import annotations

import asyncio
import base64
import os
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import h11

from wsdoctor.protocol._ending import Ending
from wsdoctor.protocol._errors import DialError
from wsdoctor.protocol._uri import WSURI

if TYPE_CHECKING:
    import socket

    from wsdoctor.aio.connection import WebSocketConnection

__all__ = ["ProxyAnswer", "ProxyChoice", "ProxyURL", "choose_proxy", "http_connect", "parse_proxy_url", "socks_connect"]

ProxySetting = str | bool | None

_DEFAULT_PORTS = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080, "socks4": 1080, "socks4a": 1080}

# SOCKS5 reply codes (RFC 1928 6) and what they mean for the dial.
_SOCKS5_CAUSES = {
    2: "proxy.denied",  # connection not allowed by ruleset
    3: "proxy.unreachable",  # network unreachable
    4: "proxy.unreachable",  # host unreachable
    5: "proxy.unreachable",  # connection refused by the destination
    6: "proxy.unreachable",  # TTL expired
}
# SOCKS4 reply codes: 91 rejected or failed, 92 and 93 identd problems.
_SOCKS4_CAUSES = {91: "proxy.denied", 92: "proxy.auth", 93: "proxy.auth"}


def proxy_error(cause: str, detail: str) -> DialError:
    return DialError(Ending(code=1006, cause=cause, initiator="local", detail=detail))


@dataclass(frozen=True)
class ProxyURL:
    """A parsed proxy URL; ``str()`` never shows the password."""

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @property
    def is_socks(self) -> bool:
        return self.scheme.startswith("socks")

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.username}:***@" if self.username is not None else ""
        return f"{self.scheme}://{user}{host}:{self.port}"


def parse_proxy_url(url: str) -> ProxyURL:
    """Parse a proxy URL, as in environment variables (a bare ``host:port`` means http)."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        parsed = urllib.parse.urlsplit(text)
        port = parsed.port
    except ValueError as exc:
        raise proxy_error("proxy.unsupported", f"{url!r} is not a valid proxy URL: {exc}") from None
    scheme = parsed.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise proxy_error(
            "proxy.unsupported",
            f"{url!r}: the proxy scheme must be http, https, socks5, socks5h, socks4 or socks4a, not {scheme!r}",
        )
    if not parsed.hostname:
        raise proxy_error("proxy.unsupported", f"{url!r} has no proxy host")
    if any(c.isspace() or not c.isprintable() for c in parsed.hostname):
        # "not a url" would otherwise become a DNS lookup for a host with spaces in it.
        detail = f"{url!r}: the proxy host {parsed.hostname!r} has spaces or control characters"
        raise proxy_error("proxy.unsupported", detail)
    username = urllib.parse.unquote(parsed.username) if parsed.username is not None else None
    password = urllib.parse.unquote(parsed.password) if parsed.password is not None else None
    return ProxyURL(scheme, parsed.hostname, port or _DEFAULT_PORTS[scheme], username, password)


@dataclass(frozen=True)
class ProxyChoice:
    """The proxy a dial goes through, and why.

    ``source`` names where the URL came from (``"argument"`` or the environment
    variable); ``bypassed`` names a variable that was set but not used because
    ``no_proxy``/``NO_PROXY`` (whose value is ``no_proxy``) names the host.
    """

    proxy: ProxyURL | None
    source: str = ""
    bypassed: str = ""
    no_proxy: str = ""


def _env(*names: str) -> tuple[str, str]:
    for name in names:
        value = os.environ.get(name)
        if value:
            return name, value
    return "", ""


def choose_proxy(uri: WSURI, setting: ProxySetting = True) -> ProxyChoice:
    """Decide which proxy, if any, a dial to ``uri`` goes through."""
    if setting is None or setting is False or setting == "":
        return ProxyChoice(None)
    if isinstance(setting, str):
        return ProxyChoice(parse_proxy_url(setting), "argument")
    scheme_names = ("https_proxy", "HTTPS_PROXY") if uri.secure else ("http_proxy", "HTTP_PROXY")
    name, value = _env(*scheme_names)
    if not value:
        name, value = _env("all_proxy", "ALL_PROXY")
    if not value:
        return ProxyChoice(None)
    no_name, no_value = _env("no_proxy", "NO_PROXY")
    if no_value and _bypassed(uri, no_value):
        return ProxyChoice(None, bypassed=name, no_proxy=f"{no_name}={no_value}")
    return ProxyChoice(parse_proxy_url(value), name)


def _bypassed(uri: WSURI, no_proxy: str) -> bool:
    """The standard library's reading of ``no_proxy`` (suffixes, ``*``, optional ports)."""
    import urllib.request  # only when a proxy variable is set: it is slow to import

    bypass = getattr(urllib.request, "proxy_bypass_environment")  # noqa: B009 - not in typeshed
    host = uri.host.strip("[]")
    return any(bypass(candidate, {"no": no_proxy}) for candidate in (f"{host}:{uri.port}", host))


# ---------------------------------------------------------------- HTTP CONNECT


@dataclass(frozen=True)
class ProxyAnswer:
    """What the proxy said to the tunnel request."""

    status: int
    reason: str
    headers: list[tuple[str, str]]


class _ConnectReader:
    """Reads the proxy's answer to CONNECT (just its head: that is all a tunnel needs)."""

    def __init__(self, target: str, headers: list[tuple[str, str]]) -> None:
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=16384)
        self.request = self._h11.send(h11.Request(method="CONNECT", target=target, headers=headers))
        self.leftover = b""

    def receive_data(self, data: bytes) -> ProxyAnswer | None:
        self._h11.receive_data(data)
        return self._next()

    def receive_eof(self) -> ProxyAnswer | None:
        return None

    def _next(self) -> ProxyAnswer | None:
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise proxy_error("proxy.malformed", f"the proxy's answer is not valid HTTP/1.1: {exc}") from None
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                if 200 <= event.status_code < 300:
                    self.leftover = bytes(self._h11.trailing_data[0])
                headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers]
                return ProxyAnswer(event.status_code, event.reason.decode("latin-1"), headers)
            return None


def connect_headers(proxy: ProxyURL, target: str) -> list[tuple[str, str]]:
    headers = [("Host", target)]
    if proxy.username is not None:
        token = base64.b64encode(f"{proxy.username}:{proxy.password or ''}".encode()).decode()
        headers.append(("Proxy-Authorization", f"Basic {token}"))
    return headers


def answer_error(answer: ProxyAnswer, proxy: ProxyURL, target: str) -> DialError:
    """The ending of a tunnel request the proxy refused, by its status."""
    status = f"{answer.status} {answer.reason}".strip()
    if answer.status == 407:
        asked = "credentials were sent and refused" if proxy.username is not None else "no credentials were sent"
        return proxy_error("proxy.auth", f"{proxy} answered {status} ({asked})")
    if answer.status in (500, 502, 503, 504):
        return proxy_error("proxy.unreachable", f"{proxy} answered {status} to CONNECT {target}")
    if answer.status == 403:
        return proxy_error("proxy.denied", f"{proxy} answered {status} to CONNECT {target}")
    return proxy_error("proxy.status", f"{proxy} answered {status} to CONNECT {target}")


async def http_connect(
    ws: WebSocketConnection,
    transport: asyncio.Transport,
    proxy: ProxyURL,
    host: str,
    port: int,
    deadline: float,
) -> ProxyAnswer:
    """Ask an HTTP proxy for a tunnel to ``host:port``; return its 2xx answer or raise."""
    from wsdoctor.aio._handshake_io import read_handshake

    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    reader = _ConnectReader(target, connect_headers(proxy, target))
    transport.write(reader.request)
    try:
        answer = await read_handshake(ws, reader, deadline)
    except TimeoutError:
        raise proxy_error("proxy.timeout", f"{proxy} did not answer CONNECT {target} in time") from None
    if answer is None:
        raise proxy_error("proxy.closed", f"{proxy} closed the connection without answering CONNECT {target}")
    if not 200 <= answer.status < 300:
        raise answer_error(answer, proxy, target)
    if reader.leftover:
        ws._early += reader.leftover
    return answer


# ---------------------------------------------------------------------- SOCKS


async def socks_connect(proxy: ProxyURL, host: str, port: int, timeout: float) -> socket.socket:
    """Open a connected socket to ``host:port`` through a SOCKS proxy (python-socks)."""
    try:
        from python_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError, ProxyType
        from python_socks.async_.asyncio import Proxy
    except ImportError:
        raise proxy_error(
            "proxy.unsupported", f"{proxy} is a SOCKS proxy and python-socks is not installed (the socks extra)"
        ) from None
    socks4 = proxy.scheme.startswith("socks4")
    client: Any = Proxy(
        proxy_type=ProxyType.SOCKS4 if socks4 else ProxyType.SOCKS5,
        host=proxy.host,
        port=proxy.port,
        username=proxy.username,
        password=proxy.password,
        rdns=proxy.scheme in ("socks5h", "socks4a"),
    )
    try:
        sock: socket.socket = await client.connect(host, port, timeout=timeout)
    except ProxyTimeoutError:
        raise proxy_error("proxy.timeout", f"{proxy} did not complete the SOCKS request in time") from None
    except ProxyConnectionError as exc:
        # python-socks raises it when the TCP connection to the proxy itself fails.
        raise proxy_error("proxy.refused", str(exc)) from None
    except ProxyError as exc:
        code = exc.error_code
        table = _SOCKS4_CAUSES if socks4 else _SOCKS5_CAUSES
        cause = table.get(code, "proxy.socks") if isinstance(code, int) else "proxy.socks"
        text = str(exc)
        if "auth" in text.lower():
            cause = "proxy.auth"
        elif "closed" in text.lower():
            cause = "proxy.closed"
        raise proxy_error(cause, f"{proxy}: {text}") from None
    except OSError as exc:
        raise proxy_error("proxy.closed", f"{proxy}: {exc}") from None
    return sock
