"""Drive wsdoctor's client through the Autobahn fuzzing server's cases.

    python conformance/client.py ws://127.0.0.1:9001

Runs every case as an echo client (the suite sends, wsdoctor echoes), then asks the
fuzzing server to write its reports. The server side is ``wsdoctor serve``, which is
an echo server with a 64 MiB message limit, enough for the suite's largest cases.
"""

from __future__ import annotations

import asyncio
import sys
from urllib.parse import quote

import wsdoctor

AGENT = "wsdoctor"


async def run(base: str) -> None:
    async with wsdoctor.connect(f"{base}/getCaseCount") as ws:
        count = int(await ws.recv())
    for case in range(1, count + 1):
        try:
            async with wsdoctor.connect(
                f"{base}/runCase?case={case}&agent={quote(AGENT)}", max_size=64 * 1024 * 1024
            ) as ws:
                async for message in ws:
                    await ws.send(message)
        except wsdoctor.WebSocketError as exc:
            print(f"case {case}: {exc}", file=sys.stderr)
    async with wsdoctor.connect(f"{base}/updateReports?agent={quote(AGENT)}") as ws:
        await ws.close()


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:9001"))
