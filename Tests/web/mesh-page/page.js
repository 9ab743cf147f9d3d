// @ts-nocheck
// The smallest client of the SDK, for Tests/web/test_mesh.py: join from the fragment
// (#server=wss://…&room=…&token=…), send camera and microphone over the mesh.
import { HearthClient, RoomModel, Mesh } from './sdk/index.js';

const params = new URLSearchParams(location.hash.slice(1));
const room = params.get('room');
const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 320, height: 240 } });
const client = new HearthClient({
  room,
  token: params.get('token'),
  url: `${params.get('server')}/v1/rooms/${encodeURIComponent(room)}`,
  storage: sessionStorage,
});
const model = new RoomModel(client);
// `relay=1`: TURN only (Tests/web/turn_driver.py proves the server's TURN credentials work).
const mesh = new Mesh(client, model, {
  localStream: stream,
  iceTransportPolicy: params.get('relay') === '1' ? 'relay' : 'all',
});
window.warnings = [];
const warn = console.warn;
console.warn = (...args) => {
  window.warnings.push(args.map(String).join(' '));
  warn(...args);
};
window.hearth = { client, model, mesh, stream };
window.resumes = 0;
client.addEventListener('resumed', () => window.resumes++);
await client.connect();
window.ready = true;
