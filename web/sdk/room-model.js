// @ts-check
/**
 * The room as this client knows it, kept from the server's events. Read its fields; listen to
 * 'change' (detail {type}: the message type that changed it). It never sends anything.
 */

/** @typedef {import('./protocol').Server} ServerMessage */
/** @typedef {import('./protocol').MemberView} MemberView */
/** @typedef {import('./protocol').MemberId} MemberId */
/** @typedef {import('./protocol').SelfView} SelfView */
/** @typedef {import('./protocol').RoomState} RoomState */
/** @typedef {import('./protocol').RoomSnapshot} RoomSnapshot */
/** @typedef {import('./protocol').ChatMessage} ChatMessage */
/** @typedef {import('./protocol').WaitingView} WaitingView */
/** @typedef {import('./protocol').WaitingStatus} WaitingStatus */
/** @typedef {import('./protocol').BreakoutRef} BreakoutRef */
/** @typedef {import('./protocol').BreakoutsView} BreakoutsView */
/** @typedef {import('./protocol').ServerBreakoutBroadcast} Broadcast */
/** @typedef {import('./protocol').ServerWaitingRoomMessage} WaitingRoomMessage */
/** @typedef {import('./hearth-client.js').HearthClient} HearthClient */

const STAFF = new Set(['facilitator', 'cofacilitator']);

/**
 * The number of a member id (`p12` -> 12), for ordering.
 * @param {string} id
 */
export function memberNumber(id) {
  return Number(id.slice(1));
}

export class RoomModel extends EventTarget {
  /** @param {HearthClient} client */
  constructor(client) {
    super();
    this.client = client;
    /** @type {SelfView | null} who this connection is (welcome/resumed `you`) */
    this.me = null;
    /** @type {MemberView | null} one's own full member view while admitted */
    this.you = null;
    /** @type {'waiting' | 'room' | null} */
    this.placement = null;
    /** @type {WaitingStatus | null} one's own status while waiting */
    this.waitingStatus = null;
    /** @type {WaitingRoomMessage[]} staff notes received while waiting */
    this.waitingMessages = [];
    /** @type {Map<MemberId, MemberView>} the roster: the admitted members one sees (oneself included) */
    this.members = new Map();
    /** @type {RoomState | null} */
    this.state = null;
    /** @type {ChatMessage[]} oldest first */
    this.chat = [];
    /** @type {Map<MemberId, WaitingView>} staff: the waiting room */
    this.waiting = new Map();
    /** @type {Map<MemberId, number>} staff: open help requests (member -> when asked) */
    this.help = new Map();
    /** @type {BreakoutRef | null} the breakout one is in (null: the main room) */
    this.breakout = null;
    /** @type {BreakoutsView | null} staff: the breakouts plan and the open ones */
    this.breakouts = null;
    /** @type {number | null} when the planned breakouts return (after breakouts-ending) */
    this.breakoutsEndingAt = null;
    /** @type {Broadcast[]} staff broadcasts to every breakout */
    this.broadcasts = [];
    /** whether the session ended */
    this.ended = false;
    client.addEventListener('message', (event) => {
      const message = /** @type {CustomEvent<ServerMessage>} */ (event).detail;
      if (this.apply(message)) this.dispatchEvent(new CustomEvent('change', { detail: { type: message.type } }));
    });
    this._restore();
    // A reload resumes the seat, but `resumed` carries the room only after a gap: the room as it
    // stood is saved when the page goes away, and the replay brings it up to date.
    if (client.storage && typeof globalThis.addEventListener === 'function') {
      globalThis.addEventListener('pagehide', () => this.save());
    }
  }

  /** Where the model is saved: beside the client's seat (cleared with it). */
  get storageKey() {
    return `${this.client.storageKey}:model`;
  }

  /**
   * Saves the room in the client's storage, with the seq it is up to, so that a new client and
   * model (a reloaded page) resume from there. Done by itself on 'pagehide' in a browser.
   */
  save() {
    const storage = this.client.storage;
    if (!storage || !this.client.hasSeat || this.ended) return;
    const saved = {
      lastSeq: this.client.lastSeq,
      me: this.me,
      you: this.you,
      placement: this.placement,
      waitingStatus: this.waitingStatus,
      waitingMessages: this.waitingMessages,
      members: [...this.members.values()],
      state: this.state,
      chat: this.chat,
      waiting: [...this.waiting.values()],
      help: [...this.help],
      breakout: this.breakout,
      breakouts: this.breakouts,
      breakoutsEndingAt: this.breakoutsEndingAt,
      broadcasts: this.broadcasts,
    };
    try {
      storage.setItem(this.storageKey, JSON.stringify(saved));
    } catch {
      // storage full: the resume replays from the start instead
    }
  }

  /**
   * Before the client connects: takes the saved room back and has the client resume from the seq
   * it was saved at. Without a saved room, a stored seat resumes from 0, so the replay (or, past
   * the room's replay window, the snapshot of a `gap`) rebuilds the room.
   */
  _restore() {
    const storage = this.client.storage;
    if (!storage || !this.client.hasSeat || this.client.state !== 'idle') return;
    let saved = null;
    try {
      saved = JSON.parse(storage.getItem(this.storageKey) ?? 'null');
    } catch {
      saved = null;
    }
    if (!saved || typeof saved.lastSeq !== 'number' || saved.lastSeq > this.client.lastSeq) {
      this.client.lastSeq = 0;
      return;
    }
    this.me = saved.me;
    this.you = saved.you;
    this.placement = saved.placement;
    this.waitingStatus = saved.waitingStatus;
    this.waitingMessages = saved.waitingMessages ?? [];
    this.members = new Map((saved.members ?? []).map((/** @type {MemberView} */ m) => [m.id, m]));
    this.state = saved.state;
    this.chat = saved.chat ?? [];
    this.waiting = new Map((saved.waiting ?? []).map((/** @type {WaitingView} */ w) => [w.id, w]));
    this.help = new Map(saved.help ?? []);
    this.breakout = saved.breakout ?? null;
    this.breakouts = saved.breakouts ?? null;
    this.breakoutsEndingAt = saved.breakoutsEndingAt ?? null;
    this.broadcasts = saved.broadcasts ?? [];
    this.client.lastSeq = saved.lastSeq;
  }

