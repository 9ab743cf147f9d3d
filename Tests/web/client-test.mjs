// The SDK's protocol client and room model against a real hearthd (started by test_sdk.py).
//   HEARTH_URL=wss://127.0.0.1:PORT HEARTH_SECRET=... HEARTH_GRACE_MS=4000 node Tests/web/client-test.mjs
// Without HEARTH_URL only the tests that need no server run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { HearthClient, HearthError, RoomModel } from '../../web/sdk/index.js';

const require = createRequire(import.meta.url);
// node before 19 has no global CustomEvent (the SDK is written for browsers).
globalThis.CustomEvent ??= class CustomEvent extends Event {
  constructor(type, options = {}) {
    super(type, options);
    this.detail = options.detail ?? null;
  }
};
/** Debian's node-ws lives in /usr/share/nodejs, which nodesource's node does not search. */
function loadWs() {
  for (const name of ['ws', '/usr/share/nodejs/ws']) {
    try {
      return require(name);
    } catch {
      // next
    }
  }
  throw new Error('the ws module is missing: apt-get install node-ws');
}

const URL_BASE = process.env.HEARTH_URL;
const SECRET = process.env.HEARTH_SECRET ?? '';
const GRACE_MS = Number(process.env.HEARTH_GRACE_MS ?? 4000);
// Each test is bounded: a hang (a promise that never settles) fails it instead of stalling the run.
const needsServer = { skip: URL_BASE ? false : 'HEARTH_URL not set (run from Tests/web/test_sdk.py)', timeout: 20000 };

// ---- helpers ----

/** A switchable network: while `offline`, new connections go to a closed port (a network drop). */
const network = { offline: false, opened: 0 };
const WS = URL_BASE ? loadWs() : null;
/** The `ws` WebSocket for a self-signed development certificate, counting connections. */
class TestSocket extends (WS ?? Object) {
  /** @param {string} url */
  constructor(url) {
    network.opened++;
    super(network.offline ? 'wss://127.0.0.1:1/' : url, { rejectUnauthorized: false });
  }
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');
let users = 0;
/** An HS256 join token, as tests/e2e/hearth.py mints them. */
function mint(room, role, name, sub = `user-${++users}-${crypto.randomUUID().slice(0, 8)}`, ttl = 300) {
  const now = Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({ sub, room, role, name, iat: now, exp: now + ttl, jti: crypto.randomUUID() }));
  const sig = crypto.createHmac('sha256', SECRET).update(`${header}.${body}`).digest('base64url');
  return `${header}.${body}.${sig}`;
}

/** A Web Storage stand-in. */
class MemoryStorage {
  constructor() {
    this.map = new Map();
  }
  getItem(k) {
    return this.map.has(k) ? this.map.get(k) : null;
  }
  setItem(k, v) {
    this.map.set(k, String(v));
  }
  removeItem(k) {
    this.map.delete(k);
  }
}

let rooms = 0;
const newRoom = () => `sdk-${process.pid}-${++rooms}`;

