// @ts-check
/**
 * The WebRTC mesh: one RTCPeerConnection per other connected member of the roster, negotiated
 * through Hearth's `signal` with MDN's perfect-negotiation pattern. See docs/client.md.
 *
 * - Peers follow the roster: a member who joins (or reconnects) gets a new peer connection, one
 *   who leaves, drops (`connected: false`) or is no longer in the roster after a `moved` loses it.
 * - Polite side: of two members, the one whose id number is higher (`p7` is polite to `p3`).
 * - Signalling is never replayed: after `resumed` (and after a new `welcome`) every peer
 *   connection is closed and made again. A member whose peer sends an offer from a new peer
 *   connection (its DTLS fingerprint changed) makes a new one too.
 * - ICE restart when a connection fails; a video bitrate cap that scales with the group;
 *   audio-only mode; receiver-side enforcement of mutes.
 */

import { HearthError } from './hearth-client.js';

/** @typedef {import('./protocol').MemberId} MemberId */
/** @typedef {import('./protocol').ServerSignal} SignalMessage */
/** @typedef {import('./hearth-client.js').HearthClient} HearthClient */
/** @typedef {import('./room-model.js').RoomModel} RoomModel */

/**
 * @typedef {object} MeshOptions
 * @property {MediaStream | null} [localStream] the camera and microphone to send
 * @property {RTCIceTransportPolicy} [iceTransportPolicy] 'all' (default) or 'relay' (TURN only)
 * @property {(members: number) => number} [videoBitrate] the video cap (bits/s) for a roster of n members (oneself included)
 * @property {boolean} [audioOnly] start in audio-only mode
 */

/**
 * @typedef {object} PeerStats
 * @property {RTCPeerConnectionState} connectionState
 * @property {number} videoFramesDecoded
 * @property {number} videoBytesReceived
 * @property {number} audioBytesReceived
 * @property {number} audioLevel the last inbound audio level (0..1)
 * @property {string | undefined} localCandidateType of the selected candidate pair ('host', 'srflx', 'relay', …)
 * @property {string | undefined} remoteCandidateType
 */

/**
 * The default video cap: 2.5 Mbit/s of upstream shared by the other members, each stream
 * between 150 kbit/s and 1.5 Mbit/s (12 members: 11 streams of 227 kbit/s, 2.5 Mbit/s up).
 * @param {number} members the roster size, oneself included
 */
export function defaultVideoBitrate(members) {
  const others = Math.max(members - 1, 1);
  return Math.min(Math.max(Math.floor(2_500_000 / others), 150_000), 1_500_000);
}

/**
 * The number of a member id (`p12` -> 12).
 * @param {string} id
 */
function idNumber(id) {
  return Number(id.slice(1));
}

/** The DTLS fingerprint of an SDP: it changes only when the sender made a new peer connection.
 * @param {string | undefined} sdp */
function fingerprint(sdp) {
  const match = /^a=fingerprint:(.+)$/m.exec(sdp ?? '');
  return match ? match[1].trim() : null;
}

/** One peer connection and its negotiation state. */
class Peer {
  /**
   * @param {MemberId} id
   * @param {RTCPeerConnection} pc
   * @param {boolean} polite
   */
  constructor(id, pc, polite) {
    this.id = id;
    this.pc = pc;
    this.polite = polite;
    this.makingOffer = false;
    this.ignoreOffer = false;
    /** whether the polite side gave up waiting for the first offer */
    this.waited = false;
    /** @type {any} */
    this.waitTimer = undefined;
    /** the remote media, one stream per peer */
    this.stream = new MediaStream();
  }
}

