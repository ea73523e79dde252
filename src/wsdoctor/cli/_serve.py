"""``wsdoctor serve``: an echo (or relay) server that logs like a server, and the failure lab.

Each connection is one line when it ends (time, peer, path, duration, messages in and
out, close code and cause); the full explanation follows only for an abnormal ending,
or for every one with ``--verbose``. A request answered with plain HTTP (a
``process_request`` answer, a rejected upgrade) is logged with its HTTP status.

``--fault NAME`` serves one failure of the lab (:mod:`wsdoctor.diagnose.faults`)
instead of the echo server, and says what a correct client should report about it.

The command builds one :class:`ServeSettings` and hands its ``server_options`` to
:func:`wsdoctor.serve`: a new server option is one more click option and one more
entry there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console

from wsdoctor.aio._run import run
from wsdoctor.aio.connection import WebSocketConnection
from wsdoctor.aio.server import format_peer, raise_descriptor_limit
from wsdoctor.aio.server import serve as ws_serve
from wsdoctor.cli._lang import LANG_OPTION
from wsdoctor.cli._relay import relay_handler, reuse_port_socket, run_workers
from wsdoctor.cli._render import make_console, render_ending, ui
from wsdoctor.hub import Hub
from wsdoctor.protocol._ending import Ending
from wsdoctor.protocol._errors import ConnectionClosed
from wsdoctor.protocol._handshake import reason_phrase

EPILOG = """\b
Examples:
  wsdoctor serve
  wsdoctor serve --port 9000 --no-compression
  wsdoctor serve --tls-cert cert.pem --tls-key key.pem --lang es
  wsdoctor serve --relay
  wsdoctor serve --redis redis://127.0.0.1:6379/0 --workers 4
  wsdoctor serve --list-faults
  wsdoctor serve --fault expired --port 8766 --ca-out ca.pem