/** Polls until `check()` is truthy (bounded); returns its value. */
async function waitFor(check, what, timeout = 5000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Every message a client dispatched, by type. */
function recorder(client) {
  const seen = [];
  client.addEventListener('message', (e) => seen.push(e.detail));
  return { seen, of: (type) => seen.filter((m) => m.type === type) };
}

/** Joins a member: client, model, recorder, storage. */
async function join(room, role, name, { storage = new MemoryStorage(), sub, graceMs = GRACE_MS } = {}) {
  const token = mint(room, role, name, sub);
  const client = new HearthClient({ room, token, url: `${URL_BASE}/v1/rooms/${room}`, storage, WebSocketImpl: TestSocket, graceMs });
  const model = new RoomModel(client);
  const rec = recorder(client);
  const first = await client.connect();
  return { client, model, rec, storage, first, token };
}

const opened = [];
async function session(room, role, name, options) {
  const m = await join(room, role, name, options);
  opened.push(m.client);
  return m;
}
test.afterEach(() => {
  for (const c of opened.splice(0)) c.close();
});

// ---- without a server ----

test('frames are split on newlines; every message is dispatched once, with seq tracking', { timeout: 5000 }, () => {
  /** A socket that delivers what the test pushes. */
  class FakeSocket extends EventTarget {
    constructor() {
      super();
      FakeSocket.last = this;
      this.sent = [];
    }
    send(text) {
      this.sent.push(JSON.parse(text));
    }
    close() {}
    push(frame) {
      const e = new Event('message');
      e.data = frame;
      this.dispatchEvent(e);
    }
  }
  const storage = new MemoryStorage();
  const client = new HearthClient({ room: 'r', token: 't', url: 'wss://x/v1/rooms/r', storage, WebSocketImpl: FakeSocket, pingIntervalMs: 0 });
  const rec = recorder(client);
  client.connect();
  FakeSocket.last.dispatchEvent(new Event('open'));
  assert.deepEqual(FakeSocket.last.sent, [{ type: 'hello', rid: 'hello', token: 't' }]);
  const welcome = { type: 'welcome', rid: 'hello', you: { id: 'p2', role: 'participant', alias: 'Sam', placement: 'waiting' }, resumeSecret: 's1', lastSeq: 2, waiting: { reason: 'waiting-for-admission', consentAcknowledged: false, locationRequired: false, locationGiven: false }, iceServers: [] };
  const w3 = { type: 'waiting-room-message', seq: 3, text: 'a', at: 1 };
  const w5 = { type: 'waiting-room-message', seq: 5, text: 'b', at: 2 };
  FakeSocket.last.push([welcome, w3, w5].map((m) => JSON.stringify(m)).join('\n'));
  assert.deepEqual(rec.seen.map((m) => m.type), ['welcome', 'waiting-room-message', 'waiting-room-message']);
  assert.equal(client.state, 'joined');
  assert.equal(client.lastSeq, 5);
  // A replayed duplicate (seq not above the last processed) is not dispatched again.
  FakeSocket.last.push(JSON.stringify(w5));
  assert.equal(rec.of('waiting-room-message').length, 2);
  assert.deepEqual(JSON.parse(storage.getItem('hearth:r')), { secret: 's1', lastSeq: 5 });
  client.close();
  assert.equal(client.state, 'closed');
  assert.equal(client.why, 'closed');
  assert.ok(storage.getItem('hearth:r'), 'close() keeps the seat for a reload');
});

test('a resume refused with 1013 (a cluster moving the room) is tried again soon, not after the long pause', { timeout: 8000 }, async () => {
  /** Sockets the test opens, answers and closes by hand. */
  class FakeSocket extends EventTarget {
    constructor() {
      super();
      FakeSocket.all.push(this);
      this.sent = [];
    }
    send(text) {
      this.sent.push(JSON.parse(text));
    }
    close() {}
    push(message) {
      const e = new Event('message');
      e.data = JSON.stringify(message);
      this.dispatchEvent(e);
    }
    shut(code) {
      const e = new Event('close');
      e.code = code;
      e.reason = '';
      this.dispatchEvent(e);
    }
  }
  FakeSocket.all = [];
  const client = new HearthClient({ room: 'r', token: 't', url: 'wss://x/v1/rooms/r', storage: new MemoryStorage(), WebSocketImpl: FakeSocket, pingIntervalMs: 0 });
  client.connect();
  FakeSocket.all[0].dispatchEvent(new Event('open'));
  FakeSocket.all[0].push({ type: 'welcome', rid: 'hello', you: { id: 'p1', role: 'facilitator', alias: 'F', placement: 'room' }, resumeSecret: 's1', lastSeq: 0, room: null, iceServers: [] });
  assert.equal(client.state, 'joined');
  FakeSocket.all[0].shut(1006); // the node died
  for (let i = 1; i <= 3; i++) {
    const opened = Date.now();
    await waitFor(() => FakeSocket.all.length === i + 1, `reconnect ${i}`, 3000);
    assert.ok(Date.now() - opened < 2500, `attempt ${i} came after ${Date.now() - opened} ms, not after retryPauseMs x 2`);
    const socket = FakeSocket.all[i];
    socket.dispatchEvent(new Event('open'));
    assert.equal(socket.sent[0].type, 'resume');
    assert.equal(socket.sent[0].secret, 's1');
    // The room's old node still holds it: server-busy, 1013.
    socket.push({ type: 'error', rid: socket.sent[0].rid, code: 'server-busy', message: 'busy' });
    socket.shut(1013);
    assert.equal(client.state, 'reconnecting');
  }
  client.close();
});

// ---- against hearthd ----

test('hello -> welcome; request resolves with the ack and rejects with the error code', needsServer, async () => {
  const room = newRoom();
  const states = [];
  const f = await session(room, 'facilitator', 'Dr. Kim');
  assert.equal(f.first.type, 'welcome');
  assert.equal(f.client.state, 'joined');
  assert.equal(f.client.me.role, 'facilitator');
  assert.equal(f.client.me.placement, 'room');
  assert.ok(f.client.iceServers.length >= 1 && f.client.iceServers[0].username, 'TURN credentials from welcome');
  assert.equal(f.model.placement, 'room');
  assert.ok(f.model.isStaff);

  const p = await session(room, 'participant', 'Sam');
  p.client.addEventListener('state', (e) => states.push(e.detail.state));
  assert.equal(p.model.placement, 'waiting');
  assert.equal(p.model.waitingStatus.reason, 'waiting-for-admission');
  await waitFor(() => f.model.waiting.get(p.client.me.id)?.ready, 'the staff view of the waiting member');

  const ack = await f.client.request('admit', { member: p.client.me.id });
  assert.equal(ack.type, 'ack');
  assert.deepEqual(ack.admitted, [p.client.me.id]);
  await waitFor(() => p.model.placement === 'room', 'admission');
  assert.equal(f.model.waiting.size, 0);

  await assert.rejects(p.client.request('admit', { member: f.client.me.id }), (e) => {
    assert.ok(e instanceof HearthError);
    assert.equal(e.code, 'forbidden');
    assert.match(e.rid, /^r\d+$/);
    return true;
  });
  const chat = await p.client.request('chat', { to: 'room', text: 'Hi everyone' });
  assert.match(chat.message, /^m\d+$/);
  await waitFor(() => f.model.chat.some((c) => c.id === chat.message), 'the chat at the facilitator');
  assert.equal(p.client.state, 'joined');
  assert.deepEqual(states, [], 'no reconnect happened');

  // seq tracking: the client keeps the highest seq it processed, and stores it with the secret.
  const seqs = p.rec.seen.filter((m) => 'seq' in m).map((m) => m.seq);
  assert.ok(seqs.length >= 2);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
  assert.equal(p.client.lastSeq, Math.max(...seqs));
  assert.equal(JSON.parse(p.storage.getItem(`hearth:${room}`)).lastSeq, p.client.lastSeq);
});

test('a dropped socket resumes within the grace period with the stored secret; missed events arrive once', needsServer, async () => {
  const room = newRoom();
  const f = await session(room, 'facilitator', 'Dr. Kim');
  const p = await session(room, 'participant', 'Sam');
  const pid = p.client.me.id;
  await f.client.request('admit', { member: pid });
  await waitFor(() => p.model.placement === 'room', 'admission');
  const secretBefore = JSON.parse(p.storage.getItem(`hearth:${room}`)).secret;
  const states = [];
  p.client.addEventListener('state', (e) => states.push(e.detail.state));

  network.offline = true;
  p.client.socket.terminate();
  try {
    await waitFor(() => f.model.members.get(pid)?.connected === false, 'the facilitator to see the held seat');
    var missed = await f.client.request('chat', { to: 'room', text: 'while you were away' });
  } finally {
    network.offline = false;
  }
  const resumed = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no resumed')), GRACE_MS);
    p.client.addEventListener('resumed', (e) => (clearTimeout(timer), resolve(e.detail)), { once: true });
  });
  assert.equal(resumed.gap, false);
  assert.ok(resumed.replayed >= 1);
  assert.equal(p.client.state, 'joined');
  assert.equal(states[0], 'reconnecting');
  assert.equal(states.at(-1), 'joined');
  assert.equal(p.rec.of('welcome').length, 1, 'resumed, not joined again');
  const stored = JSON.parse(p.storage.getItem(`hearth:${room}`));
  assert.notEqual(stored.secret, secretBefore, 'the new secret from resumed is stored');
  await waitFor(() => f.model.members.get(pid)?.connected === true, 'the facilitator to see the member back');
  await waitFor(() => p.model.chat.some((c) => c.id === missed.message), 'the missed chat');
  assert.equal(p.rec.of('chat').filter((m) => m.message.id === missed.message).length, 1, 'the missed event arrives once');
  assert.equal(p.model.chat.filter((c) => c.id === missed.message).length, 1);
  // The seat still works.
  await p.client.request('raise-hand');
  await waitFor(() => f.model.hands().some((m) => m.id === pid), 'the raised hand');
});