export class Mesh extends EventTarget {
  /**
   * @param {HearthClient} client
   * @param {RoomModel} model
   * @param {MeshOptions} [options]
   */
  constructor(client, model, options = {}) {
    super();
    this.client = client;
    this.model = model;
    /** @type {MediaStream | null} */
    this.localStream = options.localStream ?? null;
    this.iceTransportPolicy = options.iceTransportPolicy ?? 'all';
    this.videoBitrate = options.videoBitrate ?? defaultVideoBitrate;
    this.audioOnly = options.audioOnly ?? false;
    /** how long the polite side waits for the other's first offer before it offers itself */
    this.firstOfferWaitMs = 3000;
    /** @type {Map<MemberId, RTCPeerConnection>} the peer connections, by member id */
    this.peers = new Map();
    /** @type {Map<MemberId, Peer>} */
    this._peers = new Map();
    /** @type {Map<MemberId, Promise<void>>} per member: signals are handled one after the other */
    this._queues = new Map();
    /** @type {Map<MemberId, Promise<void>>} per member: signals are sent one after the other */
    this._outQueues = new Map();
    /** whether one's own audio was on at the last change (to notice a staff mute) */
    this._ownAudio = false;
    this._closed = false;

    // A new welcome or a resume makes every peer connection again (signalling is never
    // replayed); any other change brings the peers in line with the roster.
    this._onChange = (/** @type {Event} */ event) => {
      const type = /** @type {CustomEvent<{type: string}>} */ (event).detail.type;
      if (type === 'welcome' || type === 'resumed') this.restart();
      else this.sync();
    };
    this._onSignal = (/** @type {Event} */ event) => this._signal(/** @type {CustomEvent<SignalMessage>} */ (event).detail);
    this._onClosed = () => this.close();
    model.addEventListener('change', this._onChange);
    client.addEventListener('signal', this._onSignal);
    client.addEventListener('closed', this._onClosed);
    this.sync();
  }

  /**
   * The members one should be connected to: the connected others of the roster who are in the
   * same place (main room or breakout), while joined and admitted.
   */
  wanted() {
    const me = this.model.me?.id;
    /** @type {Set<MemberId>} */
    const ids = new Set();
    if (this._closed || !me || this.client.state !== 'joined' || this.model.placement !== 'room' || this.model.ended) return ids;
    // Staff see every admitted member, each with the breakout they are in (absent: the main
    // room), but signal only those in the same place (section 10.1); everyone else's roster is
    // their place already.
    const staff = this.model.isStaff;
    const here = this.model.breakout?.id;
    for (const member of this.model.members.values()) {
      if (member.id === me || !member.connected) continue;
      if (staff && member.breakout !== here) continue;
      ids.add(member.id);
    }
    return ids;
  }

  /** Brings the peer connections in line with the roster in one step (after any change). */
  sync() {
    const wanted = this.wanted();
    for (const id of [...this._peers.keys()]) {
      if (!wanted.has(id)) this._removePeer(id);
    }
    for (const id of wanted) {
      if (!this._peers.has(id)) this._addPeer(id);
    }
    this._enforceMutes();
    this._applyBitrate();
  }

  /** Closes every peer connection and makes them again (signalling is never replayed). */
  restart() {
    for (const id of [...this._peers.keys()]) this._removePeer(id);
    this.sync();
  }

  /** Stops: closes every peer connection and stops listening. */
  close() {
    this._closed = true;
    for (const id of [...this._peers.keys()]) this._removePeer(id);
    this.model.removeEventListener('change', this._onChange);
    this.client.removeEventListener('signal', this._onSignal);
    this.client.removeEventListener('closed', this._onClosed);
  }

  /**
   * Sends another stream (another camera, or none) on every peer connection.
   * @param {MediaStream | null} stream
   */
  setLocalStream(stream) {
    this.localStream = stream;
    for (const peer of this._peers.values()) this._attachLocal(peer);
  }

  /**
   * Audio-only mode for a poor link: stops sending video and asks the peers to stop sending theirs.
   * @param {boolean} on
   */
  setAudioOnly(on) {
    this.audioOnly = on;
    for (const peer of this._peers.values()) this._attachLocal(peer);
  }

  /** Inbound statistics per peer (what a test asserts on to prove media flowed).
   * @returns {Promise<Record<MemberId, PeerStats>>} */
  async stats() {
    /** @type {Record<MemberId, PeerStats>} */
    const result = {};
    for (const [id, peer] of this._peers) {
      const report = await peer.pc.getStats();
      /** @type {PeerStats} */
      const s = {
        connectionState: peer.pc.connectionState,
        videoFramesDecoded: 0,
        videoBytesReceived: 0,
        audioBytesReceived: 0,
        audioLevel: 0,
        localCandidateType: undefined,
        remoteCandidateType: undefined,
      };
      /** @type {any} */
      let pair;
      report.forEach((/** @type {any} */ r) => {
        if (r.type === 'inbound-rtp' && r.kind === 'video') {
          s.videoFramesDecoded += r.framesDecoded ?? 0;
          s.videoBytesReceived += r.bytesReceived ?? 0;
        } else if (r.type === 'inbound-rtp' && r.kind === 'audio') {
          s.audioBytesReceived += r.bytesReceived ?? 0;
          s.audioLevel = Math.max(s.audioLevel, r.audioLevel ?? 0);
        } else if (r.type === 'transport' && r.selectedCandidatePairId) {
          pair = report.get(r.selectedCandidatePairId);
        } else if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded' && !pair) {
          pair = r;
        }
      });
      if (pair) {
        s.localCandidateType = report.get(pair.localCandidateId)?.candidateType;
        s.remoteCandidateType = report.get(pair.remoteCandidateId)?.candidateType;
      }
      result[id] = s;
    }
    return result;
  }

  /** The remote stream of a peer (undefined when there is no peer connection to that member).
   * @param {MemberId} id */
  streamOf(id) {
    return this._peers.get(id)?.stream;
  }

  // ---- peers ----

  /** @param {MemberId} id */
  _addPeer(id) {
    const me = /** @type {MemberId} */ (this.model.me?.id);
    const pc = new RTCPeerConnection({
      iceServers: this.client.iceServers,
      iceTransportPolicy: this.iceTransportPolicy,
    });
    const peer = new Peer(id, pc, idNumber(me) > idNumber(id));
    this._peers.set(id, peer);
    this.peers.set(id, pc);
    const current = () => this._peers.get(id) === peer;

    pc.onicecandidate = ({ candidate }) => {
      if (current() && candidate) this._sendSignal(peer, 'ice', candidate.toJSON());
    };
    pc.onnegotiationneeded = () => this._offer(peer);
    if (peer.polite) {
      // The polite side lets the other make the first offer (no glare, no rollback: Chromium
      // may then send no ICE candidates for the answer). If none comes (the other side did not
      // see us drop and come back), it offers itself; a glare is then resolved as usual.
      peer.waitTimer = setTimeout(() => {
        peer.waitTimer = undefined;
        if (current() && !pc.remoteDescription) {
          peer.waited = true;
          this._offer(peer);
        }
      }, this.firstOfferWaitMs);
    }
    pc.ontrack = ({ track }) => {
      if (!current()) return;
      for (const old of peer.stream.getTracks()) {
        if (old.kind === track.kind && old !== track) peer.stream.removeTrack(old);
      }
      peer.stream.addTrack(track);
      this._enforceMutes();
      this.dispatchEvent(new CustomEvent('track', { detail: { peer: id, stream: peer.stream, track } }));
    };
    pc.onconnectionstatechange = () => {
      if (!current()) return;
      const state = pc.connectionState;
      if (state === 'failed') pc.restartIce();
      if (state === 'connected') this._applyBitrate();
      this.dispatchEvent(new CustomEvent('peer-state', { detail: { peer: id, state } }));
    };
    pc.onsignalingstatechange = () => {
      if (current() && pc.signalingState === 'stable') this._applyBitrate();
    };
    this._attachLocal(peer);
    this.dispatchEvent(new CustomEvent('peer-added', { detail: { peer: id } }));
    return peer;
  }

  /**
   * Makes and sends an offer, in the member's queue (an offer made while a remote offer is being
   * applied would otherwise become an answer: setLocalDescription follows the signalling state).
   * @param {Peer} peer
   */
  _offer(peer) {
    this._enqueue(peer.id, async () => {
      const pc = peer.pc;
      if (this._peers.get(peer.id) !== peer || pc.signalingState !== 'stable') return; // fires again once stable
      if (peer.polite && !pc.remoteDescription && !peer.waited) return; // the first offer is the other's
      try {
        peer.makingOffer = true;
        await pc.setLocalDescription();
        this._sendDescription(peer);
      } finally {
        peer.makingOffer = false;
      }
    });
  }

  /** @param {MemberId} id */
  _removePeer(id) {
    const peer = this._peers.get(id);
    if (!peer) return;
    clearTimeout(peer.waitTimer);
    this._peers.delete(id);
    this.peers.delete(id);
    peer.pc.onicecandidate = peer.pc.onnegotiationneeded = peer.pc.ontrack = null;
    peer.pc.onconnectionstatechange = peer.pc.onsignalingstatechange = null;
    peer.pc.close();
    this.dispatchEvent(new CustomEvent('peer-removed', { detail: { peer: id } }));
  }

  /**
   * Puts the local tracks on a peer connection: replaces the track of an existing sender (no
   * renegotiation), adds a track otherwise (renegotiation). Without any local media the peer still
   * asks to receive audio and video, so that it makes an offer and the other side answers with media.
   * @param {Peer} peer
   */
  _attachLocal(peer) {
    const pc = peer.pc;
    for (const kind of /** @type {const} */ (['audio', 'video'])) {
      const track = this.localStream?.getTracks().find((t) => t.kind === kind) ?? null;
      const send = kind === 'video' && this.audioOnly ? null : track;
      const ofKind = pc.getTransceivers().filter((t) => t.receiver.track.kind === kind && t.currentDirection !== 'stopped');
      const transceiver = ofKind.find((t) => t.sender.track) ?? ofKind[0];
      if (!transceiver) {
        if (send && this.localStream) pc.addTrack(send, this.localStream);
        else pc.addTransceiver(kind, { direction: kind === 'video' && this.audioOnly ? 'inactive' : 'recvonly' });
        continue;
      }
      if (transceiver.sender.track !== send) transceiver.sender.replaceTrack(send).catch(() => {});
      if (send && this.localStream) transceiver.sender.setStreams?.(this.localStream);
      /** @type {RTCRtpTransceiverDirection} */
      const direction = kind === 'video' && this.audioOnly ? 'inactive' : send ? 'sendrecv' : 'recvonly';
      if (transceiver.direction !== direction) transceiver.direction = direction;
    }
  }

  // ---- signalling (perfect negotiation) ----

  /** @param {SignalMessage} message */
  _signal(message) {
    this._enqueue(message.from, () => this._handleSignal(message));
  }

  /**
   * Runs `task` after everything queued for that member (signals in, offers out), so that ICE
   * candidates wait for their description and descriptions never interleave.
   * @param {MemberId} id
   * @param {() => Promise<void>} task
   */
  _enqueue(id, task) {
    const previous = this._queues.get(id) ?? Promise.resolve();
    const next = previous.then(task).catch((error) => {
      console.warn('hearth mesh: negotiation failed', id, error);
    });
    this._queues.set(id, next);
  }

  /**
   * Sends one signal to a peer, in order after the previous ones: each waits for its `ack`, and
   * one refused with `rate-limited` (the server's per-pair signalling budget, or a peer that reads
   * slowly) is sent again after a pause, so an offer never arrives after its ICE candidates and
   * nothing is lost. Any other refusal (the peer left or dropped, or we did) ends the attempt: the
   * roster change or the resume that follows makes the peer connection again.
   * @param {Peer} peer
   * @param {import('./protocol').SignalKind} kind
   * @param {unknown} payload
   */
  _sendSignal(peer, kind, payload) {
    const previous = this._outQueues.get(peer.id) ?? Promise.resolve();
    const next = previous.then(async () => {
      for (let attempt = 1; attempt <= 20; attempt++) {
        if (this._peers.get(peer.id) !== peer) return; // that peer connection is gone
        try {
          await this.client.request('signal', { to: peer.id, kind, payload });
          return;
        } catch (error) {
          if (!(error instanceof HearthError) || error.code !== 'rate-limited') return;
          await new Promise((resolve) => setTimeout(resolve, 200 * Math.min(attempt, 5)));
        }
      }
    });
    this._outQueues.set(peer.id, next);
  }

  /**
   * Sends the local description; its kind is its type (an offer or an answer).
   * @param {Peer} peer
   */
  _sendDescription(peer) {
    const description = peer.pc.localDescription;
    if (this._peers.get(peer.id) !== peer || !description) return;
    const kind = description.type === 'offer' ? 'offer' : 'answer';
    this._sendSignal(peer, kind, description.toJSON());
  }

  /** @param {SignalMessage} message */
  async _handleSignal(message) {
    const id = message.from;
    let peer = this._peers.get(id);
    if (!peer) {
      if (!this.wanted().has(id)) return; // not (or no longer) in the roster
      peer = this._addPeer(id);
    }
    /** @type {any} */
    const payload = message.payload;
    if (payload === null || typeof payload !== 'object') return;
    if (message.kind === 'ice') {
      try {
        await peer.pc.addIceCandidate(payload);
      } catch (error) {
        if (!peer.ignoreOffer) throw error;
      }
      return;
    }
    /** @type {RTCSessionDescriptionInit} */
    const description = { type: payload.type, sdp: payload.sdp };
    if (description.type !== 'offer' && description.type !== 'answer') return;
    const remote = peer.pc.remoteDescription;
    if (description.type === 'offer' && remote && fingerprint(remote.sdp) !== fingerprint(description.sdp)) {
      // The other side made a new peer connection (it reconnected): make ours again too.
      this._removePeer(id);
      peer = this._addPeer(id);
    }
    const pc = peer.pc;
    const collision = description.type === 'offer' && (peer.makingOffer || pc.signalingState !== 'stable');
    peer.ignoreOffer = !peer.polite && collision;
    if (peer.ignoreOffer) return;
    if (description.type === 'answer' && pc.signalingState !== 'have-local-offer') return; // a stale answer
    await pc.setRemoteDescription(description);
    if (description.type === 'offer') {
      await pc.setLocalDescription();
      this._sendDescription(peer);
    }
  }

  // ---- policies ----

  /**
   * Receiver-side mute: the inbound audio of a member whose view says `audio: false` (muted,
   * by themselves or by staff) is disabled, whatever their client sends. And one's own
   * microphone track is turned off when one's own view goes from audio on to off (a staff mute).
   */
  _enforceMutes() {
    for (const [id, peer] of this._peers) {
      const member = this.model.members.get(id);
      const audible = member?.audio === true;
      for (const receiver of peer.pc.getReceivers()) {
        if (receiver.track.kind === 'audio' && receiver.track.enabled !== audible) receiver.track.enabled = audible;
      }
    }
    const ownAudio = this.model.you?.audio === true;
    if (this._ownAudio && !ownAudio) {
      for (const track of this.localStream?.getAudioTracks() ?? []) track.enabled = false;
    }
    this._ownAudio = ownAudio;
  }

  /** Caps every video sender at videoBitrate(roster size). */
  _applyBitrate() {
    const cap = this.videoBitrate(this._peers.size + 1);
    for (const peer of this._peers.values()) {
      if (peer.pc.signalingState !== 'stable') continue;
      for (const sender of peer.pc.getSenders()) {
        if (sender.track?.kind !== 'video') continue;
        const params = sender.getParameters();
        if (!params.encodings || params.encodings.length === 0) continue; // not negotiated yet
        if (params.encodings.every((e) => e.maxBitrate === cap)) continue;
        for (const encoding of params.encodings) encoding.maxBitrate = cap;
        // A concurrent change of the same sender may refuse this one: the next sync applies it.
        sender.setParameters(params).catch(() => {});
      }
    }
  }
}
