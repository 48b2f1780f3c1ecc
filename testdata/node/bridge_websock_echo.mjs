// Echo check with noVNC's own transport, core/websock.js, under Node
// (ws as the global WebSocket). Usage: node bridge_websock_echo.mjs URL BYTES
// Prints "OK <bytes> <subprotocol>".
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';

globalThis.window = globalThis;
globalThis.WebSocket = WebSocket;
const { default: Websock } = await import('./node_modules/@novnc/novnc/core/websock.js');

const [url, sizeArg] = process.argv.slice(2);
const size = Number(sizeArg);
const data = randomBytes(size);
const fail = (msg) => { console.error('FAIL ' + msg); process.exit(1); };
setTimeout(() => fail('timeout'), 20000).unref();

const sock = new Websock();
const received = [];
let got = 0;
sock.on('open', () => {
  // noVNC offers "binary" (rfb.js: this._sock.open(url, this._wsProtocols)).
  sock.sQpushBytes(data);
  sock.flush();
});
sock.on('message', () => {
  const n = sock.rQlen();
  received.push(Buffer.from(sock.rQshiftBytes(n)));
  got += n;
  if (got >= size) {
    if (!Buffer.concat(received).equals(data)) fail('echo differs');
    console.log(`OK ${got} ${sock._websocket.protocol || '-'}`);
    sock.close();
  }
});
sock.on('close', () => process.exit(got >= size ? 0 : 1));
sock.on('error', (e) => fail(String(e && e.message || e)));
sock.open(url, ['binary']);