/** A reloaded page: a new client and model over the same storage, without a token. */
async function reload(room, storage) {
  const client = new HearthClient({ room, url: `${URL_BASE}/v1/rooms/${room}`, storage, WebSocketImpl: TestSocket });
  opened.push(client);
  const model = new RoomModel(client);
  const reply = await client.connect();
  return { client, model, reply };
}

test('a reload resumes from storage without a token, with the room as it stands', needsServer, async () => {
  const room = newRoom();
  const f = await session(room, 'facilitator', 'Dr. Kim');
  const p = await session(room, 'participant', 'Sam');
  const q = await session(room, 'participant', 'Alex');
  const [pid, qid] = [p.client.me.id, q.client.me.id];
  await f.client.request('admit-all');
  await waitFor(() => p.model.members.size === 3 && f.model.members.size === 3, 'everyone admitted');
  await f.client.request('chat', { to: 'room', text: 'Welcome' });
  await waitFor(() => p.model.chat.length === 1 && q.model.chat.length === 1, 'the chat');

  // A page that saved its room when it went away ('pagehide'), then more happened meanwhile.
  p.model.save();
  p.client.close();
  await waitFor(() => f.model.members.get(pid)?.connected === false, 'the held seat');
  await f.client.request('chat', { to: 'room', text: 'Meanwhile' });
  const again = await reload(room, p.storage);
  assert.equal(again.reply.type, 'resumed');
  assert.equal(again.reply.gap, false);
  assert.equal(again.client.me.id, pid);
  await waitFor(() => again.model.chat.length === 2, 'the saved chat and the missed one');
  assert.deepEqual(again.model.chat.map((c) => c.text), ['Welcome', 'Meanwhile']);
  assert.deepEqual([...again.model.members.keys()].sort(), [f.client.me.id, pid, qid].sort());
  assert.equal(again.model.placement, 'room');

  // A page that saved nothing (it crashed): it resumes from seq 0, and the replay rebuilds the
  // room (a participant's replay starts with the admission's snapshot).
  q.client.close();
  await waitFor(() => f.model.members.get(qid)?.connected === false, 'the held seat');
  const fresh = await reload(room, q.storage);
  assert.equal(fresh.reply.type, 'resumed');
  await waitFor(() => fresh.model.members.size === 3 && fresh.model.chat.length === 2, 'the room rebuilt from the replay');
  assert.equal(fresh.model.placement, 'room');
});

