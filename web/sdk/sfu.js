// @ts-check
/**
 * SFU media (issue 18): instead of one peer connection per member (the mesh), two peer connections
 * to the room's media server (Janus, which hearthd drives): one that publishes one's own camera and
 * microphone, one that receives everyone else's streams. Hearth's server does all the talking to
 * the media server; this client only exchanges SDP with hearthd (`sfu-*` messages, docs/protocol.md).
 * See docs/client.md.
 *
 * - `sfu-session` starts a media session: every SFU peer connection is closed; with `publish`, a
 *   publishing connection (audio transceiver first, then video, both sendonly, from the local
 *   stream) makes an offer, sent with `sfu-publish`; `sfu-answer` completes it.
 * - `sfu-offer` (the first of a session creates the subscribing connection) is answered with
 *   `sfu-subscribe`; its `streams` say which member each transceiver mid carries. The tracks are
 *   grouped into one MediaStream per member ('track' events keyed by member id, as the mesh does).
 * - Local ICE candidates are trickled with `sfu-candidate`, after the description they belong to.
 * - `sfu-closed`: every SFU connection is closed; status 'unavailable' until the next `sfu-session`.
 * - Messages of an older session are ignored.
 *
 * None of these messages carries `seq` or is acked: they are sent without a `rid`, and an error
 * (`sfu-stale`, `sfu-unavailable`, `forbidden`, `invalid-argument`) arrives as an `error` event.
 */

/** @typedef {import('./protocol').MemberId} MemberId */
/** @typedef {import('./protocol').IceServer} IceServer */
/** @typedef {import('./hearth-client.js').HearthClient} HearthClient */
/** @typedef {import('./room-model.js').RoomModel} RoomModel */

/**
 * The SFU messages (docs/SFU contract), typed here until the generated protocol.d.ts has them.
 * @typedef {{type: 'sfu-session', session: number, publish: boolean}} SfuSession
 * @typedef {{type: 'sfu-answer', session: number, sdp: string}} SfuAnswer
 * @typedef {{mid: string, member: MemberId, kind: 'audio' | 'video'}} SfuStream
 * @typedef {{type: 'sfu-offer', session: number, sdp: string, streams: SfuStream[]}} SfuOffer
 * @typedef {{type: 'sfu-closed', reason: string}} SfuClosed
 * @typedef {SfuSession | SfuAnswer | SfuOffer | SfuClosed} SfuServerMessage
 */

/**
 * What the SFU side is doing (`sfu.status`, 'status' events):
 * - 'idle': no media session (not admitted, waiting, or none offered yet)
 * - 'connecting': a session started; not every connection is up yet
 * - 'connected': the connections of the session are up
 * - 'unavailable': the server said the media server is unreachable (`sfu-closed`) or a publish was refused; chat goes on
 * - 'closed': close() was called or the client stopped
 * @typedef {'idle' | 'connecting' | 'connected' | 'unavailable' | 'closed'} SfuStatus
 */

/**
 * @typedef {object} SfuOptions
 * @property {MediaStream | null} [localStream] the camera and microphone to publish
 * @property {IceServer[]} [iceServers] default: the client's (from the last welcome/resumed)
 * @property {RTCConfiguration} [rtcConfig] extra RTCPeerConnection configuration (iceServers and iceTransportPolicy above win)
 * @property {RTCIceTransportPolicy} [iceTransportPolicy] 'all' (default) or 'relay'
 * @property {number} [maxVideoBitrate] the cap of the one published video stream, bits/s (default 1_000_000)
 */

/**
 * @typedef {object} SfuMemberStats inbound media of one member, summed over its streams
 * @property {number} videoFramesDecoded
 * @property {number} videoBytesReceived
 * @property {number} audioBytesReceived
 * @property {number} audioPacketsReceived
 * @property {number} audioLevel the last inbound audio level (0..1)
 * @property {number} totalAudioEnergy
 */

/**
 * @typedef {object} SfuStats
 * @property {SfuStatus} status
 * @property {number | null} session
 * @property {RTCPeerConnectionState | null} publishState
 * @property {RTCPeerConnectionState | null} subscribeState
 * @property {{kind: string, mid: string | undefined, bytesSent: number, packetsSent: number, framesEncoded: number}[]} outbound every outbound-rtp of the publishing connection
 * @property {{kind: string, mid: string | undefined, member: MemberId | undefined, bytesReceived: number, packetsReceived: number, framesDecoded: number, audioLevel: number, totalAudioEnergy: number}[]} inbound every inbound-rtp of the subscribing connection
 * @property {Record<MemberId, SfuMemberStats>} members inbound media per member
 */

