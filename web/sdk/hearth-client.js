// @ts-check
/**
 * The Hearth protocol client: one seat in one room, over one WebSocket at a time.
 *
 * It joins (`hello`, or `resume` when storage holds a seat), splits server frames on newlines,
 * turns requests with a `rid` into promises, keeps the highest `seq` it processed, and follows
 * the reconnect policy of docs/protocol.md section 8. Every server message is dispatched as a
 * CustomEvent named after its type, and as 'message'. See docs/client.md.
 */

/** @typedef {import('./protocol').Server} ServerMessage */
/** @typedef {import('./protocol').ServerType} ServerType */
/** @typedef {import('./protocol').ClientType} ClientType */
/** @typedef {import('./protocol').ServerAck} Ack */
/** @typedef {import('./protocol').ServerWelcome} Welcome */
/** @typedef {import('./protocol').ServerResumed} Resumed */
/** @typedef {import('./protocol').SelfView} SelfView */
/** @typedef {import('./protocol').IceServer} IceServer */
/** @typedef {import('./protocol').ErrorCode} ErrorCode */
/**
 * @template {ClientType} T
 * @typedef {import('./protocol').ClientFields<T>} ClientFields
 */

/** @typedef {'idle' | 'connecting' | 'joined' | 'reconnecting' | 'closed'} ClientState */

/**
 * Why the client stopped for good ('closed' event, `client.why`): an error code the server sent
 * just before closing (`authentication-failed`, `banned`, `room-locked`, `room-ended`,
 * `token-reused`, `resume-failed`, `waiting-room-full`, …) or, without one, a word for the close
 * code: `ended` (4000), `left` (4001), `removed` (4002), `banned` (4003), `denied` (4004),
 * `taken-over` (4005), `room-locked` (4006), `authentication-failed` (4401), `not-found` (4404),
 * `policy-violation` (1008), `protocol-error` (1003, 1007, 1009), `expired` (the grace period ran
 * out and there was no token for a new hello), `closed` (close() was called).
 * @typedef {string} CloseWhy
 */

/**
 * @typedef {object} StorageLike the part of the Web Storage API the client uses
 * @property {(key: string) => string | null} getItem
 * @property {(key: string, value: string) => void} setItem
 * @property {(key: string) => void} removeItem
 */

/**
 * @typedef {object} HearthClientOptions
 * @property {string} room the room id
 * @property {string} [token] a join token (JWT) for `hello`; may be left out when storage holds a resumable seat
 * @property {string} [url] default `wss://${location.host}/v1/rooms/${encodeURIComponent(room)}`
 * @property {StorageLike} [storage] keeps the resume secret and last seq under `hearth:<room>`
 * @property {() => Promise<string>} [refreshToken] a fresh join token, for `refresh` before the current one expires and for a new `hello`
 * @property {{new (url: string): WebSocket}} [WebSocketImpl] the WebSocket constructor (node: the `ws` package's)
 * @property {number} [graceMs] how long the server holds a dropped seat (its `rooms.graceSeconds`); default 60000
 * @property {number} [pingIntervalMs] an application `ping` this often while joined, to notice a dead connection; default 20000, 0: never
 * @property {number} [pongTimeoutMs] a connection with no message for this long after a ping is dropped; default 10000
 * @property {number} [requestTimeoutMs] a request without a reply by then rejects with `timeout`; default 15000
 * @property {number} [retryPauseMs] the pause before retrying after 1013, 4007 or 4429; default 5000
 *   (a resume refused with 1013 backs off from 250 ms instead, doubling up to twice this)
 */

/** Close codes after which the client stops for good (protocol section 8). */
const STOP_WHY = new Map([
  [4000, 'ended'], [4001, 'left'], [4002, 'removed'], [4003, 'banned'], [4004, 'denied'],
  [4005, 'taken-over'], [4006, 'room-locked'], [4401, 'authentication-failed'], [4404, 'not-found'],
  [1008, 'policy-violation'], [1003, 'protocol-error'], [1007, 'protocol-error'], [1009, 'protocol-error'],
]);
/** Close codes after which the client tries again after a pause. */
const PAUSE_CODES = new Set([1013, 4007, 4429]);
/** Stops after which the stored seat is useless: it is cleared. */
const CLEARS_SEAT = new Set(['ended', 'left', 'removed', 'banned', 'denied', 'taken-over', 'room-ended', 'resume-failed', 'expired']);

/** A refused request: `code` is the server's error code (docs/protocol.md section 7), or one of
 * the client's own: `not-connected`, `connection-lost`, `timeout`. */