test('a spent or unknown secret falls back to hello', needsServer, async () => {
  const room = newRoom();
  await session(room, 'facilitator', 'Dr. Kim');

  // A secret the room does not know: resume-failed, close 4401, then hello with the token.
  const storage = new MemoryStorage();
  storage.setItem(`hearth:${room}`, JSON.stringify({ secret: 'not-a-secret', lastSeq: 0 }));
  const other = new HearthClient({ room, token: mint(room, 'participant', 'Alex'), url: `${URL_BASE}/v1/rooms/${room}`, storage, WebSocketImpl: TestSocket });
  opened.push(other);
  const welcome = await other.connect();
  assert.equal(welcome.type, 'welcome');
  assert.notEqual(JSON.parse(storage.getItem(`hearth:${room}`)).secret, 'not-a-secret');

  // Without a token to join again, the client stops and says why.
  const lost = new MemoryStorage();
  lost.setItem(`hearth:${room}`, JSON.stringify({ secret: 'not-a-secret', lastSeq: 0 }));
  const stuck = new HearthClient({ room, url: `${URL_BASE}/v1/rooms/${room}`, storage: lost, WebSocketImpl: TestSocket });
  opened.push(stuck);
  await assert.rejects(stuck.connect(), (e) => e.code === 'resume-failed');
  assert.equal(stuck.state, 'closed');
  assert.equal(stuck.why, 'resume-failed');
  assert.equal(lost.getItem(`hearth:${room}`), null, 'the dead seat is cleared');
});

