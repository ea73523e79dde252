"""Hostile and broken peers built from raw sockets, for the robustness tests."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct


def upgrade_request(port: int, path: str = "/", extra: str = "") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


async def raw_upgrade(port: int, *, rcvbuf: int | None = None, extra: str = "") -> tuple[socket.socket, bytes]:
    """A client socket past the opening handshake; returns it and the response head.

    With ``rcvbuf`` the receive buffer is shrunk before connecting, so that a peer that
    then never reads fills up quickly.
    """
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
        await loop.sock_sendall(sock, upgrade_request(port, extra=extra))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await loop.sock_recv(sock, 1)  # one byte at a time: read nothing past the head
            if not chunk:
                break
            head += chunk
    except BaseException:
        sock.close()
        raise
    return sock, head


def client_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A masked frame as a client sends it."""
    mask = os.urandom(4)
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked
