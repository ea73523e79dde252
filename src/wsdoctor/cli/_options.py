"""Options shared by the commands that dial (check, connect) and their validation.

Each option is checked by the library's own argument checks while the command line
is parsed, so a bad value is a usage error (one line, exit 2) that names the
option, before anything is dialled.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import click

from wsdoctor.aio._proxy import ProxySetting, parse_proxy_url
from wsdoctor.diagnose.check import client_ssl_context
from wsdoctor.protocol._arguments import check_extension_names, check_headers, check_subprotocols, check_timeout
from wsdoctor.protocol._errors import WebSocketError
from wsdoctor.protocol._uri import parse_uri

F = TypeVar("F", bound=Callable[..., Any])


def validate_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        parse_uri(value)
    except (WebSocketError, ValueError) as exc:
        raise click.BadParameter(str(exc)) from None
    return value


class Seconds(click.ParamType):  # type: ignore[type-arg]
    """A finite number of seconds greater than 0 (``nan``, ``inf`` and ``-1`` are refused)."""

    name = "SECONDS"

    def __init__(self, what: str = "the timeout", *, allow_zero: bool = False) -> None:
        # click's FloatRange lets NaN through (every comparison with NaN is false) and
        # takes inf, which would wait forever: every duration option goes through here.
        self.what = what
        self.allow_zero = allow_zero

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = value if isinstance(value, float | int) else float(value)
        except ValueError:
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        try:
            seconds = check_timeout(self.what, number, allow_zero=self.allow_zero)
        except WebSocketError as exc:
            self.fail(str(exc), param, ctx)
        assert seconds is not None
        return seconds


def parse_headers(values: tuple[str, ...]) -> list[tuple[str, str]]:
    """``'Name: value'`` strings as pairs, checked as ``connect()`` checks its extra headers."""
    headers = []
    for value in values:
        name, sep, rest = value.partition(":")
        if not sep or not name.strip():
            raise click.BadParameter(f"{value!r} is not 'Name: value'", param_hint="'--header'")
        headers.append((name.strip(), rest.strip(" \t")))
    try:
        return check_headers(headers)
    except WebSocketError as exc:
        raise click.BadParameter(str(exc), param_hint="'--header'") from None


def _validate_headers(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    parse_headers(value)
    return value


def _validate_subprotocols(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    try:
        check_subprotocols(value)
    except WebSocketError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _validate_extensions(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    try:
        check_extension_names(value)
    except WebSocketError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


_PROXY_KEY = "wsdoctor.proxy"


def _store_proxy(ctx: click.Context, param: click.Parameter, value: str | bool | None) -> None:
    """--proxy URL / --no-proxy: kept on the context, so each command reads it with proxy_setting()."""
    if param.name == "no_proxy":
        if value:
            ctx.meta[_PROXY_KEY] = None
        return
    if value is None:
        return
    assert isinstance(value, str)
    if value == "":
        ctx.meta[_PROXY_KEY] = None
        return
    try:
        parse_proxy_url(value)
    except WebSocketError as exc:
        detail = exc.ending.detail if exc.ending is not None else str(exc)
        raise click.BadParameter(detail, param_hint="'--proxy'") from None
    ctx.meta.setdefault(_PROXY_KEY, value)


_REDIRECTS_KEY = "wsdoctor.max_redirects"


def _store_redirects(ctx: click.Context, param: click.Parameter, value: int) -> None:
    ctx.meta[_REDIRECTS_KEY] = value


def max_redirects() -> int:
    """How many redirects the command follows (--max-redirects, 10 by default)."""
    ctx = click.get_current_context(silent=True)
    value = 10 if ctx is None else ctx.meta.get(_REDIRECTS_KEY, 10)
    return int(value)


def proxy_setting() -> ProxySetting:
    """The proxy the command was asked to use: a URL, None (direct) or True (the environment)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return True
    setting: ProxySetting = ctx.meta.get(_PROXY_KEY, True)
    return setting


@dataclass(frozen=True)
class Dial:
    """How to dial, from the options that ``dial_options`` adds: checked, loaded, ready to pass on.

    check and connect read the same options in the same way; building this once keeps their
    refusals (an unreadable CA, ``--key`` without ``--cert``, ``--cert`` on ws://) the same.
    """

    ssl: ssl.SSLContext | None
    headers: list[tuple[str, str]]
    subprotocols: tuple[str, ...]
    require_extensions: tuple[str, ...]
    timeout: float
    proxy: ProxySetting
    max_redirects: int


