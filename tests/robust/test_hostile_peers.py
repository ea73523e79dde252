"""What already held against hostile peers and faults, kept true by tests.

Slow request heads get 408, deflate bombs end with 1009 on either side, a storm of tiny
fragments is one message, SIGTERM gives every client 1001 and exit 0, and a shutdown
loses no message the server acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import pytest

import wsdoctor
from _helpers import echo, serve_process
from wsdoctor import WebSocketConnection

from ._peers import client_frame, deflate_bomb, raw_upgrade, read_frame, server_frame, upgrade_request

BOMB = 64 << 20  # inflated size; 64 times max_size
DEFLATE = "Sec-WebSocket-Extensions: permessage-deflate\r\n"


def logged_endings(caplog: pytest.LogCaptureFixture) -> list[wsdoctor.Ending]:
    return [r.ending for r in caplog.records if hasattr(r, "ending")]  # type: ignore[attr-defined]


async def test_slowloris_gets_408_while_others_are_served() -> None:
    async with asyncio.timeout(20), wsdoctor.serve(echo, "127.0.0.1", 0, open_timeout=1.0) as server:
        port = server.port_number

        async def dribble() -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            request = upgrade_request(port)
            answer = asyncio.ensure_future(reader.read())
            try:
                for i in range(len(request)):
                    if answer.done():
                        break
                    writer.write(request[i : i + 1])
                    await asyncio.sleep(0.1)
            except ConnectionError:
                pass
            finally:
                writer.close()
            return await answer

        slow = [asyncio.ensure_future(dribble()) for _ in range(50)]
        await asyncio.sleep(0.3)
        async with wsdoctor.connect(f"ws://127.0.0.1:{port}/") as ws:
            for i in range(20):
                await ws.send(f"normal {i}")
                assert await ws.recv() == f"normal {i}"
        answers = await asyncio.gather(*slow)
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers[:3]


async def test_deflate_bomb_from_a_client_ends_1009(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "wsdoctor.server")
    bomb = deflate_bomb(BOMB)
    async with asyncio.timeout(20), wsdoctor.serve(echo, "127.0.0.1", 0, max_size=1 << 20) as server:
        sock, head = await raw_upgrade(server.port_number, extra=DEFLATE)
        with sock:
            assert b"permessage-deflate" in head
            reader, writer = await asyncio.open_connection(sock=sock)
            writer.write(client_frame(0x2, bomb, rsv1=True, mask=bytes(4)))
            opcode, payload = await read_frame(reader)
            writer.close()
        while not logged_endings(caplog):
            await asyncio.sleep(0.01)
    assert (opcode, payload[:2]) == (0x8, (1009).to_bytes(2, "big"))
    ending = logged_endings(caplog)[0]
    assert (ending.code, ending.cause) == (1009, "message.too_big")


async def test_deflate_bomb_from_a_server_ends_1009() -> None:
    bomb = deflate_bomb(BOMB)
    answer: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()

    async def bomber(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from wsdoctor.protocol._handshake import accept_key

        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            v
            for k, _, v in (line.partition(b":") for line in request.split(b"\r\n"))
            if k.lower() == b"sec-websocket-key"
        )
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
            b"Sec-WebSocket-Accept: " + accept_key(key.strip().decode()).encode() + b"\r\n\r\n"
        )
        writer.write(server_frame(0x2, bomb, rsv1=True))
        answer.set_result(await read_frame(reader))
        writer.close()

    server = await asyncio.start_server(bomber, "127.0.0.1", 0)
    async with server, asyncio.timeout(20):
        port = server.sockets[0].getsockname()[1]
        ws = await wsdoctor.connect(f"ws://127.0.0.1:{port}/", max_size=1 << 20)
        with pytest.raises(wsdoctor.ConnectionClosedError) as info:
            await ws.recv()
        opcode, payload = await answer
    assert (info.value.ending.code, info.value.ending.cause) == (1009, "message.too_big")
    assert (opcode, payload[:2]) == (0x8, (1009).to_bytes(2, "big"))


async def test_fragment_storm_is_one_message() -> None:
    count = 200_000
    frames = bytearray(client_frame(0x2, b"\x00", fin=False, mask=bytes(4)))
    middle = client_frame(0x0, b"\x01", fin=False, mask=bytes(4))
    frames += middle * (count - 2)
    frames += client_frame(0x0, b"\x02", fin=True, mask=bytes(4))
    async with asyncio.timeout(30), wsdoctor.serve(echo, "127.0.0.1", 0, compression=None) as server:
        sock, _ = await raw_upgrade(server.port_number)
        with sock:
            reader, writer = await asyncio.open_connection(sock=sock)
            writer.write(bytes(frames))
            opcode, payload = await read_frame(reader)
            writer.close()
    assert opcode == 0x2
    assert payload == b"\x00" + b"\x01" * (count - 2) + b"\x02"


def test_sigterm_gives_every_client_1001_and_exit_0() -> None:
    with serve_process(env={**os.environ, "COLUMNS": "200"}) as server:

        async def clients() -> list[wsdoctor.Ending]:
            async with asyncio.timeout(20):
                conns = await asyncio.gather(*(wsdoctor.connect(server.url) for _ in range(50)))
                for ws in conns:
                    await ws.send("hi")
                    assert await ws.recv() == "hi"
                server.proc.send_signal(signal.SIGTERM)
                return list(await asyncio.gather(*(ws.wait_closed() for ws in conns)))

        endings = asyncio.run(clients())
        server.proc.communicate(timeout=30)
    assert server.proc.returncode == 0
    assert {(e.code, e.initiator, e.clean) for e in endings} == {(1001, "remote", True)}


async def test_shutdown_loses_no_acknowledged_message() -> None:
    """Clients stream numbered messages; the server closes midway. Every echo it sent arrives, in order."""
    acked: dict[int, int] = {}

    async def counting_echo(ws: WebSocketConnection) -> None:
        n = 0
        try:
            async for message in ws:
                await ws.send(message)
                n += 1
                acked[id(ws)] = n
        finally:
            acked[id(ws)] = n

    server = await wsdoctor.serve(counting_echo, "127.0.0.1", 0)
    url = f"ws://127.0.0.1:{server.port_number}/"

    async def client() -> list[int]:
        got: list[int] = []
        async with wsdoctor.connect(url) as ws:

            async def reader() -> None:
                async for message in ws:
                    got.append(int(message))

            reading = asyncio.ensure_future(reader())
            i = 0
            try:
                while True:
                    await ws.send(str(i))
                    i += 1
                    if i % 50 == 0:
                        await asyncio.sleep(0)
            except wsdoctor.ConnectionClosed:
                pass
            await reading
        return got

    async with asyncio.timeout(30):
        tasks = [asyncio.ensure_future(client()) for _ in range(20)]
        await asyncio.sleep(0.5)
        await server.close()
        received = await asyncio.gather(*tasks)
    assert sum(acked.values()) == sum(len(r) for r in received) > 0
    for got in received:
        assert got == list(range(len(got)))