\b
Each connection is logged in one line when it ends; abnormal endings (and every
ending with --verbose) are explained in full. --fault serves one failure of the lab
so that you can see what your own client reports about it.
"""


@dataclass
class ServeSettings:
    """What the command line asked for; ``server_options`` go to :func:`wsdoctor.serve` as they are."""

    host: str
    port: int
    lang: str
    verbose: bool = False
    relay: bool = False
    redis_url: str | None = None
    client_ca: str | None = None
    server_options: dict[str, Any] = field(default_factory=dict)


def _peer(address: Any) -> str:
    return format_peer(address) if address is not None else "-"


class ConnectionLog(logging.Handler):
    """One line per connection, as servers log; the explanation only when something went wrong."""

    def __init__(self, console: Console, lang: str, verbose: bool) -> None:
        super().__init__(logging.INFO)
        self.console = console
        self.lang = lang
        self.verbose = verbose
        self.words: dict[str, str] = ui(lang)["serve"]

    def line(self, record: logging.LogRecord, ending: Ending) -> str:
        peer = _peer(getattr(record, "peer", None))
        path = getattr(record, "path", "") or "-"
        status = getattr(record, "http_status", None)
        if status is not None:
            text = self.words["http"].format(peer=peer, path=path, status=status, phrase=reason_phrase(status))
            # An answer the application chose (a health check, a redirect) is not a failure.
            return text if status < 400 else f"{text} ({ending.cause})"
        return self.words["line"].format(
            peer=peer,
            path=path,
            duration=f"{getattr(record, 'duration', 0.0):.2f}",
            received=getattr(record, "messages_in", 0),
            sent=getattr(record, "messages_out", 0),
            code=ending.code,
            name=ending.explanation(self.lang).name,
            cause=ending.cause,
        )

    def emit(self, record: logging.LogRecord) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        ending = getattr(record, "ending", None)
        if not isinstance(ending, Ending):
            self.console.print(f"{stamp} {record.levelname} {record.getMessage()}", markup=False)
            return
        self.console.print(f"{stamp} {self.line(record, ending)}", markup=False)
        status = getattr(record, "http_status", None)
        if status is not None and status < 400:
            return  # an HTTP answer the application chose: there is no WebSocket ending to explain
        if self.verbose or not (ending.ok or _a_probe(ending)):
            render_ending(self.console, ending, self.lang)


def _a_probe(ending: Ending) -> bool:
    """A TCP connection that left before sending an upgrade request: a health check or a port scan.

    Load balancers open and close such connections all day; one line each is enough,
    and the full explanation stays available with --verbose.
    """
    return not ending.opened and ending.cause in ("tcp.closed", "tcp.reset")


async def echo(ws: WebSocketConnection) -> None:
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass  # the ending is logged by the server


@contextlib.asynccontextmanager
async def _logging_to(console: Console, lang: str, verbose: bool) -> AsyncIterator[logging.Logger]:
    """The server's endings and the hub's notices, through one ConnectionLog."""
    logger = logging.getLogger("wsdoctor.server")
    # Restored on the way out: the command can run inside a process that keeps going.
    saved = (logger.level, logger.propagate)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = ConnectionLog(console, lang, verbose)
    logger.addHandler(handler)
    hub_logger = logging.getLogger("wsdoctor.hub")
    hub_logger.addHandler(handler)
    try:
        yield logger
    finally:
        hub_logger.removeHandler(handler)
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


class StopSignals:
    """SIGINT and SIGTERM end the serving; the first one received decides the exit status.

    Installed before the "listening" line is printed: whoever reads it may signal at once.
    """

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.received: list[int] = []
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: int) -> None:
        self.received.append(sig)
        self.event.set()

    async def wait(self) -> int:
        await self.event.wait()
        return self.received[0] if self.received else signal.SIGINT


async def serve_echo(settings: ServeSettings, console: Console, sock: socket.socket | None = None) -> int:
    """Echo, or relay with ``settings.relay`` (through Redis with ``redis_url``), until signalled.

    Returns the number of the signal that stopped it, for the exit status.
    """
    words = ui(settings.lang)["serve"]
    hub = Hub(settings.redis_url) if settings.relay or settings.redis_url else None
    # Every connection costs a descriptor: take all the system allows before listening.
    limits = raise_descriptor_limit()
    try:
        async with (
            _logging_to(console, settings.lang, settings.verbose) as logger,
            ws_serve(
                echo if hub is None else relay_handler(hub),
                None if sock is not None else settings.host,
                settings.port,
                logger=logger,
                sock=sock,
                **settings.server_options,
            ) as server,
        ):
            stop = StopSignals()
            for url in server.urls:
                if hub is None:
                    banner = words["listening"].format(url=url)
                elif settings.redis_url:
                    banner = words["listening_relay_redis"].format(url=url, redis=settings.redis_url)
                else:
                    banner = words["listening_relay"].format(url=url)
                console.print(banner, markup=False)
            if settings.client_ca:
                console.print(words["client_ca"].format(ca=settings.client_ca), markup=False)
            if limits is not None:
                before, after, hard = limits
                if after > before:
                    note = words["descriptors_raised"].format(before=before, after=after, hard=hard)
                else:
                    note = words["descriptors"].format(soft=after, hard=hard)
                console.print(note, markup=False)
            signum = await stop.wait()
            console.print(words["shutting_down"], markup=False)
    finally:
        if hub is not None:
            await hub.close()
    return signum


async def serve_fault(settings: ServeSettings, name: str, console: Console, ca_out: Path | None = None) -> int:
    """Serve one fault of the lab until interrupted, after saying what to expect of it.

    Its certificates live in a temporary folder removed on exit; ``ca_out`` keeps a copy
    of the CA certificate where the person wants it, for the client under test.
    """
    from wsdoctor.diagnose.faults import get_fault, start_fault

    fault = get_fault(name)
    lang = settings.lang
    words = ui(lang)
    lab_words = words["lab"]
    with tempfile.TemporaryDirectory(prefix="wsdoctor-lab-") as tmp:
        pki = None
        if fault.secure:
            from wsdoctor.diagnose.certs import Pki

            pki = Pki(Path(tmp))
        async with _logging_to(console, lang, settings.verbose) as logger:
            lab = await start_fault(fault, pki, host=settings.host, port=settings.port, logger=logger)
            if lab.ca_file is not None and ca_out is not None:
                try:
                    ca_out.write_bytes(Path(lab.ca_file).read_bytes())
                except OSError as exc:
                    # Not the address's fault: name the option that holds the bad path.
                    raise click.BadParameter(
                        f"cannot write to {ca_out}: {exc.strerror or exc}", param_hint="'--ca-out'"
                    ) from None
                lab.ca_file = str(ca_out)
            try:
                stop = StopSignals()
                expected = fault.expected_ending()
                console.print(
                    lab_words["title"].format(name=fault.name, description=words["faults"][fault.name]), markup=False
                )
                console.print(lab_words["url"].format(url=lab.url), markup=False)
                command = f"wsdoctor check {lab.url}"
                if lab.ca_file is not None:
                    console.print(lab_words["ca"].format(path=lab.ca_file), markup=False)
                    command += f" --ca {lab.ca_file}"
                if fault.check_args:
                    command += " " + " ".join(fault.check_args)
                console.print(
                    lab_words["expect"].format(
                        code=expected.code,
                        name=expected.explanation(lang).name,
                        cause=expected.cause,
                        summary=expected.cause_text(lang).summary,
                    ),
                    markup=False,
                )
                console.print(lab_words["try"].format(command=command), markup=False)
                console.print(lab_words["stop"], markup=False)
                return await stop.wait()
            finally:
                await lab.close()


def print_faults(lang: str) -> None:
    """One fault per line: name, the code and cause a correct client reports, what it is."""
    from wsdoctor.diagnose.faults import FAULTS

    descriptions = ui(lang)["faults"]
    width = max(len(f.name) for f in FAULTS)
    for fault in FAULTS:
        expected = f"{fault.expected_code} {fault.expected_cause}"
        click.echo(f"{fault.name:<{width}}  {expected:<26}  {descriptions[fault.name]}")


def _fault_names() -> list[str]:
    from wsdoctor.diagnose.faults import FAULTS

    return [f.name for f in FAULTS]


class FaultName(click.ParamType):  # type: ignore[type-arg]
    """A fault of the lab, checked when parsed so that a typo lists the real names."""

    name = "NAME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        names = _fault_names()
        if value not in names:
            self.fail(f"{value!r} is not a fault; wsdoctor serve --list-faults shows them: {', '.join(names)}")
        return str(value)


def _tls_context(tls_cert: str | None, tls_key: str | None, client_ca: str | None = None) -> ssl.SSLContext | None:
    """The server's TLS context; with ``client_ca``, mutual TLS.

    A client that presents no certificate, or one that ``client_ca`` did not issue,
    fails the TLS handshake (the client sees ``tls.client_cert_required``), before any
    HTTP is read: that is the point of asking for one.
    """
    if not (tls_cert or tls_key):
        if client_ca:
            raise click.UsageError("--tls-client-ca needs --tls-cert and --tls-key: client certificates need TLS")
        return None
    if not (tls_cert and tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(tls_cert, tls_key)
    except (ssl.SSLError, OSError) as exc:
        raise click.BadParameter(f"cannot load the certificate and key: {exc}") from None
    if client_ca:
        try:
            context.load_verify_locations(cafile=client_ca)
        except (ssl.SSLError, OSError) as exc:
            raise click.BadParameter(f"cannot load {client_ca} as PEM CA certificates: {exc}") from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _worker(
    index: int,
    host: str,
    port: int,
    tls_cert: str | None,
    tls_key: str | None,
    settings: ServeSettings,
) -> None:
    """One of --workers N: its own socket on the shared port, its own event loop and hub."""
    # Contexts do not cross processes.
    settings.server_options["ssl"] = _tls_context(tls_cert, tls_key, settings.client_ca)
    try:
        sock = reuse_port_socket(host, port)
        run(serve_echo(settings, make_console(), sock))
    except KeyboardInterrupt:
        pass


@click.command(epilog=EPILOG)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="PEM certificate chain (wss://).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="PEM private key for --tls-cert.")
@click.option(
    "--tls-client-ca",
    type=click.Path(exists=True, dir_okay=False),
    help="Require a client certificate issued by the CA(s) in this PEM file (mutual TLS; needs --tls-cert).",
)
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
@click.option("-v", "--verbose", is_flag=True, help="Explain every ending in full, not only the abnormal ones.")
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
@click.option("--fault", type=FaultName(), help="Serve this failure of the lab instead of the echo server.")
@click.option("--list-faults", is_flag=True, help="List the failures --fault can serve, one per line, and exit.")
@click.option(
    "--ca-out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="With --fault: also write the lab's CA certificate to this file (the client's --ca).",
)
@LANG_OPTION
def serve(
    host: str,
    port: int,
    tls_cert: str | None,
    tls_key: str | None,
    tls_client_ca: str | None,
    no_compression: bool,
    max_size: int,
    max_connections: int | None,
    verbose: bool,
    relay: bool,
    redis_url: str | None,
    workers: int,
    fault: str | None,
    list_faults: bool,
    ca_out: Path | None,
    lang: str,
) -> None:
    """Run an echo (or relay) server that logs one line per connection and explains abnormal endings."""
    if list_faults:
        print_faults(lang)
        return
    settings = ServeSettings(host=host, port=port, lang=lang, verbose=verbose)
    if fault is not None:
        own_server = (tls_cert, tls_key, tls_client_ca, no_compression, relay, redis_url, workers > 1, max_connections)
        if any(own_server):
            raise click.UsageError(
                "--fault brings its own server: --tls-cert, --tls-key, --tls-client-ca, --no-compression, --relay, "
                "--redis, --workers and --max-connections do not apply"
            )
        _run(serve_fault(settings, fault, make_console(), ca_out), host, port)
    context = _tls_context(tls_cert, tls_key, tls_client_ca)
    settings.client_ca = tls_client_ca
    if redis_url is not None:
        _check_redis_url(redis_url)
        relay = True
    if workers > 1 and relay and redis_url is None:
        raise click.UsageError("--workers with --relay needs --redis: the workers relay to each other through it")
    settings.relay = relay
    settings.redis_url = redis_url
    settings.server_options.update(
        compression=None if no_compression else "deflate", max_size=max_size, max_connections=max_connections
    )
    if workers > 1:
        try:
            code = run_workers(workers, host, port, _worker, (tls_cert, tls_key, settings))
        except OSError as exc:
            raise click.BadParameter(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}", param_hint="'--host' / '--port'"
            ) from None
        raise SystemExit(code)
    settings.server_options["ssl"] = context
    _run(serve_echo(settings, make_console()), host, port)


def _check_redis_url(url: str) -> None:
    try:
        from redis.asyncio.connection import parse_url
    except ImportError:
        raise click.UsageError("--redis needs the redis package: pip install 'wsdoctor[redis]'") from None
    try:
        parse_url(url.replace("redis+cluster://", "redis://", 1))
    except ValueError as exc:
        raise click.BadParameter(f"{url!r} is not a Redis URL ({exc})", param_hint="--redis") from None


def _run(main: Any, host: str, port: int) -> NoReturn:
    """Serve until a signal, then exit as service managers and shells expect.

    SIGTERM is how service managers ask for a graceful stop: when every connection got
    its 1001, that is success (0). Ctrl-C stays 130, as shells report an interrupt.
    """
    try:
        signum = run(main)
    except OSError as exc:
        # The host or port given cannot be used: bad input, exit 2.
        raise click.BadParameter(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}", param_hint="'--host' / '--port'"
        ) from None
    raise SystemExit(0 if signum == signal.SIGTERM else 128 + signum)