def dial_options(func: F) -> F:
    """--ca, --insecure, --cert, --key, --header, --subprotocol, --require-extension, --timeout, --proxy,
    --no-proxy, --max-redirects, handed to the command as one ``dial: Dial`` beside its ``url``.

    The TLS context is loaded before the command's body runs, so a file that cannot be used is a
    usage error before anything is dialled.
    """

    @functools.wraps(func)
    def command(
        *,
        url: str,
        ca: str | None,
        insecure: bool,
        cert: str | None,
        key: str | None,
        headers: tuple[str, ...],
        subprotocols: tuple[str, ...],
        require_extensions: tuple[str, ...],
        timeout: float,
        **rest: Any,
    ) -> Any:
        dial = Dial(
            ssl=ssl_for(url, ca, insecure, cert, key),
            headers=parse_headers(headers),
            subprotocols=subprotocols,
            require_extensions=require_extensions,
            timeout=timeout,
            proxy=proxy_setting(),
            max_redirects=max_redirects(),
        )
        return func(url=url, dial=dial, **rest)

    decorated = cast(F, command)
    for decorator in reversed(
        [
            click.option(
                "--ca",
                type=click.Path(exists=True, dir_okay=False, readable=True),
                help="PEM file of CA certificates to trust instead of the system's.",
            ),
            click.option("--insecure", is_flag=True, help="Do not verify the server's certificate (wss:// only)."),
            click.option(
                "--cert",
                type=click.Path(exists=True, dir_okay=False, readable=True),
                help="PEM client certificate to present to a server that requires one (wss:// only).",
            ),
            click.option(
                "--key",
                type=click.Path(exists=True, dir_okay=False, readable=True),
                help="PEM private key of --cert, when it is not in the same file.",
            ),
            click.option(
                "-H",
                "--header",
                "headers",
                multiple=True,
                metavar="'NAME: VALUE'",
                callback=_validate_headers,
                help="Extra request header (User-Agent replaces the default; Host and Sec-WebSocket-* are refused).",
            ),
            click.option(
                "--subprotocol",
                "subprotocols",
                multiple=True,
                metavar="NAME",
                callback=_validate_subprotocols,
                help="Offer a subprotocol.",
            ),
            click.option(
                "--require-extension",
                "require_extensions",
                multiple=True,
                metavar="NAME",
                callback=_validate_extensions,
                help="Fail with 1010 unless the server negotiates it (e.g. permessage-deflate).",
            ),
            click.option(
                "--timeout",
                type=Seconds(),
                default=10.0,
                show_default=True,
                help="Seconds for each network step.",
            ),
            click.option(
                "--proxy",
                metavar="URL",
                expose_value=False,
                callback=_store_proxy,
                help="Proxy to dial through: http://[user:pass@]host:port, https://..., socks5://... "
                "('' dials directly). Default: HTTPS_PROXY / HTTP_PROXY / ALL_PROXY unless NO_PROXY names the host.",
            ),
            click.option(
                "--no-proxy",
                is_flag=True,
                expose_value=False,
                callback=_store_proxy,
                help="Dial directly, ignoring the proxy variables.",
            ),
            click.option(
                "--max-redirects",
                type=click.IntRange(min=0),
                default=10,
                show_default=True,
                expose_value=False,
                callback=_store_redirects,
                help="Redirects (301, 302, 303, 307, 308) to follow; 0 shows the first one as a failure.",
            ),
        ]
    ):
        decorated = decorator(decorated)
    return decorated


def ssl_for(
    url: str, ca: str | None, insecure: bool, cert: str | None = None, key: str | None = None
) -> ssl.SSLContext | None:
    """The client's TLS context for ``url``, refusing unusable files before any dial."""
    if key is not None and cert is None:
        raise click.BadParameter("--key needs --cert", param_hint="'--key'")
    if not url.startswith("wss:"):
        if cert is not None:
            raise click.BadParameter("a client certificate needs a wss:// URL", param_hint="'--cert'")
        return None
    try:
        context = client_ssl_context(ca, insecure)
    except (OSError, ssl.SSLError) as exc:
        raise click.BadParameter(f"cannot load {ca}: {exc}", param_hint="'--ca'") from None
    if cert is not None:
        try:
            context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            what = f"{cert} with {key}" if key else cert
            raise click.BadParameter(f"cannot load {what}: {exc}", param_hint="'--cert/--key'") from None
    return context


# The client's own limits and headers, shared by check and connect.
MAX_SIZE_OPTION = click.option(
    "--max-size",
    type=click.IntRange(min=1),
    default=1 << 20,
    show_default=True,
    help="Largest message accepted, in bytes (larger ones end the connection with 1009).",
)


def _validate_origin(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        check_headers([], origin=value)
    except WebSocketError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


ORIGIN_OPTION = click.option(
    "--origin",
    metavar="URL",
    callback=_validate_origin,
    help="Send this Origin header (servers with an allow-list check it).",
)
