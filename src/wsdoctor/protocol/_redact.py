"""Secrets out of everything wsdoctor prints, logs or raises.

A password in a URL (``wss://user:secret@host/``) and the values of the headers that
carry credentials (``Authorization``, ``Proxy-Authorization``, ``Cookie``,
``Set-Cookie``) are what an attacker reads first in a log or a pasted bug report. Every
place that turns a URL, a header list or an error message into text for people goes
through this module, so there is one rule and one place to get it right. What the
application itself holds (``ws.request_headers``, ``connect.uri``) stays untouched: it
needs those values to do its job.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["MASK", "SECRET_HEADERS", "redact_header", "redact_headers", "redact_text", "redact_url"]

MASK = "***"

SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})

# A URL's authority with user information, in free text: scheme "://" userinfo "@". The
# userinfo runs to the last "@" before the path, query, fragment or a space, so a
# password with an unescaped "@" or a quote is masked whole.
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/?#\x20\t\r\n]*)@")

# h11 quotes a header value it rejects, without its name: it may be a secret.
_ILLEGAL_VALUE = re.compile(r"""(Illegal header value )b?(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")

# ...and quotes a whole header line it cannot parse, name and value.
_ILLEGAL_LINE = re.compile(
    r"""(?P<head>illegal header line: )(?:bytearray\()?b(?P<q>['"])(?P<line>(?:\\.|(?!(?P=q)).)*)(?P=q)\)?"""
)

# Credentials that follow their scheme name in Authorization headers.
_AUTH_SCHEME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)\s+\S")


def _mask_userinfo(match: re.Match[str]) -> str:
    user, sep, _password = match.group("userinfo").partition(":")
    return f"{match.group('scheme')}{user}:{MASK}@" if sep else match.group(0)


def redact_url(url: str) -> str:
    """``url`` with the password of its user information replaced by ``***``; the user name stays.

    The authority is found as ``urllib.parse.urlsplit`` finds it (up to the first "/",
    "?" or "#", user information up to its last "@"), so whatever password the parser
    would use is the one masked, whatever characters it holds.
    """
    for unsafe in "\t\r\n":  # the URL parser drops these wherever they are
        url = url.replace(unsafe, "")
    start = url.find("://")
    if start < 0:
        return url
    start += 3
    end = len(url)
    for delimiter in "/?#":
        found = url.find(delimiter, start)
        if found >= 0:
            end = min(end, found)
    userinfo, at, _host = url[start:end].rpartition("@")
    if not at:
        return url
    user, colon, _password = userinfo.partition(":")
    if not colon:
        return url
    return f"{url[:start]}{user}:{MASK}@{url[start + len(userinfo) + 1 :]}"


def redact_text(text: str) -> str:
    """Any text (an error message, a detail) with URL passwords and rejected header values masked."""
    if "@" in text:
        text = _URL_USERINFO.sub(_mask_userinfo, text)
    if "Illegal header value" in text:
        text = _ILLEGAL_VALUE.sub(lambda m: f"{m.group(1)}({MASK}: withheld, it may be a credential)", text)
    if "illegal header line" in text:
        text = _ILLEGAL_LINE.sub(_mask_line, text)
    return text


def _mask_line(match: re.Match[str]) -> str:
    name, sep, _value = match.group("line").partition(":")
    if sep and name.strip().lower() in SECRET_HEADERS:
        return f"{match.group('head')}{name}: {MASK}"
    return match.group(0)


def redact_header(name: str, value: str) -> str:
    """The value to show for header ``name``: masked for credentials, keeping an auth scheme's name."""
    lowered = name.lower()
    if lowered not in SECRET_HEADERS:
        return value
    if lowered in ("authorization", "proxy-authorization"):
        match = _AUTH_SCHEME.match(value)
        if match:
            return f"{match.group(1)} {MASK}"
    return MASK


def redact_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """A header list fit to print: credential values masked, everything else as it was."""
    return [(name, redact_header(name, value)) for name, value in headers]