export class HearthError extends Error {
  /**
   * @param {ErrorCode | 'not-connected' | 'connection-lost' | 'timeout'} code
   * @param {string} message
   * @param {string} [rid]
   */
  constructor(code, message, rid) {
    super(message);
    this.name = 'HearthError';
    this.code = code;
    this.rid = rid;
  }
}

/**
 * @param {number} ms
 * @param {number} [jitter] 0..1: the delay is drawn from [ms*(1-jitter), ms]
 */
function jittered(ms, jitter = 0.5) {
  return Math.round(ms * (1 - jitter * Math.random()));
}

/**
 * The `exp` claim of a JWT, in ms, or null (the client never checks signatures: the server does).
 * @param {string} token
 */
export function tokenExpiry(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const body = JSON.parse(atob(part + '='.repeat((4 - (part.length % 4)) % 4)));
    return typeof body.exp === 'number' ? body.exp * 1000 : null;
  } catch {
    return null;
  }
}

export class HearthClient extends EventTarget {
  /** @param {HearthClientOptions} options */
  constructor(options) {
    super();
    if (!options || !options.room) throw new TypeError('HearthClient: room is required');
    this.room = options.room;
    /** @type {string | undefined} the token for the next hello (replaced by each refreshed token) */
    this.token = options.token;
    this.url = options.url ?? HearthClient.defaultUrl(options.room);
    this.storage = options.storage;
    this.refreshToken = options.refreshToken;
    this.WebSocketImpl = options.WebSocketImpl ?? globalThis.WebSocket;
    this.graceMs = options.graceMs ?? 60000;
    this.pingIntervalMs = options.pingIntervalMs ?? 20000;
    this.pongTimeoutMs = options.pongTimeoutMs ?? 10000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 15000;
    this.retryPauseMs = options.retryPauseMs ?? 5000;
    this.storageKey = `hearth:${options.room}`;

    /** @type {ClientState} */
    this.state = 'idle';
    /** @type {SelfView | null} who this connection is (the `you` of welcome/resumed) */
    this.me = null;
    /** @type {IceServer[]} the STUN/TURN servers of the last welcome/resumed */
    this.iceServers = [];
    /** the highest seq processed */
    this.lastSeq = 0;
    /** @type {CloseWhy | null} why the client stopped, once it did */
    this.why = null;
    /** @type {WebSocket | null} the current socket (tests may terminate it) */
    this.socket = null;

    /** @type {string | null} the seat's current resume secret */
    this._secret = null;
    /** @type {Map<string, {resolve: (m: any) => void, reject: (e: HearthError) => void, timer: any}>} */
    this._pending = new Map();
    this._ridCounter = 0;
    /** how the current socket joins: 'hello' or 'resume' */
    /** @type {'hello' | 'resume'} */
    this._mode = 'hello';
    /** @type {string | null} the code of the last error a join or the server sent before a close */
    this._lastErrorCode = null;
    /** whether the last resume failed (the next hello, without a token, stops with `resume-failed`) */
    this._resumeFailed = false;
    /** @type {ServerMessage | null} the last words before a close (`ended`, `removed`, `denied`) */
    this._lastWords = null;
    this._attempt = 0;
    /** @type {number | null} when the seat was lost (ms): the grace period runs from then */
    this._droppedAt = null;
    /** @type {any} */ this._retryTimer = null;
    /** The secret the last `resume` presented (given back after server-busy). @type {string | null} */
    this._triedSecret = null;
    /** @type {any} */ this._pingTimer = null;
    /** @type {any} */ this._pongTimer = null;
    /** @type {any} */ this._refreshTimer = null;
    /** @type {((m: Welcome | Resumed) => void) | null} */
    this._connectResolve = null;
    /** @type {((e: Error) => void) | null} */
    this._connectReject = null;
    /** @type {Promise<Welcome | Resumed> | null} */
    this._connectPromise = null;
    this._loadSeat();
  }

  /** @param {string} room */
  static defaultUrl(room) {
    const host = globalThis.location?.host;
    if (!host) return '';
    return `wss://${host}/v1/rooms/${encodeURIComponent(room)}`;
  }

  /** Whether storage (or this client) holds a seat to resume. */
  get hasSeat() {
    return this._secret !== null;
  }

