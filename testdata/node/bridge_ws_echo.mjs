// Echo check through a WebSocket-to-TCP bridge with npm's ws client.
// Usage: node bridge_ws_echo.mjs URL MODE BYTES
//   MODE: binary (offer "binary"), none (offer nothing), base64 (offer
//   "base64": text messages carrying base64).
// Sends BYTES random bytes in messages of varied sizes, reads the echo,
// compares it byte for byte, closes with 1000 and prints
// "OK <bytes> <subprotocol> <close code>".
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';

const [url, mode, sizeArg] = process.argv.slice(2);
const size = Number(sizeArg);
const protocols = mode === 'none' ? [] : [mode];
const data = randomBytes(size);
const ws = new WebSocket(url, protocols);
ws.binaryType = 'nodebuffer';
const chunks = [];
let got = 0;
const fail = (msg) => { console.error('FAIL ' + msg); process.exit(1); };
setTimeout(() => fail('timeout after ' + got + ' bytes'), 20000).unref();

ws.on('open', () => {
  const sizes = [1, 0, 1000, 65536, 70001, 3];
  for (let off = 0, i = 0; off < size; i++) {
    const n = Math.min(sizes[i % sizes.length], size - off);
    const part = data.subarray(off, off + n);
    ws.send(mode === 'base64' ? part.toString('base64') : part, { binary: mode !== 'base64' });
    off += n;
  }
});
ws.on('message', (msg, isBinary) => {
  if (mode === 'base64') {
    if (isBinary) fail('binary message in base64 mode');
    msg = Buffer.from(msg.toString(), 'base64');
  } else if (!isBinary) {
    fail('text message in binary mode');
  }
  chunks.push(msg);
  got += msg.length;
  if (got >= size) {
    const all = Buffer.concat(chunks);
    if (!all.equals(data)) fail('echo differs');
    ws.close(1000, 'done');
  }
});
ws.on('close', (code) => {
  if (got < size) fail('closed early with ' + code);
  console.log(`OK ${got} ${ws.protocol || '-'} ${code}`);
  process.exit(0);
});
ws.on('error', (e) => fail(String(e)));