/** One SFU peer connection and its trickle state. */
class Leg {
  /**
   * @param {'publish' | 'subscribe'} name
   * @param {RTCPeerConnection} pc
   */
  constructor(name, pc) {
    this.name = name;
    this.pc = pc;
    /** whether its description went out (candidates wait for it) */
    this.described = false;
    /** @type {(RTCIceCandidateInit | null)[]} candidates found before that */
    this.pending = [];
  }
}

export class Sfu extends EventTarget {
  /**
   * @param {HearthClient} client
   * @param {RoomModel} model
   * @param {SfuOptions} [options]
   */
  constructor(client, model, options = {}) {
    super();
    this.client = client;
    this.model = model;
    /** @type {MediaStream | null} */
    this.localStream = options.localStream ?? null;
    /** @type {IceServer[] | undefined} */
    this.iceServers = options.iceServers;
    this.rtcConfig = options.rtcConfig ?? {};
    this.iceTransportPolicy = options.iceTransportPolicy ?? this.rtcConfig.iceTransportPolicy ?? 'all';
    this.maxVideoBitrate = options.maxVideoBitrate ?? 1_000_000;
    /** @type {SfuStatus} */
    this.status = 'idle';
    /** @type {string | null} why the status is what it is (the `sfu-closed` reason, an error code) */
    this.reason = null;
    /** @type {number | null} the current media session */
    this.session = null;
    /** whether this session publishes */
    this.publishing = false;
    /** @type {RTCPeerConnection | null} the publishing connection of the current session */
    this.publishPc = null;
    /** @type {RTCPeerConnection | null} the subscribing connection of the current session */
    this.subscribePc = null;
    /** @type {Map<MemberId, MediaStream>} the remote media, one stream per member */
    this.streams = new Map();
    /** @type {Map<string, SfuStream>} the streams of the last applied offer, by mid */
    this.mids = new Map();
    /** @type {Leg | null} */ this._publish = null;
    /** @type {Leg | null} */ this._subscribe = null;
    /** @type {Promise<void>} negotiation steps run one after the other */
    this._queue = Promise.resolve();
    /** whether one's own audio was on at the last change (to notice a staff mute) */
    this._ownAudio = false;
    this._closed = false;

    this._onMessage = (/** @type {Event} */ event) => {
      const message = /** @type {CustomEvent<{type: string}>} */ (event).detail;
      if (message.type.startsWith('sfu-')) this.handle(/** @type {SfuServerMessage} */ (message));
      else if (message.type === 'error') this._onError(/** @type {any} */ (message));
    };
    this._onChange = () => this._sync();
    this._onClosed = () => this.close();
    client.addEventListener('message', this._onMessage);
    model.addEventListener('change', this._onChange);
    client.addEventListener('closed', this._onClosed);
  }

  /**
   * Handles one `sfu-*` server message (the Sfu listens to the client for them itself; an app that
   * creates the Sfu upon a message, e.g. the first `sfu-session`, hands that one over here).
   * @param {SfuServerMessage} message
   */
  handle(message) {
    if (this._closed) return;
    switch (message.type) {
      case 'sfu-session':
        this._startSession(message);
        break;
      case 'sfu-answer':
        if (message.session === this.session) this._enqueue(() => this._onAnswer(message));
        break;
      case 'sfu-offer':
        if (message.session === this.session) this._enqueue(() => this._onOffer(message));
        break;
      case 'sfu-closed':
        this._endSession();
        this._setStatus(message.reason === 'unavailable' ? 'unavailable' : 'idle', message.reason);
        break;
    }
  }

  /** Stops: closes the SFU connections and stops listening. */
  close() {
    if (this._closed) return;
    this._endSession();
    this._closed = true;
    this.client.removeEventListener('message', this._onMessage);
    this.model.removeEventListener('change', this._onChange);
    this.client.removeEventListener('closed', this._onClosed);
    this._setStatus('closed', 'closed');
  }

