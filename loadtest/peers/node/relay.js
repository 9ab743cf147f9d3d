#!/usr/bin/env node
// node relay: a minimal WebSocket "room relay" on Node's https/http and the `ws` package.
// A benchmark peer for the Hearth load tests, not a product: no auth, no limits.
// Every text message is relayed to every connection in the same room (the request path),
// sender included, in order. Usage: node relay.js --port P --cert C.pem --key K.pem [--plain]
'use strict';
const fs = require('fs');
const http = require('http');
const https = require('https');

let ws;
try { ws = require('ws'); } catch { ws = require('/usr/share/nodejs/ws'); } // Debian's node-ws

function option(name) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : undefined;
}
const port = Number(option('--port'));
const plain = process.argv.includes('--plain');
if (!port || (!plain && !(option('--cert') && option('--key')))) {
  console.error('usage: relay.js --port P --cert CERT.pem --key KEY.pem [--plain]');
  process.exit(2);
}

const server = plain
  ? http.createServer()
  : https.createServer({ cert: fs.readFileSync(option('--cert')), key: fs.readFileSync(option('--key')) });
const wss = new ws.WebSocketServer({ server, perMessageDeflate: false, maxPayload: 1 << 20, clientTracking: false });

const rooms = new Map(); // path -> Set<WebSocket>

wss.on('connection', (sock, req) => {
  const path = req.url;
  let room = rooms.get(path);
  if (!room) rooms.set(path, (room = new Set()));
  room.add(sock);
  sock.on('message', (data) => {
    for (const member of room) member.send(data, { binary: false });
  });
  sock.on('close', () => {
    room.delete(sock);
    if (room.size === 0 && rooms.get(path) === room) rooms.delete(path);
  });
  sock.on('error', () => {}); // 'close' follows
});

server.listen(port, '127.0.0.1', () => process.stdout.write(`listening on 127.0.0.1:${port}\n`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
