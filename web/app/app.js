// The Hearth web app: pre-join, waiting room, the room with its tiles, chat and controls, and
// (for staff) the facilitator panel. Built on the SDK in ./sdk/ (see docs/client.md).
//
// Join link: https://HOST/app/#room=ROOM&token=JWT. The fragment is read once and removed
// from the address bar at once; a token in the query string is never read. A reload of the tab
// resumes the seat (the SDK keeps the resume secret in sessionStorage).

import { HearthClient, RoomModel, Mesh, Sfu } from './sdk/index.js';
import { h, append, replace, announce, chime, unlockAudio, clock, timeOfDay, confirmDialog } from './dom.js';
import { Panel } from './panel.js';

const STAFF = new Set(['facilitator', 'cofacilitator']);
const SESSION_KEY = 'hearth-app';

/**
 * What this tab remembers (sessionStorage, this tab only): the room, whether it joined, the
 * chosen devices and toggles; the token only until the server welcomed us.
 * @typedef {{room: string, token?: string, joined?: boolean, audioDevice?: string,
 *            videoDevice?: string, mic?: boolean, cam?: boolean}} Saved
 */

/** @returns {Saved | null} */
function loadSaved() {
  try {
    const raw = sessionStorage.getItem(SESSION_KEY);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

/** @param {Saved | null} saved */
function store(saved) {
  if (saved) sessionStorage.setItem(SESSION_KEY, JSON.stringify(saved));
  else sessionStorage.removeItem(SESSION_KEY);
}

/**
 * Reads the join link's fragment and removes it (and any query string) from the address bar.
 * @returns {Saved | null}
 */
function readLink() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (location.hash || location.search) history.replaceState(null, '', location.pathname);
  const room = fragment.get('room');
  const token = fragment.get('token');
  const saved = loadSaved();
  if (room) {
    if (saved && saved.room === room && !token) return saved;
    /** @type {Saved} */
    const next = { room, mic: true, cam: true };
    if (token) next.token = token;
    if (saved && saved.room === room) {
      Object.assign(next, { audioDevice: saved.audioDevice, videoDevice: saved.videoDevice, joined: saved.joined });
    }
    store(next);
    return next;
  }
  return saved;
}

/**
 * Optional deployment settings from ./config.json (same origin), e.g. when the app is hosted
 * apart from hearthd: {"server": "wss://hearth.example.org"}. Absent: same origin.
 * @returns {Promise<{server?: string}>}
 */
async function loadConfig() {
  try {
    const r = await fetch('./config.json', { cache: 'no-store' });
    if (r.ok) return await r.json();
  } catch {
    // no config: same origin
  }
  return {};
}

const ui = {
  main: /** @type {HTMLElement} */ (document.getElementById('main')),
  conn: /** @type {HTMLElement} */ (document.getElementById('conn')),
  where: /** @type {HTMLElement} */ (document.getElementById('where')),
};

/** @param {string} text @param {string} [kind] */
function setConn(text, kind = 'ok') {
  ui.conn.textContent = text;
  ui.conn.dataset.kind = kind;
}

/** @param {string} title @param {...(Node|string|null)} body */
function showMessage(title, ...body) {
  replace(ui.main, h('section', { class: 'card message', 'aria-labelledby': 'msg-title' },
    h('h1', { id: 'msg-title', tabindex: '-1' }, title), ...body));
  document.getElementById('msg-title')?.focus();
}

// ---------------------------------------------------------------------------------------------
// Pre-join: preview, device choice, Join.

/**
 * @param {Saved} saved
 * @returns {Promise<MediaStream | null>}
 */
async function getMedia(saved) {
  /** @type {MediaStreamConstraints} */
  const constraints = {
    audio: saved.audioDevice ? { deviceId: { exact: saved.audioDevice } } : true,
    video: saved.videoDevice
      ? { deviceId: { exact: saved.videoDevice }, width: { ideal: 640 }, height: { ideal: 360 } }
      : { width: { ideal: 640 }, height: { ideal: 360 } },
  };
  try {
    return await navigator.mediaDevices.getUserMedia(constraints);
  } catch {
    try {
      return await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    } catch {
      try {
        return await navigator.mediaDevices.getUserMedia({ audio: true });
      } catch {
        return null;
      }
    }
  }
}

/** @param {MediaStream | null} stream */
function stopMedia(stream) {
  stream?.getTracks().forEach((t) => t.stop());
}

/**
 * @param {Saved} saved
 * @returns {Promise<MediaStream | null>} the stream to join with
 */
function preJoin(saved) {
  return new Promise((resolve) => {
    /** @type {MediaStream | null} */
    let stream = null;
    const video = h('video', { autoplay: true, playsinline: true, class: 'preview mirror' });
    video.muted = true;
    const note = h('p', { class: 'note', role: 'status', 'aria-live': 'polite' });
    const camSelect = h('select', { id: 'cam-select' });
    const micSelect = h('select', { id: 'mic-select' });
    const micOn = h('input', { type: 'checkbox', id: 'mic-on', checked: saved.mic !== false });
    const camOn = h('input', { type: 'checkbox', id: 'cam-on', checked: saved.cam !== false });
    const meter = h('meter', { id: 'mic-level', min: '0', max: '1', value: '0', 'aria-label': 'Microphone level' });

    /** @type {Promise<void>} the current camera/microphone request */
    let pending = Promise.resolve();
    function start() {
      pending = pending.then(open);
      return pending;
    }

    async function open() {
      stopMedia(stream);
      stream = await getMedia(saved);
      video.srcObject = stream;
      if (!stream) {
        note.textContent = 'We could not use a camera or microphone. You can still join; others will not see or hear you. Check that your browser is allowed to use them.';
      } else if (stream.getVideoTracks().length === 0) {
        note.textContent = 'No camera found: others will hear you but not see you.';
      } else {
        note.textContent = '';
      }
      await fillDevices();
      watchLevel();
    }

    async function fillDevices() {
      const devices = await navigator.mediaDevices.enumerateDevices().catch(() => []);
      const current = {
        audioinput: stream?.getAudioTracks()[0]?.getSettings().deviceId,
        videoinput: stream?.getVideoTracks()[0]?.getSettings().deviceId,
      };
      for (const [kind, select, label] of /** @type {const} */ ([
        ['videoinput', camSelect, 'Camera'], ['audioinput', micSelect, 'Microphone']])) {
        const list = devices.filter((d) => d.kind === kind);
        replace(select, ...list.map((d, i) => h('option', { value: d.deviceId, selected: d.deviceId === current[kind] },
          d.label || `${label} ${i + 1}`)));
        select.disabled = list.length === 0;
      }
    }

    /** @type {number | undefined} */
    let levelTimer;
    function watchLevel() {
      clearInterval(levelTimer);
      const track = stream?.getAudioTracks()[0];
      if (!track || typeof AudioContext === 'undefined') return;
      try {
        const ctx = new AudioContext();
        const analyser = ctx.createAnalyser();
        ctx.createMediaStreamSource(new MediaStream([track])).connect(analyser);
        const data = new Uint8Array(analyser.fftSize);
        levelTimer = window.setInterval(() => {
          if (!document.body.contains(meter)) {
            clearInterval(levelTimer);
            void ctx.close();
            return;
          }
          analyser.getByteTimeDomainData(data);
          let peak = 0;
          for (const v of data) peak = Math.max(peak, Math.abs(v - 128) / 128);
          meter.value = peak;
        }, 150);
      } catch {
        // no level meter
      }
    }

    camSelect.addEventListener('change', () => {
      saved.videoDevice = camSelect.value;
      store(saved);
      void start();
    });
    micSelect.addEventListener('change', () => {
      saved.audioDevice = micSelect.value;
      store(saved);
      void start();
    });

    const join = h('button', {
      type: 'button', class: 'primary', onclick: () => {
        unlockAudio();
        saved.mic = micOn.checked;
        saved.cam = camOn.checked;
        store(saved);
        join.disabled = true;
        join.textContent = 'Joining…';
        // Join with the camera and microphone once asking for them has finished.
        void pending.then(() => {
          clearInterval(levelTimer);
          resolve(stream);
        });
      },
    }, 'Join');

    replace(ui.main, h('section', { class: 'card prejoin', 'aria-labelledby': 'prejoin-title' },
      h('h1', { id: 'prejoin-title' }, 'Get ready to join'),
      h('p', {}, 'Check that you can see yourself and that the microphone level moves when you speak.'),
      video,
      note,
      h('div', { class: 'fields' },
        h('p', {}, h('label', { for: 'cam-select' }, 'Camera'), camSelect),
        h('p', {}, h('label', { for: 'mic-select' }, 'Microphone'), micSelect),
        h('p', {}, h('span', { class: 'label' }, 'Microphone level'), meter),
        h('p', { class: 'check' }, micOn, h('label', { for: 'mic-on' }, 'Join with microphone on')),
        h('p', { class: 'check' }, camOn, h('label', { for: 'cam-on' }, 'Join with camera on'))),
      join));
    void start();
  });
}

// ---------------------------------------------------------------------------------------------
// The session: one client, one model, the media (a mesh, or the SFU when the room's state says
// `media: "sfu"`), and the screens that follow the model.

const WAIT_REASONS = {
  'waiting-for-facilitator': 'The facilitator has not arrived yet. You will be let in once they are here.',
  'waiting-for-admission': 'The facilitator will let you in shortly.',
  'waiting-for-opening': 'The session has not started yet.',
  'sent-back': 'A staff member moved you back to the waiting room. They will let you in again when ready.',
};

/** @type {Record<number, string>} */
const CLOSE_TEXT = {
  4000: 'The session has ended.',
  4001: 'You left the session.',
  4002: 'You were removed from the session.',
  4003: 'You were removed from the session and cannot rejoin it.',
  4004: 'The facilitator did not let you in to this session.',
  4005: 'You joined from another window or device, so this one was disconnected.',
  4006: 'The room is locked: no one new can join right now.',
  4007: 'The waiting room is full. Please try again in a few minutes.',
  4401: 'Your join link is no longer valid. Please ask for a new link.',
  4404: 'This link does not point to a session.',
  1008: 'The connection was closed because of a problem with this app.',
};

/** @type {Record<string, string>} why the client stopped (the SDK's `why`) */
const WHY_TEXT = {
  banned: CLOSE_TEXT[4003],
  removed: CLOSE_TEXT[4002],
  denied: CLOSE_TEXT[4004],
  left: CLOSE_TEXT[4001],
  'taken-over': CLOSE_TEXT[4005],
  'room-locked': CLOSE_TEXT[4006],
  'waiting-room-full': CLOSE_TEXT[4007],
  'authentication-failed': CLOSE_TEXT[4401],
  'token-reused': 'This invitation was already used. Please ask for a new link.',
  'resume-failed': 'We could not bring you back into the session. Please open your join link again.',
  expired: 'You were away for too long. Please open your join link again.',
  'not-found': CLOSE_TEXT[4404],
  'policy-violation': CLOSE_TEXT[1008],
};

class Session {
  /**
   * @param {Saved} saved
   * @param {MediaStream | null} stream
   * @param {{server?: string}} config
   */
  constructor(saved, stream, config) {
    this.saved = saved;
    this.stream = stream;
    /** staff muted this medium (and, with selfUnmute off, until asked) */
    this.staffMuted = { audio: false, video: false };
    /** @type {Map<string, MediaStream>} */
    this.streams = new Map();
    /** @type {'none' | 'waiting' | 'room' | 'over'} */
    this.screen = 'none';
    /** @type {Map<string, HTMLElement>} */
    this.tiles = new Map();
    this.helpPending = false;
    /** @type {string | null} */
    this.closedText = null;
    /** @type {number | undefined} */
    this.timer = undefined;
    this.mediaInFlight = false;
    /** @type {{audio: boolean, video: boolean} | undefined} what the room last showed of our media */
    this.lastSeen = undefined;

    /** @type {Record<string, unknown>} */
    const opts = { room: saved.room, storage: sessionStorage };
    if (saved.token) opts.token = saved.token;
    if (config.server) opts.url = `${config.server.replace(/\/$/, '')}/v1/rooms/${encodeURIComponent(saved.room)}`;
    this.client = new HearthClient(/** @type {any} */ (opts));
    this.model = new RoomModel(this.client);
    /** @type {Mesh | null} the mesh while the room's media goes peer to peer */
    this.mesh = null;
    /** @type {Sfu | null} the SFU connections while the room's media goes through the media server */
    this.sfu = null;
    /** whether the server started an SFU media session (before a room state said so) */
    this.sfuSeen = false;
    /** @type {Panel | null} */
    this.panel = null;
    // The media mode follows the room state; this listener comes before the mesh's own, so that a
    // room in SFU mode closes the mesh before it makes any peer connection.
    this.model.addEventListener('change', () => this.updateMediaMode());
    this.client.addEventListener('sfu-session', (e) => {
      if (this.sfu) return; // the Sfu handles it itself
      this.sfuSeen = true;
      this.updateMediaMode();
      const sfu = /** @type {Sfu | null} */ (this.sfu); // updateMediaMode() made it
      sfu?.handle(/** @type {CustomEvent} */ (e).detail);
    });
    this.startMesh();

    this.applyToggles();
    this.client.addEventListener('state', (e) => this.onState(/** @type {CustomEvent} */ (e).detail));
    this.client.addEventListener('closed', (e) => this.onClosed(/** @type {CustomEvent} */ (e).detail));
    this.client.addEventListener('welcome', () => this.onJoined());
    this.client.addEventListener('resumed', () => this.onJoined());
    this.client.addEventListener('waiting-room-message', (e) => {
      const m = /** @type {CustomEvent} */ (e).detail;
      announce('live-polite', `Message from staff: ${m.text}`);
    });
    this.client.addEventListener('unmute-requested', (e) => this.onUnmuteRequested(/** @type {CustomEvent} */ (e).detail));
    this.client.addEventListener('help-acknowledged', (e) => {
      const m = /** @type {CustomEvent} */ (e).detail;
      if (m.member === this.myId()) {
        this.helpPending = false;
        this.notice('A staff member has seen your request for help.');
        this.render();
      }
    });
    this.client.addEventListener('removed', (e) => {
      const m = /** @type {CustomEvent} */ (e).detail;
      this.closedText = (m.banned ? CLOSE_TEXT[4003] : CLOSE_TEXT[4002]) + (m.reason ? ` Reason: ${m.reason}` : '');
    });
    this.client.addEventListener('denied', (e) => {
      const m = /** @type {CustomEvent} */ (e).detail;
      this.closedText = CLOSE_TEXT[4004] + (m.reason ? ` Reason: ${m.reason}` : '');
    });
    this.client.addEventListener('breakout-broadcast', (e) => {
      const m = /** @type {CustomEvent} */ (e).detail;
      this.notice(`${m.fromAlias} to everyone: ${m.text}`);
    });
    this.client.addEventListener('breakouts-ending', (e) => {
      const m = /** @type {CustomEvent} */ (e).detail;
      this.notice(`Breakouts end in ${clock(m.endsAt - Date.now())}. You will return to the main room.`);
    });
    this.model.addEventListener('change', () => this.render());
    this.timer = window.setInterval(() => this.tick(), 1000);
  }

  // ---- media: mesh or SFU ------------------------------------------------------------------

  /** The media mode the room is in: its state's `media`, else SFU once the server started an SFU session. */
  mediaMode() {
    /** @type {string | undefined} */
    const media = /** @type {any} */ (this.model.state)?.media;
    return media === 'sfu' || (media === undefined && this.sfuSeen) ? 'sfu' : 'mesh';
  }

  /** Switches between the mesh and the SFU when the room's media mode changes. */
  updateMediaMode() {
    if (this.screen === 'over') return;
    const mode = this.mediaMode();
    if (mode === 'sfu' && !this.sfu) {
      this.closeMesh();
      this.startSfu();
    } else if (mode === 'mesh' && !this.mesh) {
      this.closeSfu();
      this.startMesh();
    }
  }

  /** Where the browser tests reach the session. */
  expose() {
    /** @type {any} */ (window).hearth = {
      client: this.client, model: this.model, mesh: this.mesh, sfu: this.sfu, localStream: this.stream, app: this,
    };
  }

  /** Remote media of a member arrived or changed (mesh or SFU): its tile shows it. */
  /** @param {Event} e */
  onTrack(e) {
    const { peer, stream: s } = /** @type {CustomEvent} */ (e).detail;
    this.streams.set(peer, s);
    this.renderTiles();
  }

  /** @param {Event} e */
  onPeerRemoved(e) {
    this.streams.delete(/** @type {CustomEvent} */ (e).detail.peer);
    this.renderTiles();
  }

  startMesh() {
    const mesh = new Mesh(this.client, this.model, { localStream: this.stream });
    mesh.addEventListener('track', (e) => this.onTrack(e));
    mesh.addEventListener('peer-removed', (e) => this.onPeerRemoved(e));
    mesh.addEventListener('peer-state', () => this.renderTiles());
    this.mesh = mesh;
    this.expose();
  }

  closeMesh() {
    if (!this.mesh) return;
    this.mesh.close();
    this.mesh = null;
    this.streams.clear();
    this.expose();
  }

  startSfu() {
    const sfu = new Sfu(this.client, this.model, { localStream: this.stream });
    sfu.addEventListener('track', (e) => this.onTrack(e));
    sfu.addEventListener('peer-removed', (e) => this.onPeerRemoved(e));
    sfu.addEventListener('connection-state', () => this.renderTiles());
    sfu.addEventListener('status', () => {
      this.renderMediaStatus();
      this.renderTiles();
    });
    this.sfu = sfu;
    this.expose();
    this.renderMediaStatus();
  }

  closeSfu() {
    if (!this.sfu) return;
    this.sfu.close();
    this.sfu = null;
    this.streams.clear();
    this.expose();
    this.renderMediaStatus();
  }

  /** The state of the link that carries a member's media, for the tile's badge. */
  /** @param {string} id */
  linkState(id) {
    return this.sfu ? this.sfu.linkState(id) : this.mesh?.peers.get(id)?.connectionState;
  }

  /** A line under the tiles while SFU media is unavailable (chat and controls go on). */
  renderMediaStatus() {
    const el = document.getElementById('media-status');
    if (!el) return;
    const down = this.sfu?.status === 'unavailable';
    const text = down ? 'Video is reconnecting; chat still works.' : '';
    if (el.textContent !== text) {
      el.textContent = text;
      if (text) announce('live-polite', text);
    }
    el.hidden = !down;
  }

  myId() {
    return this.model.you?.id ?? this.client.me?.id ?? '';
  }

  /** @returns {any} my own member view */
  me() {
    return this.model.members.get(this.myId()) ?? this.model.you;
  }

  isStaff() {
    return this.model.isStaff ?? STAFF.has(this.me()?.role ?? this.client.me?.role);
  }

  async start() {
    setConn('Connecting…', 'busy');
    this.render();
    try {
      await this.client.connect();
    } catch (err) {
      if (this.screen !== 'over') {
        this.over(this.closedText ?? (err instanceof Error && err.message ? `We could not connect: ${err.message}` : 'We could not connect.'));
      }
    }
  }

  onJoined() {
    if (this.saved.token) {
      delete this.saved.token;
    }
    this.saved.joined = true;
    store(this.saved);
    this.render();
  }

  /** @param {{state: string, code?: number, reason?: string}} d */
  onState(d) {
    if (d.state === 'joined') {
      const wasBack = ui.conn.dataset.kind === 'warn';
      setConn(wasBack ? 'Connected again' : 'Connected', 'ok');
    } else if (d.state === 'reconnecting') {
      setConn('Connection lost. Reconnecting…', 'warn');
    } else if (d.state === 'connecting') {
      setConn('Connecting…', 'busy');
    } else if (d.state === 'closed') {
      setConn('Disconnected', 'bad');
    }
  }

  /** @param {{code?: number, reason?: string, why?: string}} d */
  onClosed(d) {
    if (this.model.ended || d.code === 4000 || d.why === 'room-ended' || d.why === 'ended') {
      this.over(CLOSE_TEXT[4000]);
      return;
    }
    const text = this.closedText ?? (d.why ? WHY_TEXT[d.why] : undefined)
      ?? (d.code !== undefined ? CLOSE_TEXT[d.code] : undefined)
      ?? 'You were disconnected. Please open your join link again.';
    this.over(text);
  }

  /** @param {string} text */
  over(text) {
    if (this.screen === 'over') return;
    this.screen = 'over';
    clearInterval(this.timer);
    stopMedia(this.stream);
    store(null);
    setConn('Not connected', 'bad');
    ui.where.textContent = '';
    showMessage(text.startsWith('The session has ended') ? 'Session ended' : 'You are not in the session',
      h('p', { id: 'over-text' }, text),
      h('p', {}, 'You can close this page.'));
    announce('live-assertive', text);
  }

  /** @param {string} text */
  notice(text) {
    const list = document.getElementById('notices');
    if (list) {
      const item = h('li', {}, text);
      list.prepend(item);
      while (list.children.length > 5) list.lastElementChild?.remove();
    }
    announce('live-polite', text);
  }

  /** The local tracks follow the toggles (a staff mute turns the toggle off). */
  applyToggles() {
    const mic = this.saved.mic !== false;
    const cam = this.saved.cam !== false;
    this.stream?.getAudioTracks().forEach((t) => { t.enabled = mic; });
    this.stream?.getVideoTracks().forEach((t) => { t.enabled = cam; });
  }

  /** What we tell the room about our media. */
  declared() {
    return {
      audio: this.saved.mic !== false && !!this.stream?.getAudioTracks().length && this.canPublish(),
      video: this.saved.cam !== false && !!this.stream?.getVideoTracks().length && this.canPublish(),
    };
  }

  canPublish() {
    const me = this.me();
    return me?.role !== 'observer' || !!me?.mediaGranted;
  }

  /**
   * Staff turned a medium off: the toggle goes off, and with self-unmute off it stays locked
   * until staff ask us to unmute.
   * @param {'audio' | 'video'} kind
   */
  staffMute(kind) {
    this.staffMuted[kind] = true;
    this.saved[kind === 'audio' ? 'mic' : 'cam'] = false;
    store(this.saved);
    this.applyToggles();
  }

  /** Sends our media flags when they differ from what the room shows. */
  syncMedia() {
    const me = this.me();
    if (!me || this.model.placement !== 'room' || this.client.state !== 'joined') return;
    const want = this.declared();
    if (me.audio === want.audio && me.video === want.video) return;
    if (this.mediaInFlight) return;
    this.mediaInFlight = true;
    this.client.request('media', want).catch((/** @type {any} */ err) => {
      if (err?.code === 'self-unmute-disabled') {
        if (want.audio && !me.audio) this.staffMute('audio');
        if (want.video && !me.video) this.staffMute('video');
        this.notice('Staff muted you. You can turn it back on when they ask you to.');
        this.render();
      }
    }).finally(() => {
      this.mediaInFlight = false;
    });
  }

  /** Staff changed our media (member-updated for our own id): apply it to the local tracks. */
  watchOwnMedia() {
    const me = this.me();
    if (!me || this.model.placement !== 'room') return;
    const last = this.lastSeen;
    this.lastSeen = { audio: !!me.audio, video: !!me.video };
    if (!last || this.mediaInFlight) return;
    const declared = this.declared();
    for (const kind of /** @type {const} */ (['audio', 'video'])) {
      if (last[kind] && !me[kind] && declared[kind]) {
        this.staffMute(kind);
        this.notice(kind === 'audio' ? 'A staff member muted your microphone.' : 'A staff member turned off your camera.');
      }
    }
  }

  /** @param {{audio?: boolean, video?: boolean}} m */
  onUnmuteRequested(m) {
    if (m.audio) this.staffMuted.audio = false;
    if (m.video) this.staffMuted.video = false;
    const what = m.audio && m.video ? 'microphone and camera' : m.audio ? 'microphone' : 'camera';
    this.notice(`The facilitator asks you to turn on your ${what}, when you are ready.`);
    this.render();
  }

  /** May we turn this medium on ourselves? */
  /** @param {'audio' | 'video'} kind */
  locked(kind) {
    return this.staffMuted[kind] && this.model.state?.selfUnmute === false && !this.isStaff();
  }

  /** @param {'audio' | 'video'} kind */
  toggle(kind) {
    const key = kind === 'audio' ? 'mic' : 'cam';
    const on = this.saved[key] !== false;
    if (!on && this.locked(kind)) return;
    if (!on) this.staffMuted[kind] = false;
    this.saved[key] = !on;
    store(this.saved);
    this.applyToggles();
    this.syncMedia();
    this.render();
  }

  tick() {
    this.renderWhere();
    this.panel?.tick();
  }

  render() {
    if (this.screen === 'over') return;
    if (this.model.ended) {
      this.over(CLOSE_TEXT[4000]);
      return;
    }
    const placement = this.model.placement;
    if (placement === 'waiting') {
      if (this.screen === 'room') {
        announce('live-assertive', 'You were moved back to the waiting room.');
      }
      if (this.screen !== 'waiting') this.buildWaiting();
      this.renderWaiting();
    } else if (placement === 'room') {
      if (this.screen !== 'room') {
        const admitted = this.screen === 'waiting';
        this.buildRoom();
        if (admitted) {
          chime();
          announce('live-assertive', 'You are in the session now. Welcome!');
          const banner = document.getElementById('admitted-banner');
          if (banner) banner.hidden = false;
          setTimeout(() => { if (banner) banner.hidden = true; }, 8000);
        }
      }
      this.watchOwnMedia();
      this.syncMedia();
      this.renderRoom();
    } else if (this.screen === 'none') {
      replace(ui.main, h('section', { class: 'card' }, h('h1', {}, 'Connecting…'),
        h('p', {}, 'Please wait a moment.')));
    }
    this.renderWhere();
  }

  renderWhere() {
    if (this.screen !== 'room') {
      ui.where.textContent = this.screen === 'waiting' ? 'Waiting room' : '';
      return;
    }
    const b = this.model.breakout;
    if (b) {
      const left = b.endsAt ? ` · ${clock(b.endsAt - Date.now())} left` : '';
      ui.where.textContent = `${b.kind === 'pull-aside' ? 'Private talk' : 'Breakout'}: ${b.name}${left}`;
    } else {
      ui.where.textContent = 'Main room';
    }
  }

  // ---- waiting room ------------------------------------------------------------------------

  buildWaiting() {
    this.screen = 'waiting';
    this.lastSeen = undefined;
    const self = h('video', { autoplay: true, playsinline: true, class: 'preview mirror', 'aria-label': 'Your camera' });
    self.muted = true;
    self.srcObject = this.stream;
    const location = h('input', { id: 'location', type: 'text', autocomplete: 'off', maxlength: '500' });
    replace(ui.main, h('section', { class: 'card waiting', 'aria-labelledby': 'waiting-title' },
      h('h1', { id: 'waiting-title' }, 'Waiting room'),
      h('p', { id: 'wait-reason', class: 'lead' }),
      h('div', { id: 'consent' }),
      h('form', {
        id: 'location-form', class: 'fields', onsubmit: (/** @type {Event} */ e) => {
          e.preventDefault();
          const text = location.value.trim();
          if (!text) {
            announce('live-assertive', 'Please say where you are right now.');
            return;
          }
          this.client.request('location', { text })
            .then(() => announce('live-polite', 'Thank you. Your location was sent to staff only.'))
            .catch((/** @type {any} */ err) => announce('live-assertive', `Your location was not saved: ${err?.message ?? err}`));
        },
      },
      h('h2', {}, 'Your location'),
      h('p', { class: 'hint', id: 'location-hint' }, 'For your safety, staff need to know where you are during the session. Only staff see this.'),
      h('p', {}, h('label', { for: 'location' }, 'Where are you right now?'), location),
      h('p', { id: 'location-state', class: 'hint' }),
      h('button', { type: 'submit' }, 'Save location')),
      h('h2', {}, 'Messages from staff'),
      h('ul', { id: 'staff-notes', class: 'notes' }),
      h('h2', {}, 'Your camera'),
      self,
      h('div', { class: 'row' },
        h('button', { type: 'button', id: 'help-button', onclick: () => this.askHelp() }, 'I need help'),
        h('button', { type: 'button', onclick: () => this.leave() }, 'Leave')),
      h('p', { id: 'help-state', class: 'hint' })));
    location.setAttribute('aria-describedby', 'location-hint');
  }

  renderWaiting() {
    const status = this.model.waitingStatus;
    if (!status) return;
    const reason = document.getElementById('wait-reason');
    if (reason) {
      let text = WAIT_REASONS[/** @type {keyof typeof WAIT_REASONS} */ (status.reason)] ?? 'Please wait.';
      if (status.reason === 'waiting-for-opening' && status.opensAt) {
        text = `The session opens at ${timeOfDay(status.opensAt)}. You will be let in after that.`;
      }
      if (reason.textContent !== text) {
        reason.textContent = text;
        announce('live-polite', text);
      }
    }
    const consent = document.getElementById('consent');
    if (consent) {
      if (!status.consentVersion) {
        replace(consent);
      } else if (status.consentAcknowledged) {
        replace(consent, h('h2', {}, 'Agreement'),
          h('p', { id: 'consent-done' }, `You agreed to the agreement (version ${status.consentVersion}).`));
      } else if (!consent.querySelector('#consent-agree')) {
        const box = h('input', { type: 'checkbox', id: 'consent-check' });
        const agree = h('button', {
          type: 'button', id: 'consent-agree', class: 'primary', 'data-k': 'consent-agree', onclick: () => {
            if (!box.checked) {
              announce('live-assertive', 'Please tick the box to say you have read the agreement.');
              box.focus();
              return;
            }
            this.client.request('consent', { version: status.consentVersion ?? '' })
              .catch((/** @type {any} */ err) => announce('live-assertive', `Your agreement was not saved: ${err?.message ?? err}`));
          },
        }, 'I agree');
        replace(consent,
          h('h2', {}, 'Agreement'),
          h('p', {}, `Please read this agreement (version ${status.consentVersion}) before the session.`),
          h('div', { class: 'consent-text', tabindex: '0', role: 'document', 'aria-label': 'Agreement text' },
            status.consentText ?? `The agreement version ${status.consentVersion} applies to this session. Ask staff if you would like to read it.`),
          h('p', { class: 'check' }, box, h('label', { for: 'consent-check' }, `I have read the agreement (version ${status.consentVersion}) and I agree to it.`)),
          agree);
      }
    }
    const form = document.getElementById('location-form');
    if (form) form.hidden = !status.locationRequired;
    const locState = document.getElementById('location-state');
    if (locState) locState.textContent = status.locationGiven ? 'Your location was sent to staff.' : '';
    const notes = document.getElementById('staff-notes');
    if (notes) {
      /** @type {Array<{text: string, at: number}>} */
      const list = this.model.waitingMessages ?? [];
      replace(notes, ...(list.length
        ? list.map((n) => h('li', {}, h('span', { class: 'time' }, timeOfDay(n.at)), ' ', n.text))
        : [h('li', { class: 'hint' }, 'None yet.')]));
    }
    this.renderHelpState();
  }

  renderHelpState() {
    const el = document.getElementById('help-state');
    if (el) el.textContent = this.helpPending ? 'Your request for help was sent privately to staff.' : '';
  }

  askHelp() {
    this.client.request('help', {})
      .then(() => {
        this.helpPending = true;
        announce('live-assertive', 'Your request for help was sent privately to staff.');
        this.renderHelpState();
        this.renderControls();
      })
      .catch((/** @type {any} */ err) => announce('live-assertive', `Your request was not sent: ${err?.message ?? err}`));
  }

  leave() {
    this.closedText = CLOSE_TEXT[4001];
    try {
      this.client.leave();
    } finally {
      this.over(CLOSE_TEXT[4001]);
    }
  }

  // ---- room -------------------------------------------------------------------------------

  buildRoom() {
    this.screen = 'room';
    this.tiles.clear();
    this.lastSeen = undefined;
    const staff = this.isStaff();
    const chatText = h('textarea', { id: 'chat-text', rows: '2', maxlength: '2000' });
    chatText.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey) {
        e.preventDefault();
        /** @type {HTMLFormElement | null} */ (chatText.form)?.requestSubmit();
      }
    });
    replace(ui.main,
      h('p', { id: 'admitted-banner', class: 'banner', hidden: true }, 'You are in the session now. Welcome!'),
      h('div', { class: staff ? 'room with-panel' : 'room' },
        h('section', { class: 'stage', 'aria-labelledby': 'tiles-title' },
          h('h1', { id: 'tiles-title', class: 'visually-hidden' }, 'People in the session'),
          h('ul', { id: 'tiles', class: 'tiles' }),
          h('p', { id: 'media-status', class: 'media-status', role: 'status', hidden: true }),
          h('div', { id: 'controls', class: 'controls', role: 'toolbar', 'aria-label': 'Your controls' }),
          h('ul', { id: 'notices', class: 'notices', 'aria-label': 'Notices' })),
        h('section', { class: 'chat', 'aria-labelledby': 'chat-title' },
          h('h2', { id: 'chat-title' }, 'Chat'),
          h('ol', { id: 'chat-log', class: 'chat-log', role: 'log', 'aria-live': 'polite', 'aria-label': 'Chat messages' }),
          h('form', {
            id: 'chat-form', onsubmit: (/** @type {Event} */ e) => {
              e.preventDefault();
              this.sendChat(chatText);
            },
          },
          h('p', {}, h('label', { for: 'chat-to' }, 'To'), h('select', { id: 'chat-to' })),
          h('p', {}, h('label', { for: 'chat-text' }, 'Message'), chatText),
          h('button', { type: 'submit' }, 'Send')),
          h('p', { id: 'chat-off', class: 'hint', hidden: true })),
        staff ? h('aside', { id: 'panel', class: 'panel', 'aria-labelledby': 'panel-title' }) : null));
    const panelEl = document.getElementById('panel');
    this.panel = panelEl ? new Panel(panelEl, this) : null;
  }

  renderRoom() {
    if (this.isStaff() && !document.getElementById('panel')) {
      this.buildRoom();
    } else if (!this.isStaff() && document.getElementById('panel')) {
      this.buildRoom();
    }
    this.renderTiles();
    this.renderMediaStatus();
    this.renderControls();
    this.renderChat();
    this.panel?.render();
  }

  renderTiles() {
    const list = document.getElementById('tiles');
    if (!list || this.screen !== 'room') return;
    const myId = this.myId();
    const spotlight = this.model.state?.spotlight;
    // Staff see everyone wherever they are: the tiles show only those in the same place.
    const here = this.model.breakout?.id ?? null;
    const staff = this.isStaff();
    /** @type {any[]} */
    const members = [...this.model.members.values()]
      .filter((m) => !staff || (m.breakout ?? null) === here).slice(0, 12);
    members.sort((a, b) => (a.id === spotlight ? -1 : b.id === spotlight ? 1 : 0));
    const keep = new Set();
    for (const m of members) {
      keep.add(m.id);
      let tile = this.tiles.get(m.id);
      if (!tile) {
        const video = h('video', { autoplay: true, playsinline: true });
        if (m.id === myId) {
          video.muted = true;
          video.classList.add('mirror');
        }
        tile = h('li', { class: 'tile', 'data-member': m.id }, video, h('div', { class: 'caption' }));
        this.tiles.set(m.id, tile);
      }
      const video = /** @type {HTMLVideoElement} */ (tile.querySelector('video'));
      const stream = m.id === myId ? this.stream : this.streams.get(m.id) ?? null;
      if (video.srcObject !== stream) {
        video.srcObject = stream;
        if (stream) video.play().catch(() => this.offerSound());
      }
      const self = m.id === myId;
      const mic = self ? this.declared().audio : !!m.audio;
      const cam = self ? this.declared().video : !!m.video;
      tile.classList.toggle('spotlight', m.id === spotlight);
      tile.classList.toggle('no-video', !cam);
      tile.dataset.audio = mic ? 'on' : 'off';
      tile.dataset.hand = m.handRaisedAt ? 'up' : 'down';
      const state = self ? null : this.linkState(m.id);
      const caption = /** @type {HTMLElement} */ (tile.querySelector('.caption'));
      replace(caption,
        h('span', { class: 'name' }, self ? `${m.alias} (you)` : m.alias),
        STAFF.has(m.role) ? h('span', { class: 'badge' }, m.role === 'facilitator' ? 'Facilitator' : 'Co-facilitator') : null,
        m.role === 'observer' ? h('span', { class: 'badge' }, 'Observer') : null,
        mic ? null : h('span', { class: 'badge muted' }, 'Muted'),
        m.handRaisedAt ? h('span', { class: 'badge hand' }, 'Hand raised') : null,
        m.id === spotlight ? h('span', { class: 'badge' }, 'Spotlight') : null,
        m.connected === false ? h('span', { class: 'badge warn' }, 'Reconnecting…') : null,
        !self && m.connected !== false && state && state !== 'connected' ? h('span', { class: 'badge' }, state === 'failed' ? 'No video link' : 'Connecting video…') : null);
      tile.setAttribute('aria-label', [
        self ? `${m.alias} (you)` : m.alias,
        mic ? null : 'muted',
        m.handRaisedAt ? 'hand raised' : null,
        m.id === spotlight ? 'in the spotlight' : null,
      ].filter(Boolean).join(', '));
    }
    for (const [id, tile] of this.tiles) {
      if (!keep.has(id)) {
        tile.remove();
        this.tiles.delete(id);
      }
    }
    const ordered = members.map((m) => /** @type {HTMLElement} */ (this.tiles.get(m.id)));
    ordered.forEach((tile, i) => {
      if (list.children[i] !== tile) list.insertBefore(tile, list.children[i] ?? null);
    });
    list.dataset.count = String(ordered.length);
  }

  offerSound() {
    if (document.getElementById('sound-on')) return;
    const button = h('button', {
      type: 'button', id: 'sound-on', class: 'primary', onclick: () => {
        document.querySelectorAll('video').forEach((v) => void v.play().catch(() => undefined));
        button.remove();
      },
    }, 'Turn on sound');
    document.getElementById('controls')?.prepend(button);
  }

  renderControls() {
    const bar = document.getElementById('controls');
    if (!bar) return;
    const me = this.me() ?? {};
    const publish = this.canPublish();
    const staff = this.isStaff();
    /** @param {'audio'|'video'} kind @param {string} onText @param {string} offText */
    const mediaButton = (kind, onText, offText) => {
      const on = this.declared()[kind];
      const hasTrack = kind === 'audio' ? !!this.stream?.getAudioTracks().length : !!this.stream?.getVideoTracks().length;
      const locked = this.locked(kind);
      return h('button', {
        type: 'button', 'data-k': `toggle-${kind}`, class: on ? '' : 'off',
        'aria-pressed': on ? 'false' : 'true',
        disabled: !hasTrack || !publish || (!on && locked),
        title: locked ? 'Staff muted you. You can turn it on when they ask you to.' : undefined,
        onclick: () => this.toggle(kind),
      }, on ? onText : offText);
    };
    const micButton = mediaButton('audio', 'Turn off microphone', 'Turn on microphone');
    micButton.id = 'mic-button';
    const camButton = mediaButton('video', 'Turn off camera', 'Turn on camera');
    camButton.id = 'cam-button';
    const hand = me.handRaisedAt
      ? h('button', { type: 'button', 'data-k': 'hand', onclick: () => this.act(this.client.request('lower-hand', {})) }, 'Lower hand')
      : h('button', { type: 'button', 'data-k': 'hand', onclick: () => this.act(this.client.request('raise-hand', {})) }, 'Raise hand');
    replace(bar,
      document.getElementById('sound-on'),
      micButton, camButton, hand,
      staff ? null : h('button', { type: 'button', 'data-k': 'help', onclick: () => this.askHelp() }, 'I need help'),
      h('button', { type: 'button', class: 'danger', 'data-k': 'leave', onclick: () => this.leave() }, 'Leave'),
      this.locked('audio')
        ? h('p', { class: 'hint', id: 'muted-note' }, 'Staff muted your microphone. You can turn it on when they ask you to.') : null,
      this.helpPending ? h('p', { class: 'hint', id: 'help-state' }, 'Your request for help was sent privately to staff.') : null);
  }

  /** Where chat may go under the room's policy (docs/protocol.md 3.7). */
  chatTargets() {
    const me = this.me() ?? {};
    const staff = this.isStaff();
    /** @type {Array<{value: string, label: string}>} */
    const targets = [];
    const observer = me.role === 'observer';
    const policy = this.model.state?.chatPolicy ?? 'everyone';
    if (staff || (policy === 'everyone' && (!observer || me.chatGranted))) targets.push({ value: 'room', label: 'Everyone' });
    if (staff || policy !== 'off') targets.push({ value: 'staff', label: 'Staff only' });
    for (const m of this.model.members.values()) {
      if (m.id === me.id) continue;
      const toStaff = STAFF.has(m.role);
      const ok = staff || (policy !== 'off' && toStaff)
        || (policy === 'everyone' && !observer && this.model.state?.privateMessages === true);
      if (ok) targets.push({ value: m.id, label: `${m.alias} (private)` });
    }
    return targets;
  }

  renderChat() {
    const log = document.getElementById('chat-log');
    if (!log) return;
    const staff = this.isStaff();
    const names = new Map([...this.model.members.values()].map((m) => [m.id, m.alias]));
    const known = new Set([...log.children].map((li) => /** @type {HTMLElement} */ (li).dataset.id));
    const chat = /** @type {any[]} */ (this.model.chat ?? []);
    const fresh = chat.some((m) => !known.has(m.id)) || chat.length !== log.children.length
      || chat.some((m) => m.deleted && !log.querySelector(`[data-id="${m.id}"].deleted`));
    if (fresh) {
      replace(log, ...chat.map((m) => {
        const to = m.to === 'room' ? '' : m.to === 'staff' ? ' to staff' : ` to ${m.to === this.myId() ? 'you' : names.get(m.to) ?? 'someone'} (private)`;
        return h('li', { 'data-id': m.id, class: m.deleted ? 'deleted' : '' },
          h('span', { class: 'who' }, `${m.fromAlias}${to}`), ' ',
          h('span', { class: 'time' }, timeOfDay(m.at)), ' ',
          h('span', { class: 'text' }, m.deleted ? 'This message was removed by staff.' : m.text),
          staff && !m.deleted ? h('button', {
            type: 'button', class: 'small', 'data-k': `del-${m.id}`, 'aria-label': `Delete message from ${m.fromAlias}`,
            onclick: () => this.act(this.client.request('delete-chat', { message: m.id })),
          }, 'Delete') : null);
      }));
      log.scrollTop = log.scrollHeight;
    }
    const select = /** @type {HTMLSelectElement | null} */ (document.getElementById('chat-to'));
    const form = document.getElementById('chat-form');
    const off = document.getElementById('chat-off');
    if (select && form && off) {
      const targets = this.chatTargets();
      const current = select.value;
      const signature = targets.map((t) => `${t.value}:${t.label}`).join('|');
      if (select.dataset.sig !== signature) {
        replace(select, ...targets.map((t) => h('option', { value: t.value, selected: t.value === current }, t.label)));
        select.dataset.sig = signature;
      }
      form.hidden = targets.length === 0;
      off.hidden = targets.length > 0;
      off.textContent = 'Chat is turned off in this session.';
    }
  }

  /** @param {HTMLTextAreaElement} input */
  sendChat(input) {
    const to = /** @type {HTMLSelectElement} */ (document.getElementById('chat-to')).value;
    const text = input.value.trim();
    if (!text || !to) return;
    this.client.request('chat', { to, text })
      .then(() => { input.value = ''; })
      .catch((/** @type {any} */ err) => announce('live-assertive', `Your message was not sent: ${err?.message ?? err}`));
  }

  /**
   * Runs a command; an error is announced in plain words.
   * @param {Promise<unknown>} p
   */
  act(p) {
    p.catch((/** @type {any} */ err) => {
      const text = `That did not work: ${err?.message ?? err}`;
      this.notice(text);
      announce('live-assertive', text);
    });
  }
}

/** The app's own types for the panel. */
export { Session };

async function main() {
  const config = await loadConfig();
  const saved = readLink();
  if (!saved) {
    showMessage('Open your join link',
      h('p', {}, 'This page needs the join link you were sent by your clinic. Please open that link again.'));
    return;
  }
  const hasSeat = !!sessionStorage.getItem(`hearth:${saved.room}`);
  if (!saved.token && !hasSeat) {
    store(null);
    showMessage('Open your join link',
      h('p', {}, 'Your link has expired or was already used in this tab. Please open the join link from your clinic again.'));
    return;
  }
  /** @type {MediaStream | null} */
  let stream;
  if (saved.joined && hasSeat) {
    // A reload: back into the session at once (the SDK resumes the seat and restores the room).
    stream = await getMedia(saved);
  } else {
    stream = await preJoin(saved);
  }
  const session = new Session(saved, stream, config);
  await session.start();
}

void main().catch((err) => {
  showMessage('Something went wrong', h('p', {}, String(err?.message ?? err)));
});