  /**
   * Publishes another stream (another camera, or none) on the current publishing connection
   * (replaceTrack: no renegotiation); a kind the connection does not carry waits for the next session.
   * @param {MediaStream | null} stream
   */
  setLocalStream(stream) {
    this.localStream = stream;
    const pc = this.publishPc;
    if (!pc) return;
    for (const transceiver of pc.getTransceivers()) {
      const kind = transceiver.receiver.track.kind;
      const track = stream?.getTracks().find((t) => t.kind === kind) ?? null;
      if (transceiver.sender.track !== track) transceiver.sender.replaceTrack(track).catch(() => {});
    }
  }

  /** The remote stream of a member (undefined when nothing of theirs is received).
   * @param {MemberId} id */
  streamOf(id) {
    return this.streams.get(id);
  }

  /**
   * The state of the link that carries a member's media: the subscribing connection's state while
   * some stream of theirs is in it, else undefined.
   * @param {MemberId} id
   * @returns {RTCPeerConnectionState | undefined}
   */
  linkState(id) {
    if (!this.subscribePc || !this.streams.has(id)) return undefined;
    return this.subscribePc.connectionState;
  }

  /** Statistics of both connections (what a test asserts on).
   * @returns {Promise<SfuStats>} */
  async stats() {
    /** @type {SfuStats} */
    const result = {
      status: this.status,
      session: this.session,
      publishState: this.publishPc?.connectionState ?? null,
      subscribeState: this.subscribePc?.connectionState ?? null,
      outbound: [],
      inbound: [],
      members: {},
    };
    if (this.publishPc) {
      const report = await this.publishPc.getStats();
      report.forEach((/** @type {any} */ r) => {
        if (r.type !== 'outbound-rtp') return;
        result.outbound.push({
          kind: r.kind, mid: r.mid, bytesSent: r.bytesSent ?? 0, packetsSent: r.packetsSent ?? 0,
          framesEncoded: r.framesEncoded ?? 0,
        });
      });
    }
    const pc = this.subscribePc;
    if (pc) {
      /** @type {Map<string, string | null>} receiver track id -> mid */
      const midOfTrack = new Map(pc.getTransceivers().map((t) => [t.receiver.track.id, t.mid]));
      const report = await pc.getStats();
      report.forEach((/** @type {any} */ r) => {
        if (r.type !== 'inbound-rtp') return;
        const mid = r.mid ?? midOfTrack.get(r.trackIdentifier) ?? undefined;
        const member = mid !== undefined ? this.mids.get(mid)?.member : undefined;
        const entry = {
          kind: r.kind, mid, member, bytesReceived: r.bytesReceived ?? 0, packetsReceived: r.packetsReceived ?? 0,
          framesDecoded: r.framesDecoded ?? 0, audioLevel: r.audioLevel ?? 0, totalAudioEnergy: r.totalAudioEnergy ?? 0,
        };
        result.inbound.push(entry);
        if (!member) return;
        const s = (result.members[member] ??= {
          videoFramesDecoded: 0, videoBytesReceived: 0, audioBytesReceived: 0, audioPacketsReceived: 0,
          audioLevel: 0, totalAudioEnergy: 0,
        });
        if (r.kind === 'video') {
          s.videoFramesDecoded += entry.framesDecoded;
          s.videoBytesReceived += entry.bytesReceived;
        } else if (r.kind === 'audio') {
          s.audioBytesReceived += entry.bytesReceived;
          s.audioPacketsReceived += entry.packetsReceived;
          s.audioLevel = Math.max(s.audioLevel, entry.audioLevel);
          s.totalAudioEnergy += entry.totalAudioEnergy;
        }
      });
    }
    return result;
  }

  // ---- sessions ----

  /** @param {SfuSession} message */
  _startSession(message) {
    this._endSession();
    this.session = message.session;
    this.publishing = message.publish === true;
    this._setStatus('connecting', null);
    if (this.publishing) {
      const session = message.session;
      this._enqueue(() => this._publishOffer(session));
    }
  }

  /** Closes the connections of the current session and forgets its streams. */
  _endSession() {
    this.session = null;
    this.publishing = false;
    for (const leg of [this._publish, this._subscribe]) {
      if (!leg) continue;
      leg.pc.onicecandidate = leg.pc.ontrack = leg.pc.onconnectionstatechange = null;
      leg.pc.close();
    }
    this._publish = this._subscribe = null;
    this.publishPc = this.subscribePc = null;
    this.mids = new Map();
    this._regroup();
  }