test('close 4003 (removed with ban) stops for good and says why; leave clears storage', needsServer, async () => {
  const room = newRoom();
  const f = await session(room, 'facilitator', 'Dr. Kim');
  const p = await session(room, 'participant', 'Sam');
  const q = await session(room, 'participant', 'Alex');
  const closed = new Promise((resolve) => p.client.addEventListener('closed', (e) => resolve(e.detail), { once: true }));
  const before = network.opened;
  await f.client.request('remove', { member: p.client.me.id, ban: true, reason: 'Repeated disruption.' });
  const detail = await closed;
  assert.equal(detail.code, 4003);
  assert.equal(detail.why, 'banned');
  assert.equal(detail.message?.type, 'removed');
  assert.equal(p.client.state, 'closed');
  assert.equal(p.storage.getItem(`hearth:${room}`), null, 'storage cleared');
  await new Promise((r) => setTimeout(r, 600)); // longer than the first reconnect delay
  assert.equal(network.opened, before, 'no reconnect');
  await assert.rejects(p.client.request('help'), (e) => e.code === 'not-connected');

  assert.ok(q.storage.getItem(`hearth:${room}`));
  await q.client.leave();
  assert.equal(q.client.state, 'closed');
  assert.equal(q.client.why, 'left');
  assert.equal(q.storage.getItem(`hearth:${room}`), null);
  await waitFor(() => !f.model.waiting.has(q.client.me.id), 'the facilitator to see the member leave');
});

