"""``wsdoctor serve``: an echo server that explains how each connection ended."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import ssl

import click
from rich.console import Console

from wsdoctor.aio._run import run
from wsdoctor.aio.connection import WebSocketConnection
from wsdoctor.aio.server import raise_descriptor_limit
from wsdoctor.aio.server import serve as ws_serve
from wsdoctor.cli._relay import relay_handler, reuse_port_socket, run_workers
from wsdoctor.cli._render import render_ending
from wsdoctor.hub import Hub
from wsdoctor.protocol._errors import ConnectionClosed

EPILOG = """\b
Examples:
  wsdoctor serve
  wsdoctor serve --port 9000 --no-compression
  wsdoctor serve --tls-cert cert.pem --tls-key key.pem --lang es
  wsdoctor serve --relay
  wsdoctor serve --redis redis://127.0.0.1:6379/0 --workers 4
"""


class EndingHandler(logging.Handler):
    """Prints each connection's ending, explained, as the server logs it."""

    def __init__(self, console: Console, lang: str) -> None:
        super().__init__(logging.INFO)
        self.console = console
        self.lang = lang

    def emit(self, record: logging.LogRecord) -> None:
        ending = getattr(record, "ending", None)
        if ending is None:
            self.console.print(record.getMessage(), markup=False)
            return
        peer = getattr(record, "peer", None)
        where = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.console.print(f"[bold]{where}[/bold] {getattr(record, 'path', '')}", highlight=False)
        render_ending(self.console, ending, self.lang)


async def echo(ws: WebSocketConnection) -> None:
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass  # the ending is logged by the server


async def serve_echo(
    host: str,
    port: int,
    context: ssl.SSLContext | None,
    compression: bool,
    max_size: int,
    console: Console,
    lang: str,
    *,
    relay: bool = False,
    redis_url: str | None = None,
    sock: socket.socket | None = None,
    max_connections: int | None = None,
) -> None:
    logger = logging.getLogger("wsdoctor.server")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = EndingHandler(console, lang)
    logger.addHandler(handler)
    hub_logger = logging.getLogger("wsdoctor.hub")
    hub_logger.addHandler(handler)
    hub = Hub(redis_url) if relay or redis_url else None
    kind = "echo" if hub is None else "relay"
    across = f" (relaying through {redis_url})" if redis_url else ""
    # Every connection costs a descriptor: take all the system allows before listening.
    limits = raise_descriptor_limit()
    try:
        async with ws_serve(
            echo if hub is None else relay_handler(hub),
            None if sock is not None else host,
            port,
            ssl=context,
            compression="deflate" if compression else None,
            max_size=max_size,
            sock=sock,
            max_connections=max_connections,
        ) as server:
            for url in server.urls:
                console.print(f"wsdoctor {kind} server listening on {url}{across}  (Ctrl+C to stop)", highlight=False)
            if limits is not None:
                before, after, hard = limits
                if after > before:
                    logger.info(
                        "file descriptors: soft limit raised from %d to %d (hard limit %d)", before, after, hard
                    )
                else:
                    logger.info("file descriptors: soft limit %d, hard limit %d", after, hard)
            loop = asyncio.get_running_loop()
            stop = asyncio.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
            console.print("shutting down: closing every connection with 1001 Going Away")
    finally:
        if hub is not None:
            await hub.close()
        hub_logger.removeHandler(handler)
        logger.removeHandler(handler)


def _tls_context(tls_cert: str | None, tls_key: str | None) -> ssl.SSLContext | None:
    if not (tls_cert or tls_key):
        return None
    if not (tls_cert and tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(tls_cert, tls_key)
    except (ssl.SSLError, OSError) as exc:
        raise click.BadParameter(f"cannot load the certificate and key: {exc}") from None
    return context


def _worker(
    index: int,
    host: str,
    port: int,
    tls_cert: str | None,
    tls_key: str | None,
    compression: bool,
    max_size: int,
    lang: str,
    relay: bool,
    redis_url: str | None,
    max_connections: int | None,
) -> None:
    """One of --workers N: its own socket on the shared port, its own event loop and hub."""
    console = Console(highlight=False)
    try:
        sock = reuse_port_socket(host, port)
        run(
            serve_echo(
                host,
                port,
                _tls_context(tls_cert, tls_key),
                compression,
                max_size,
                console,
                lang,
                relay=relay,
                redis_url=redis_url,
                sock=sock,
                max_connections=max_connections,
            )
        )
    except KeyboardInterrupt:
        pass


@click.command(epilog=EPILOG)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="PEM certificate chain (wss://).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="PEM private key for --tls-cert.")
@click.option("--no-compression", is_flag=True, help="Do not negotiate permessage-deflate.")
@click.option(
    "--max-size",
    type=click.IntRange(min=1),
    default=64 * 1024 * 1024,
    show_default=True,
    help="Largest message accepted, in bytes, after inflation (larger ones end with 1009).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=None,
    help="Answer upgrades beyond this many open connections (per worker) with HTTP 503 and Retry-After.",
)
@click.option("--lang", type=click.Choice(["en", "es"]), default="en", show_default=True)
@click.option("--relay", is_flag=True, help="Relay each message to the other clients on the same path, not echo it.")
@click.option(
    "--redis",
    "redis_url",
    metavar="URL",
    help="Relay across every server attached to this Redis (redis://host:port/db; implies --relay).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes listening on the same port (SO_REUSEPORT); with --relay they relay through --redis.",
)
def serve(
    host: str,
    port: int,
    tls_cert: str | None,
    tls_key: str | None,
    no_compression: bool,
    max_size: int,
    max_connections: int | None,
    lang: str,
    relay: bool,
    redis_url: str | None,
    workers: int,
) -> None:
    """Run an echo (or relay) server that prints how each connection ended, explained."""
    context = _tls_context(tls_cert, tls_key)
    if redis_url is not None:
        _check_redis_url(redis_url)
        relay = True
    if workers > 1 and relay and redis_url is None:
        raise click.UsageError("--workers with --relay needs --redis: the workers relay to each other through it")
    console = Console(highlight=False)
    try:
        if workers > 1:
            args = (tls_cert, tls_key, not no_compression, max_size, lang, relay, redis_url, max_connections)
            raise SystemExit(run_workers(workers, host, port, _worker, args))
        run(
            serve_echo(
                host,
                port,
                context,
                not no_compression,
                max_size,
                console,
                lang,
                relay=relay,
                redis_url=redis_url,
                max_connections=max_connections,
            )
        )
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _check_redis_url(url: str) -> None:
    try:
        from redis.asyncio.connection import parse_url
    except ImportError:
        raise click.UsageError("--redis needs the redis package: pip install 'wsdoctor[redis]'") from None
    try:
        parse_url(url.replace("redis+cluster://", "redis://", 1))
    except ValueError as exc:
        raise click.BadParameter(f"{url!r} is not a Redis URL ({exc})", param_hint="--redis") from None