  /**
   * A new peer connection of the current session.
   * @param {'publish' | 'subscribe'} name
   */
  _newLeg(name) {
    /** @type {RTCConfiguration} */
    const config = {
      ...this.rtcConfig,
      iceServers: this.iceServers ?? this.client.iceServers ?? this.rtcConfig.iceServers ?? [],
      iceTransportPolicy: this.iceTransportPolicy,
    };
    const pc = new RTCPeerConnection(config);
    const leg = new Leg(name, pc);
    const session = this.session;
    const current = () => this.session === session && (name === 'publish' ? this._publish : this._subscribe) === leg;
    pc.onicecandidate = ({ candidate }) => {
      if (!current()) return;
      const init = candidate && candidate.candidate ? candidate.toJSON() : null;
      if (leg.described) this._sendCandidate(leg, init);
      else leg.pending.push(init);
    };
    pc.onconnectionstatechange = () => {
      if (!current()) return;
      this.dispatchEvent(new CustomEvent('connection-state', { detail: { pc: name, state: pc.connectionState } }));
      this._updateStatus();
    };
    if (name === 'subscribe') {
      pc.ontrack = () => {
        if (current()) this._regroup();
      };
    }
    return leg;
  }

  /** @param {number} session */
  async _publishOffer(session) {
    if (session !== this.session) return;
    const tracks = this.localStream?.getTracks() ?? [];
    const audio = tracks.find((t) => t.kind === 'audio');
    const video = tracks.find((t) => t.kind === 'video');
    if (!audio && !video) return; // nothing to publish: receive only
    const leg = this._newLeg('publish');
    this._publish = leg;
    this.publishPc = leg.pc;
    const streams = this.localStream ? [this.localStream] : [];
    if (audio) leg.pc.addTransceiver(audio, { direction: 'sendonly', streams });
    if (video) {
      leg.pc.addTransceiver(video, { direction: 'sendonly', streams, sendEncodings: [{ maxBitrate: this.maxVideoBitrate }] });
    }
    await leg.pc.setLocalDescription(await leg.pc.createOffer());
    if (session !== this.session || this._publish !== leg) return;
    const sdp = /** @type {RTCSessionDescription} */ (leg.pc.localDescription).sdp;
    this._send('sfu-publish', { session, sdp });
    this._described(leg);
  }

  /** @param {SfuAnswer} message */
  async _onAnswer(message) {
    const leg = this._publish;
    if (message.session !== this.session || !leg || leg.pc.signalingState !== 'have-local-offer') return;
    await leg.pc.setRemoteDescription({ type: 'answer', sdp: message.sdp });
    this._updateStatus();
  }

