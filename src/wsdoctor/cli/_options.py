"""Options shared by the commands that dial (check, connect) and their validation."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any, TypeVar

import click

from wsdoctor.diagnose.check import client_ssl_context
from wsdoctor.protocol._errors import WebSocketError
from wsdoctor.protocol._uri import parse_uri

F = TypeVar("F", bound=Callable[..., Any])


def validate_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        parse_uri(value)
    except (WebSocketError, ValueError) as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def parse_headers(values: tuple[str, ...]) -> list[tuple[str, str]]:
    headers = []
    for value in values:
        name, sep, rest = value.partition(":")
        if not sep or not name.strip() or any(c in name for c in " \t"):
            raise click.BadParameter(f"{value!r} is not 'Name: value'", param_hint="'--header'")
        headers.append((name.strip(), rest.strip()))
    return headers


def dial_options(func: F) -> F:
    """--ca, --insecure, --header, --subprotocol, --require-extension, --timeout."""
    for decorator in reversed(
        [
            click.option(
                "--ca",
                type=click.Path(exists=True, dir_okay=False, readable=True),
                help="PEM file of CA certificates to trust instead of the system's.",
            ),
            click.option("--insecure", is_flag=True, help="Do not verify the server's certificate (wss:// only)."),
            click.option(
                "-H", "--header", "headers", multiple=True, metavar="'NAME: VALUE'", help="Extra request header."
            ),
            click.option("--subprotocol", "subprotocols", multiple=True, metavar="NAME", help="Offer a subprotocol."),
            click.option(
                "--require-extension",
                "require_extensions",
                multiple=True,
                metavar="NAME",
                help="Fail with 1010 unless the server negotiates it (e.g. permessage-deflate).",
            ),
            click.option(
                "--timeout",
                type=click.FloatRange(min=0.01),
                default=10.0,
                show_default=True,
                help="Seconds for each network step.",
            ),
        ]
    ):
        func = decorator(func)
    return func


def ssl_for(url: str, ca: str | None, insecure: bool) -> ssl.SSLContext | None:
    if not url.startswith("wss:"):
        return None
    try:
        return client_ssl_context(ca, insecure)
    except (OSError, ssl.SSLError) as exc:
        raise click.BadParameter(f"cannot load {ca}: {exc}", param_hint="'--ca'") from None
