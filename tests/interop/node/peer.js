// A scripted peer built on node's `ws`, driven by the interoperability tests.
//
//   node peer.js server [--no-deflate]        echo server on 127.0.0.1, prints {"port": N};
//                                            a text message "close:CODE:REASON" makes it close.
//   node peer.js client URL [--no-deflate]   reads JSON commands from stdin, prints JSON events.
//
// Commands (client): {"send": "text"}, {"send_b64": "..."}, {"close": CODE, "reason": "..."}.
// Events: {"open": true, "extensions": "..."}, {"text": "..."}, {"binary_b64": "..."},
//         {"close": CODE, "reason": "..."}.
'use strict';
const { WebSocket, WebSocketServer } = require('ws');
const readline = require('readline');

const [, , mode, arg, ...flags] = process.argv;
const deflate = !flags.includes('--no-deflate') && !(mode === 'server' && arg === '--no-deflate');
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

if (mode === 'server') {
  const wss = new WebSocketServer({
    host: '127.0.0.1', port: 0, perMessageDeflate: deflate ? { threshold: 0 } : false,
    maxPayload: 64 * 1024 * 1024,
  });
  wss.on('listening', () => out({ port: wss.address().port }));
  wss.on('connection', (ws, req) => {
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? null : data.toString('utf8');
      if (text !== null && text.startsWith('close:')) {
        const [, code, reason] = text.split(':');
        ws.close(Number(code), reason);
        return;
      }
      ws.send(data, { binary: isBinary });
    });
    ws.on('close', (code, reason) => out({ server_saw_close: code, reason: reason.toString() }));
  });
} else {
  const ws = new WebSocket(arg, { perMessageDeflate: deflate, maxPayload: 64 * 1024 * 1024 });
  ws.on('open', () => {
    out({ open: true, extensions: ws.extensions });
    const rl = readline.createInterface({ input: process.stdin });
    rl.on('line', (line) => {
      const cmd = JSON.parse(line);
      if (cmd.send !== undefined) ws.send(cmd.send);
      else if (cmd.send_b64 !== undefined) ws.send(Buffer.from(cmd.send_b64, 'base64'));
      else if (cmd.close !== undefined) ws.close(cmd.close, cmd.reason || '');
    });
  });
  ws.on('message', (data, isBinary) => {
    if (isBinary) out({ binary_b64: Buffer.from(data).toString('base64') });
    else out({ text: data.toString('utf8') });
  });
  ws.on('close', (code, reason) => { out({ close: code, reason: reason.toString() }); process.exit(0); });
  ws.on('error', (err) => { out({ error: String(err) }); });
}