  /** Whether this member is staff (facilitator or co-facilitator). */
  get isStaff() {
    const role = this.you?.role ?? this.me?.role;
    return role !== undefined && STAFF.has(role);
  }

  /**
   * The members with a hand up, in the order the hands went up.
   * @returns {MemberView[]}
   */
  hands() {
    return [...this.members.values()]
      .filter((m) => m.handRaisedAt !== undefined)
      .sort((a, b) => /** @type {number} */ (a.handRaisedAt) - /** @type {number} */ (b.handRaisedAt) || memberNumber(a.id) - memberNumber(b.id));
  }

  /**
   * The other members of the roster.
   * @returns {MemberView[]}
   */
  others() {
    return [...this.members.values()].filter((m) => m.id !== this.me?.id);
  }

  /**
   * Applies one server message. Returns whether the model changed.
   * @param {ServerMessage} m
   */
  apply(m) {
    switch (m.type) {
      case 'welcome':
      case 'resumed':
        this.me = m.you;
        this.placement = m.you.placement;
        if (m.room) this._snapshot(m.room);
        if (m.waiting) this._waiting(m.waiting);
        return true;
      case 'admitted':
      case 'snapshot':
        this.placement = 'room';
        this._snapshot(m.room);
        return true;
      case 'moved':
        this._snapshot(m.room);
        this.breakout = m.breakout;
        return true;
      case 'waiting':
        this._waiting(m.status);
        return true;
      case 'waiting-room-message':
        this.waitingMessages.push(m);
        return true;
      case 'member-joined':
      case 'member-updated':
        this.members.set(m.member.id, m.member);
        if (this.me && m.member.id === this.me.id) {
          this.you = this._ownView(m.member);
          this.me = { ...this.me, role: m.member.role };
        }
        return true;
      case 'member-left':
        this.members.delete(m.member);
        return true;
      case 'waiting-updated':
        this.waiting.set(m.member.id, m.member);
        return true;
      case 'waiting-left':
        this.waiting.delete(m.member);
        return true;
      case 'room-updated':
        this.state = m.state;
        return true;
      case 'chat': {
        const i = this.chat.findIndex((c) => c.id === m.message.id);
        if (i >= 0) this.chat[i] = m.message;
        else this.chat.push(m.message);
        return true;
      }
      case 'chat-deleted': {
        const i = this.chat.findIndex((c) => c.id === m.message);
        if (i < 0) return false;
        const { text: _dropped, ...rest } = this.chat[i];
        this.chat[i] = { ...rest, deleted: true };
        return true;
      }
      case 'help-requested':
        this.help.set(m.member, m.at);
        return true;
      case 'help-acknowledged':
        this.help.delete(m.member);
        return true;
      case 'breakouts':
        this.breakouts = m.breakouts.plan.length || m.breakouts.open.length ? m.breakouts : null;
        if (!m.breakouts.open.length) this.breakoutsEndingAt = null;
        return true;
      case 'breakouts-ending':
        this.breakoutsEndingAt = m.endsAt;
        return true;
      case 'breakout-broadcast':
        this.broadcasts.push(m);
        return true;
      case 'ended':
        this.ended = true;
        return true;
      default:
        return false;
    }
  }

  /**
   * One's own view from a member view of oneself: the fields only oneself and staff see
   * (user id, location, consent version, breakout) are kept when the view lacks them.
   * @param {MemberView} view
   * @returns {MemberView}
   */
  _ownView(view) {
    const own = { ...view };
    const old = this.you;
    if (old) {
      if (own.userId === undefined && old.userId !== undefined) own.userId = old.userId;
      if (own.location === undefined && old.location !== undefined) own.location = old.location;
      if (own.consentVersion === undefined && old.consentVersion !== undefined) own.consentVersion = old.consentVersion;
    }
    if (own.breakout === undefined && this.breakout) own.breakout = this.breakout.id;
    return own;
  }

  /** @param {RoomSnapshot} room */
  _snapshot(room) {
    this.placement = 'room';
    this.you = room.you;
    if (this.me) this.me = { ...this.me, role: room.you.role, placement: 'room' };
    this.waitingStatus = null;
    this.state = room.state;
    this.members = new Map(room.members.map((m) => [m.id, m]));
    this.chat = room.chat.slice();
    this.waiting = new Map((room.waiting ?? []).map((w) => [w.id, w]));
    this.help = new Map((room.help ?? []).map((h) => [h.member, h.at]));
    this.breakout = room.breakout ?? null;
    this.breakouts = room.breakouts ?? null;
    if (!this.breakout && !this.breakouts?.open.length) this.breakoutsEndingAt = null;
  }

  /** @param {WaitingStatus} status */
  _waiting(status) {
    this.placement = 'waiting';
    if (this.me) this.me = { ...this.me, placement: 'waiting' };
    this.waitingStatus = status;
    this.you = null;
    this.members = new Map();
    this.chat = [];
    this.waiting = new Map();
    this.help = new Map();
    this.breakout = null;
    this.breakouts = null;
  }
}
