"""``wsdoctor serve --relay [--redis URL] [--workers N]``: a relay instead of an echo.

Every message a client sends goes to the other clients connected to the same path:
in this process with ``--relay``, on every server attached to the same Redis with
``--redis``. ``--workers N`` starts N processes that listen on one port
(``SO_REUSEPORT``: the kernel spreads the connections among them) and relay through
Redis, so that one machine's cores all serve.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import click

from wsdoctor.aio.connection import WebSocketConnection
from wsdoctor.hub import Hub
from wsdoctor.protocol._errors import ConnectionClosed

__all__ = ["relay_handler", "reuse_port_socket", "run_workers"]


def relay_handler(hub: Hub) -> Callable[[WebSocketConnection], Awaitable[None]]:
    """A handler that puts each client in the room of its path and relays what it sends there."""

    async def relay(ws: WebSocketConnection) -> None:
        room = ws.path
        hub.join(room, ws)
        try:
            async for message in ws:
                await hub.publish(room, message, exclude=ws)
        except ConnectionClosed:
            pass  # the ending is logged by the server

    return relay


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening socket that other processes can bind to the same port (SO_REUSEPORT)."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise click.UsageError("--workers needs SO_REUSEPORT, which this system does not have")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def run_workers(workers: int, host: str, port: int, target: Callable[..., None], args: tuple[Any, ...]) -> int:
    """Start ``workers`` processes serving ``host:port`` together; wait for them; return an exit code.

    The port is bound here first (with SO_REUSEPORT, not listening) so that ``--port 0``
    picks one port for all of them; Ctrl+C or SIGTERM stops every worker.
    """
    if not hasattr(socket, "SO_REUSEPORT"):
        raise click.UsageError("--workers needs SO_REUSEPORT, which this system does not have")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    holder = socket.socket(family, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        holder.bind((host, port))
    except OSError:
        holder.close()
        raise
    port = holder.getsockname()[1]
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=target, args=(i, host, port, *args), daemon=True) for i in range(workers)]
    for proc in procs:
        proc.start()

    def stop(signum: int, frame: object) -> None:
        for proc in procs:
            if proc.pid is not None and proc.is_alive():
                proc.terminate()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        for proc in procs:
            while proc.is_alive():
                try:
                    proc.join()
                except KeyboardInterrupt:
                    stop(signal.SIGINT, None)  # the workers got SIGINT from the terminal too
    finally:
        signal.signal(signal.SIGTERM, previous)
        holder.close()
    return max((proc.exitcode or 0) for proc in procs)
