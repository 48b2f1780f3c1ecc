// A WebSocket echo server built on npm websocket-driver, which speaks the
// server side of Hixie-75, Hixie-76 and RFC 6455 when given allowDrafts.
// Every text message is sent back (its drafts ignore subprotocols); the server logs each connection's
// protocol version to stdout. Usage: node hixie_echo_server.js PORT
'use strict';
const http = require('http');
const websocket = require('websocket-driver');

const server = http.createServer((req, res) => {
  res.writeHead(404);
  res.end();
});

server.on('upgrade', (request, socket, head) => {
  socket.on('error', () => {}); // ECONNRESET from clients that vanish
  if (!websocket.isWebSocket(request)) {
    socket.destroy();
    return;
  }
  const driver = websocket.http(request, { allowDrafts: true });
  driver.io.write(head);
  socket.pipe(driver.io).pipe(socket);
  driver.on('open', () => console.log('open', driver.version, request.url));
  driver.messages.on('data', (message) => driver.text(message));
  driver.on('close', () => socket.end());
  driver.on('error', (e) => console.log('error', e.message));
  driver.start();
});

server.listen(Number(process.argv[2]), '127.0.0.1', () => {
  console.log('listening', server.address().port);
});