  /** @param {SfuOffer} message */
  async _onOffer(message) {
    if (message.session !== this.session) return;
    let leg = this._subscribe;
    if (!leg) {
      leg = this._newLeg('subscribe');
      this._subscribe = leg;
      this.subscribePc = leg.pc;
    }
    // The mids first: ontrack (during setRemoteDescription) groups by them.
    this.mids = new Map((message.streams ?? []).map((s) => [String(s.mid), s]));
    const pc = leg.pc;
    await pc.setRemoteDescription({ type: 'offer', sdp: message.sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    if (message.session !== this.session || this._subscribe !== leg) return;
    const sdp = /** @type {RTCSessionDescription} */ (pc.localDescription).sdp;
    this._send('sfu-subscribe', { session: message.session, sdp });
    this._described(leg);
    this._regroup();
    this._updateStatus();
  }

  /**
   * The description of a leg went out: the candidates found meanwhile follow it.
   * @param {Leg} leg
   */
  _described(leg) {
    if (leg.described) return;
    leg.described = true;
    for (const candidate of leg.pending.splice(0)) this._sendCandidate(leg, candidate);
  }

  /**
   * @param {Leg} leg
   * @param {RTCIceCandidateInit | null} candidate
   */
  _sendCandidate(leg, candidate) {
    if (this.session === null) return;
    this._send('sfu-candidate', { session: this.session, pc: leg.name, candidate });
  }

  /**
   * Sends an SFU message (no rid: these are not acked).
   * @param {string} type
   * @param {Record<string, unknown>} fields
   */
  _send(type, fields) {
    /** @type {any} */ (this.client).send(type, fields);
  }

  /** @param {() => Promise<void>} task */
  _enqueue(task) {
    this._queue = this._queue.then(task).catch((error) => {
      console.warn('hearth sfu: negotiation failed', error);
    });
  }

  /** @param {{code: string, message: string, rid?: string}} error */
  _onError(error) {
    if (error.rid) return; // a reply to some request of the app's
    if (error.code === 'sfu-unavailable') {
      this._setStatus('unavailable', error.code);
    } else if (error.code === 'forbidden' && this.publishing) {
      this.dispatchEvent(new CustomEvent('error', { detail: error }));
    }
    // 'sfu-stale': a newer sfu-session is on its way or already here; nothing to do.
  }

  // ---- streams ----

  /**
   * Brings the per-member streams in line with the subscribing connection and the mids of the last
   * offer: each member's MediaStream holds the receiver tracks of their listed mids; a member
   * with none left loses theirs ('peer-removed').
   */
  _regroup() {
    /** @type {Map<MemberId, MediaStreamTrack[]>} */
    const wanted = new Map();
    const pc = this.subscribePc;
    if (pc) {
      for (const transceiver of pc.getTransceivers()) {
        const stream = transceiver.mid !== null ? this.mids.get(transceiver.mid) : undefined;
        if (!stream || transceiver.currentDirection === 'stopped' || transceiver.currentDirection === 'inactive') continue;
        if (!this.model.members.has(stream.member)) continue; // left (the offer without them follows)
        const list = wanted.get(stream.member) ?? [];
        list.push(transceiver.receiver.track);
        wanted.set(stream.member, list);
      }
    }
    for (const [id, stream] of [...this.streams]) {
      if (wanted.has(id)) continue;
      this.streams.delete(id);
      for (const track of stream.getTracks()) stream.removeTrack(track);
      this.dispatchEvent(new CustomEvent('peer-removed', { detail: { peer: id, member: id } }));
    }
    for (const [id, tracks] of wanted) {
      let stream = this.streams.get(id);
      let changed = false;
      if (!stream) {
        stream = new MediaStream();
        this.streams.set(id, stream);
        changed = true;
      }
      for (const track of stream.getTracks()) {
        if (!tracks.includes(track)) {
          stream.removeTrack(track);
          changed = true;
        }
      }
      for (const track of tracks) {
        if (!stream.getTracks().includes(track)) {
          stream.addTrack(track);
          changed = true;
        }
      }
      if (changed) this.dispatchEvent(new CustomEvent('track', { detail: { peer: id, member: id, stream } }));
    }
    this._enforceMutes();
  }

  /** After a roster change: drop the streams of members who left; apply mutes. */
  _sync() {
    this._regroup();
  }

  /**
   * Receiver-side mute, as the mesh does (the server already stops a muted member's audio in the
   * media server): the inbound audio of a member whose view says `audio: false` is disabled. And
   * one's own microphone track is turned off when one's own view goes from audio on to off.
   */
  _enforceMutes() {
    for (const [id, stream] of this.streams) {
      const audible = this.model.members.get(id)?.audio === true;
      for (const track of stream.getAudioTracks()) {
        if (track.enabled !== audible) track.enabled = audible;
      }
    }
    const ownAudio = this.model.you?.audio === true;
    if (this._ownAudio && !ownAudio) {
      for (const track of this.localStream?.getAudioTracks() ?? []) track.enabled = false;
    }
    this._ownAudio = ownAudio;
  }

  // ---- status ----

  _updateStatus() {
    if (this.session === null || this.status === 'closed') return;
    const legs = [this._publish, this._subscribe].filter((l) => l !== null);
    const up = legs.length > 0 && legs.every((l) => /** @type {Leg} */ (l).pc.connectionState === 'connected');
    this._setStatus(up ? 'connected' : 'connecting', null);
  }

  /**
   * @param {SfuStatus} status
   * @param {string | null} reason
   */
  _setStatus(status, reason) {
    if (this.status === status && this.reason === reason) return;
    if (this.status === 'closed') return;
    this.status = status;
    this.reason = reason;
    this.dispatchEvent(new CustomEvent('status', { detail: { status, reason } }));
  }
}