test('the room model follows members, the waiting list, hands, chat, help, breakouts and the end', needsServer, async () => {
  const room = newRoom();
  const f = await session(room, 'facilitator', 'Dr. Kim');
  const a = await session(room, 'participant', 'Sam');
  const b = await session(room, 'participant', 'Alex');
  const [ida, idb] = [a.client.me.id, b.client.me.id];
  await waitFor(() => f.model.waiting.size === 2, 'two waiting');
  assert.deepEqual([...f.model.waiting.values()].map((w) => w.alias).sort(), ['Alex', 'Sam']);
  assert.equal(a.model.waiting.size, 0, 'a waiting member sees nobody else waiting');

  const ack = await f.client.request('admit-all');
  assert.deepEqual(ack.admitted.sort(), [ida, idb].sort());
  for (const m of [f, a, b]) await waitFor(() => m.model.members.size === 3, 'three members in every roster');
  assert.equal(f.model.waiting.size, 0);
  assert.ok(f.model.members.get(ida).userId, 'staff see user ids');
  assert.equal(b.model.members.get(ida).userId, undefined, 'members do not');

  // Hands: in the order raised, not by id.
  await b.client.request('raise-hand');
  await waitFor(() => f.model.hands().length === 1, 'first hand');
  await a.client.request('raise-hand');
  await waitFor(() => f.model.hands().length === 2, 'second hand');
  assert.deepEqual(f.model.hands().map((m) => m.id), [idb, ida]);
  await waitFor(() => a.model.hands().length === 2, 'hands at a member');
  await f.client.request('lower-all-hands');
  await waitFor(() => f.model.hands().length === 0 && a.model.hands().length === 0, 'hands lowered');

  // Chat and deletion.
  const sent = await a.client.request('chat', { to: 'room', text: 'Hello' });
  for (const m of [f, a, b]) await waitFor(() => m.model.chat.some((c) => c.id === sent.message), 'chat everywhere');
  await f.client.request('delete-chat', { message: sent.message });
  for (const m of [f, a, b]) {
    await waitFor(() => m.model.chat.find((c) => c.id === sent.message)?.deleted, 'deleted everywhere');
    assert.equal(m.model.chat.find((c) => c.id === sent.message).text, undefined);
  }

  // Help: staff only, until acknowledged.
  await b.client.request('help');
  await waitFor(() => f.model.help.has(idb), 'help at staff');
  assert.equal(a.model.help.size, 0);
  await f.client.request('acknowledge-help', { member: idb });
  await waitFor(() => !f.model.help.has(idb), 'help acknowledged');

  // Mute: the member's own view and everyone's roster.
  await a.client.request('media', { audio: true, video: true });
  await waitFor(() => b.model.members.get(ida).audio && a.model.you.audio, 'audio on');
  await f.client.request('mute', { member: ida });
  await waitFor(() => !b.model.members.get(ida).audio && !a.model.you.audio, 'muted everywhere');
  assert.equal(a.model.you.userId !== undefined, true, 'one\'s own view keeps one\'s own fields');

  // Breakouts: plan, open (a and b together in b1), the facilitator's view, close.
  await f.client.request('breakouts-plan', { breakouts: [{ name: 'Pair 1', members: [ida, idb] }] });
  await waitFor(() => f.model.breakouts?.plan.length === 1, 'the plan');
  await f.client.request('breakouts-open', { durationSeconds: 600 });
  await waitFor(() => a.model.breakout?.name === 'Pair 1' && a.model.members.size === 2 && b.model.members.size === 2, 'both in the pair');
  assert.deepEqual([...a.model.members.keys()].sort(), [ida, idb].sort());
  assert.equal(a.model.members.has(f.client.me.id), false, 'the facilitator is in the main room');
  await waitFor(() => f.model.breakouts?.open[0]?.members.length === 2 && f.model.members.get(ida).breakout === f.model.breakouts.open[0].id, 'the staff view');
  assert.ok(f.model.breakouts.endsAt);
  await f.client.request('breakouts-close');
  await waitFor(() => a.model.breakout === null && a.model.members.size === 3, 'back in the main room');
  await waitFor(() => f.model.breakouts === null && f.model.members.get(ida).breakout === undefined, 'no breakouts');

  // The end: every model ended, every client closed for good with why 'ended', storage cleared.
  const closed = [f, a, b].map((m) => new Promise((resolve) => m.client.addEventListener('closed', (e) => resolve(e.detail), { once: true })));
  await f.client.request('end').catch(() => {});
  for (const detail of await Promise.all(closed)) {
    assert.equal(detail.code, 4000);
    assert.equal(detail.why, 'ended');
  }
  for (const m of [f, a, b]) {
    assert.ok(m.model.ended);
    assert.equal(m.storage.getItem(`hearth:${room}`), null);
  }
});