  /**
   * Connects: resumes the stored seat if there is one, else sends `hello` with the token.
   * Resolves with the first `welcome` or `resumed`; rejects with a HearthError if the client
   * stops for good before that (its code is the `why`).
   * @returns {Promise<Welcome | Resumed>}
   */
  connect() {
    if (this._connectPromise) return this._connectPromise;
    if (!this.url) throw new TypeError('HearthClient: no url (and no location to derive one from)');
    this._connectPromise = new Promise((resolve, reject) => {
      this._connectResolve = resolve;
      this._connectReject = reject;
    });
    this.why = null;
    this._mode = this._secret ? 'resume' : 'hello';
    this._open('connecting');
    return this._connectPromise;
  }

  /**
   * Sends a command with a fresh `rid`. Resolves with its `ack`; rejects with a HearthError whose
   * code is the server's (e.g. `forbidden`), or `not-connected`, `connection-lost`, `timeout`.
   * @template {ClientType} T
   * @param {T} type
   * @param {ClientFields<T>} [fields]
   * @returns {Promise<Ack>}
   */
  request(type, fields) {
    if (this.state !== 'joined' || !this.socket) {
      return Promise.reject(new HearthError('not-connected', 'Not connected to the room.'));
    }
    const rid = `r${++this._ridCounter}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(rid);
        reject(new HearthError('timeout', `No reply to ${type}.`, rid));
      }, this.requestTimeoutMs);
      this._pending.set(rid, { resolve, reject, timer });
      this._write({ ...(fields ?? {}), type, rid });
    });
  }

  /**
   * Sends a message without a `rid` (success is silent; an error still arrives as an `error`
   * event). Returns false when not connected (nothing was sent).
   * @template {ClientType} T
   * @param {T} type
   * @param {ClientFields<T>} [fields]
   */
  send(type, fields) {
    if (this.state !== 'joined' || !this.socket) return false;
    this._write({ ...(fields ?? {}), type });
    return true;
  }

  /** Leaves the session for good: sends `leave`, closes, clears storage; state 'closed'. */
  async leave() {
    if (this.state === 'joined') {
      try {
        await this.request('leave');
      } catch {
        // Leaving anyway: the seat is given up, or it expires.
      }
    }
    this._stop(4001, 'left', 'left');
  }

  /** Stops without leaving (the seat stays held for the grace period; storage is kept). */
  close() {
    this._stop(1000, 'closed', 'closed');
  }

  /**
   * Presents a fresh token (from `refreshToken`) with `refresh`. Called by itself a minute before
   * the current token expires when `refreshToken` was given.
   */
  async refresh() {
    if (!this.refreshToken) throw new TypeError('HearthClient: no refreshToken callback');
    const token = await this.refreshToken();
    this.token = token;
    await this.request('refresh', { token });
    this._scheduleRefresh();
  }

  // ---- connection ----

  /** @param {ClientState} state */
  _open(state) {
    this._setState(state);
    const socket = new this.WebSocketImpl(this.url);
    this.socket = socket;
    this._lastErrorCode = null;
    this._lastWords = null;
    socket.addEventListener('open', () => {
      if (this.socket !== socket) return;
      this._join();
    });
    socket.addEventListener('message', (event) => {
      if (this.socket !== socket) return;
      this._onFrame(typeof event.data === 'string' ? event.data : String(event.data));
    });
    socket.addEventListener('close', (event) => {
      if (this.socket !== socket) return;
      this._onClose(event.code, event.reason);
    });
  }

  async _join() {
    const socket = this.socket;
    if (this._mode === 'resume' && this._secret) {
      const secret = this._secret;
      // The secret is spent by this attempt: a drop before `resumed` needs a hello (section 2),
      // unless the server answers server-busy (1013) first, which spends nothing.
      this._secret = null;
      this._triedSecret = secret;
      this._saveSeat();
      this._write({ type: 'resume', rid: 'resume', secret, lastSeq: this.lastSeq });
      return;
    }
    let token = this.token;
    if (this.refreshToken && (!token || this._expired(token))) {
      try {
        token = this.token = await this.refreshToken();
      } catch {
        token = undefined;
      }
    }
    if (this.socket !== socket) return;
    if (!token) {
      this._stop(4401, 'no token', this._resumeFailed ? 'resume-failed' : 'expired');
      return;
    }
    this._write({ type: 'hello', rid: 'hello', token });
  }

  /** @param {string} token */
  _expired(token) {
    const exp = tokenExpiry(token);
    return exp !== null && exp <= Date.now();
  }

  /** @param {object} message */
  _write(message) {
    try {
      this.socket?.send(JSON.stringify(message));
    } catch {
      // A socket that is closing: its close event handles the rest.
    }
  }

  /** @param {string} frame */
  _onFrame(frame) {
    this._armPong();
    for (const line of frame.split('\n')) {
      if (!line) continue;
      /** @type {ServerMessage} */
      let message;
      try {
        message = JSON.parse(line);
      } catch {
        continue; // not ours to guess at; the server never sends this
      }
      if (!message || typeof message !== 'object' || typeof message.type !== 'string') continue;
      this._onMessage(message);
    }
  }

  /** @param {ServerMessage} message */
  _onMessage(message) {
    if ('seq' in message && typeof message.seq === 'number') {
      if (message.seq <= this.lastSeq) return; // already processed (never expected; kept at most once)
      this.lastSeq = message.seq;
      this._saveSeat();
    }
    switch (message.type) {
      case 'welcome':
      case 'resumed':
        this._onJoined(message);
        break;
      case 'ack':
      case 'error': {
        const pending = message.rid ? this._pending.get(message.rid) : undefined;
        if (pending) {
          clearTimeout(pending.timer);
          this._pending.delete(/** @type {string} */ (message.rid));
          if (message.type === 'ack') pending.resolve(message);
          else pending.reject(new HearthError(message.code, message.message, message.rid));
        }
        // A refused hello or resume says why the close that follows happens.
        if (message.type === 'error' && (message.rid === 'hello' || message.rid === 'resume')) {
          this._lastErrorCode = message.code;
        }
        break;
      }
      case 'ended':
      case 'removed':
      case 'denied':
        this._lastWords = message;
        this._clearSeat();
        break;
    }
    this._dispatch(message);
  }

  /** @param {Welcome | Resumed} message */
  _onJoined(message) {
    this.me = message.you;
    this.iceServers = message.iceServers;
    this._secret = message.resumeSecret;
    this._triedSecret = null;
    if (message.type === 'welcome' || message.gap) this.lastSeq = message.lastSeq;
    this._saveSeat();
    this._attempt = 0;
    this._droppedAt = null;
    this._resumeFailed = false;
    this._setState('joined');
    this._startPing();
    this._scheduleRefresh();
    const resolve = this._connectResolve;
    this._connectResolve = this._connectReject = null;
    resolve?.(message);
  }

  /**
   * @param {number} code
   * @param {string} reason
   */
  _onClose(code, reason) {
    this.socket = null;
    this._stopPing();
    this._failPending('connection-lost', 'The connection was lost.');
    if (this.state === 'closed') return;
    if (code === 4401 && this._lastErrorCode === 'resume-failed') {
      // The seat cannot be resumed: join again with hello (section 8).
      this._resumeFailed = true;
      this._mode = 'hello';
      this._retry(0, code, reason);
      return;
    }
    const stopWhy = STOP_WHY.get(code);
    if (stopWhy) {
      this._stop(code, reason, this._lastErrorCode ?? stopWhy);
      return;
    }
    if (this._droppedAt === null) this._droppedAt = Date.now();
    if (code === 1013 && this._lastErrorCode === 'server-busy' && this._triedSecret) {
      // Refused before the secret was checked (a busy server, or in a cluster the room's old
      // node still holding it): the same secret resumes the seat on the next attempt.
      this._secret = this._triedSecret;
      this._saveSeat();
    }
    this._triedSecret = null;
    this._mode = this._secret ? 'resume' : 'hello';
    if (code === 1013 && this._mode === 'resume') {
      // A held seat: the server is busy, or (in a cluster) the room's old node still holds it
      // for a few seconds after it died. Back off as after a drop, up to the pause, so the
      // member is back soon after the room moves (docs/client.md).
      this._retry(jittered(Math.min(250 * 2 ** this._attempt, this.retryPauseMs * 2)), code, reason);
      return;
    }
    if (PAUSE_CODES.has(code)) {
      this._retry(jittered(this.retryPauseMs * 2, 0.5), code, reason);
      return;
    }
    // 1001 (server restart), 4008 (send queue overflow), a network drop (1006) or anything else:
    // back off exponentially with jitter, within the grace period.
    const delay = jittered(Math.min(250 * 2 ** this._attempt, 8000));
    if (this._mode === 'resume' && Date.now() + delay > this._droppedAt + this.graceMs) {
      this._secret = null; // the seat is gone by now: a hello takes the user back in
      this._saveSeat();
      this._mode = 'hello';
    }
    this._retry(delay, code, reason);
  }

  /**
   * @param {number} delay
   * @param {number} code
   * @param {string} reason
   */
  _retry(delay, code, reason) {
    this._attempt++;
    this._setState('reconnecting', code, reason);
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(() => {
      if (this.state === 'reconnecting') this._open('reconnecting');
    }, delay);
  }

  /**
   * Stops for good.
   * @param {number} code
   * @param {string} reason
   * @param {CloseWhy} why
   */
  _stop(code, reason, why) {
    if (this.state === 'closed') return;
    clearTimeout(this._retryTimer);
    clearTimeout(this._refreshTimer);
    this._stopPing();
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      try {
        socket.close(1000);
      } catch {
        // already closing
      }
    }
    this._failPending('connection-lost', 'The client stopped.');
    this.why = why;
    if (CLEARS_SEAT.has(why)) this._clearSeat();
    this._setState('closed', code, reason);
    const detail = { code, reason, why, message: this._lastWords ?? undefined };
    this.dispatchEvent(new CustomEvent('closed', { detail }));
    const reject = this._connectReject;
    this._connectResolve = this._connectReject = null;
    this._connectPromise = null;
    reject?.(new HearthError(/** @type {any} */ (why), `The client stopped: ${why}.`));
  }

  /**
   * @param {ClientState} state
   * @param {number} [code]
   * @param {string} [reason]
   */
  _setState(state, code, reason) {
    if (this.state === state && code === undefined) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, code, reason } }));
  }

  /**
   * @param {any} code
   * @param {string} text
   */
  _failPending(code, text) {
    for (const [rid, pending] of this._pending) {
      clearTimeout(pending.timer);
      pending.reject(new HearthError(code, text, rid));
    }
    this._pending.clear();
  }

  /** @param {ServerMessage} message */
  _dispatch(message) {
    this.dispatchEvent(new CustomEvent('message', { detail: message }));
    this.dispatchEvent(new CustomEvent(message.type, { detail: message }));
  }

  // ---- liveness and token refresh ----

  _startPing() {
    this._stopPing();
    if (!this.pingIntervalMs) return;
    this._pingTimer = setInterval(() => {
      this._write({ type: 'ping' });
      if (!this._pongTimer) this._armPong(true);
    }, this.pingIntervalMs);
  }

  /** Any message proves the connection alive; after a ping, silence for pongTimeoutMs drops it.
   * @param {boolean} [start] */
  _armPong(start = false) {
    if (!start) {
      clearTimeout(this._pongTimer);
      this._pongTimer = null;
      return;
    }
    const socket = this.socket;
    this._pongTimer = setTimeout(() => {
      this._pongTimer = null;
      if (this.socket !== socket || !socket) return;
      // A dead connection: a browser may take long to report it; treat it as dropped now.
      this.socket = null;
      try {
        socket.close();
      } catch {
        // ignore
      }
      this._onClose(1006, 'no reply');
    }, this.pongTimeoutMs);
  }

  _stopPing() {
    clearInterval(this._pingTimer);
    clearTimeout(this._pongTimer);
    this._pingTimer = this._pongTimer = null;
  }

  _scheduleRefresh() {
    clearTimeout(this._refreshTimer);
    if (!this.refreshToken || !this.token) return;
    const exp = tokenExpiry(this.token);
    if (exp === null) return;
    const delay = Math.max(exp - Date.now() - 60000, 5000);
    this._refreshTimer = setTimeout(() => {
      if (this.state === 'joined') this.refresh().catch(() => this._scheduleRefresh());
    }, delay);
  }

  // ---- storage ----

  _loadSeat() {
    if (!this.storage) return;
    try {
      const raw = this.storage.getItem(this.storageKey);
      if (!raw) return;
      const seat = JSON.parse(raw);
      if (typeof seat.secret === 'string' && typeof seat.lastSeq === 'number') {
        this._secret = seat.secret;
        this.lastSeq = seat.lastSeq;
      }
    } catch {
      // an unreadable entry is no seat
    }
  }

  _saveSeat() {
    if (!this.storage) return;
    try {
      if (this._secret === null) this.storage.removeItem(this.storageKey);
      else this.storage.setItem(this.storageKey, JSON.stringify({ secret: this._secret, lastSeq: this.lastSeq }));
    } catch {
      // storage full or disabled: resuming after a reload will not work, the rest does
    }
  }

  _clearSeat() {
    this._secret = null;
    if (!this.storage) return;
    try {
      this.storage.removeItem(this.storageKey);
      this.storage.removeItem(`${this.storageKey}:model`); // RoomModel's saved room
    } catch {
      // ignore
    }
  }
}
