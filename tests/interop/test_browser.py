"""Headless Chromium opens a WebSocket to our server from a page served on loopback.

The page is served by the WebSocket server itself (``process_request`` answers plain
HTTP requests with it). It echoes text, binary and a large message with
permessage-deflate negotiated, asks the server to close with 4001, then reports
what its ``onclose`` saw over a second WebSocket, so the test reads the browser's
own view of the close code. Chromium is started so that it resolves no host names
and reaches nothing but loopback.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import wsdoctor
from wsdoctor import WebSocketConnection

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>wsdoctor browser test</title></head>
<body><pre id="log">running</pre>
<script>
const results = {};
const base = "ws://" + location.host;
function report() {
  const r = new WebSocket(base + "/report");
  r.onopen = () => { r.send(JSON.stringify(results)); r.close(1000); };
}
const ws = new WebSocket(base + "/echo");
ws.binaryType = "arraybuffer";
const big = "€".repeat(400000);
let step = 0;
ws.onopen = () => { results.extensions = ws.extensions; ws.send("hello from the browser"); };
ws.onmessage = (e) => {
  step += 1;
  if (step === 1) {
    results.text = e.data;
    ws.send(new Uint8Array([0, 1, 2, 255]).buffer);
  } else if (step === 2) {
    results.binary = Array.from(new Uint8Array(e.data));
    ws.send(big);
  } else if (step === 3) {
    results.big_ok = e.data === big;
    ws.send("close-me");
  }
};
ws.onclose = (e) => {
  results.close_code = e.code; results.close_reason = e.reason; results.was_clean = e.wasClean;
  document.getElementById("log").textContent = JSON.stringify(results);
  report();
};
</script></body></html>
"""


async def test_chromium_echo_with_deflate_and_close_code(chromium: list[str]) -> None:
    reported: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    server_endings: list[wsdoctor.Ending] = []

    def page(ws: WebSocketConnection, request: Any) -> tuple[int, list[tuple[str, str]], bytes] | None:
        if request.get("upgrade") is None:
            return 200, [("Content-Type", "text/html; charset=utf-8")], PAGE.encode()
        return None

    async def handler(ws: WebSocketConnection) -> None:
        if ws.path == "/report":
            reported.set_result(json.loads(await ws.recv()))
            return
        async for message in ws:
            if message == "close-me":
                ending = await ws.close(4001, "server closes as asked")
                server_endings.append(ending)
                return
            await ws.send(message)

    async with wsdoctor.serve(handler, "127.0.0.1", 0, process_request=page, max_size=None) as server:
        proc = await asyncio.create_subprocess_exec(
            *chromium,
            "--remote-debugging-port=0",
            f"http://127.0.0.1:{server.port_number}/",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            result = await asyncio.wait_for(reported, 60)
        finally:
            proc.kill()
            await proc.wait()
    assert "permessage-deflate" in result["extensions"]
    assert result["text"] == "hello from the browser"
    assert result["binary"] == [0, 1, 2, 255]
    assert result["big_ok"] is True
    assert result["close_code"] == 4001
    assert result["close_reason"] == "server closes as asked"
    assert result["was_clean"] is True
    assert server_endings and server_endings[0].clean and server_endings[0].code == 4001
