import HearthCore
import HearthWire

/// The room within a room whose media one Janus VideoRoom carries: the main room, or a breakout.
struct SFUSpace: Hashable, Sendable {
    var room: RoomID
    var breakout: BreakoutID?
}

/// A member of one room, as the broker files them.
struct SFUMemberKey: Hashable, Sendable {
    var room: RoomID
    var id: ParticipantID
}

/// Hearth's control plane over Janus's VideoRoom, as a state machine (docs/architecture.md, "SFU").
///
/// It makes Janus match the engine's `Room.sfuPlan`: one VideoRoom per space (room or
/// breakout); per planned member a publisher handle (joined on their behalf, fed their offer)
/// and a subscriber handle (subscribed to every other publisher of the space); a member's
/// audio and video forwarded only while the plan says so (`moderate`, so a staff mute holds in
/// the media path). It relays the members' offers, answers and candidates between their
/// client and Janus. A member whose connection, space or right to publish changes starts a new
/// media session (fresh handles; the client renegotiates).
///
/// No I/O and no clock: inputs are the plans, Janus's messages, the clients' SFU messages and
/// the link going up or down; outputs are `Action`s the shell performs, in order.
struct SFUBroker {
    struct Settings: Sendable {
        /// Janus's `api_secret`.
        var apiSecret: String
        /// The VideoRoom plugin's `admin_key` (room creation).
        var adminKey: String
        /// The secret of the VideoRooms this node creates (moderation, destruction).
        var roomSecret: String
        /// The first VideoRoom and feed id: distinct from a previous run's on the same Janus.
        var idBase: UInt64
        /// Most publishers a VideoRoom admits.
        var maxPublishers: Int = 32
    }

    enum Action: Equatable {
        /// Send this request to Janus.
        case janus(JSONValue)
        /// Send this message to a member's connection.
        case send(SFUServerMessage, to: ConnectionID)
        /// Refuse a client's SFU message.
        case refuse(ErrorCode, rid: String?, to: ConnectionID)
        /// Janus refused something Hearth asked: worth a log line (no member data in it).
        case janusError(request: String, code: Int64, reason: String)
    }

    enum Link: Equatable {
        case down
        case creatingSession
        case attachingControl(session: UInt64)
        /// Ready: Janus's session, and the handle used for room-level requests.
        case ready(session: UInt64, control: UInt64)
    }

    /// What a transaction was for, until its reply arrives.
    enum Pending: Equatable {
        case createSession
        case attachControl
        case createRoom(SFUSpace, janusRoom: UInt64)
        case attach(SFUMemberKey, SFUPeer, mediaSession: UInt64)
        case moderate(SFUMemberKey, MediaKind, mediaSession: UInt64)
        case request(String)
    }

    struct SpaceState {
        var janusRoom: UInt64
        var ready = false
    }

    struct Peer {
        var handle: UInt64? = nil
        var attaching = false
        /// Publisher: joined the VideoRoom. Subscriber: an offer is out, or an update/start pending.
        var busy = false
    }

    struct MemberState {
        var plan: SFUSeat
        /// The media session the client was (or will be) told of.
        var session: UInt64
        /// The member's publisher id in the VideoRoom.
        var feed: UInt64
        var publisher = Peer()
        var subscriber = Peer()
        /// The client has been sent `sfu-session`.
        var announced = false
        /// The member's media reached Janus (`webrtcup`): others may subscribe.
        var published = false
        /// The member's publishing mids by kind (from Janus's `configured` event).
        var mids: [MediaKind: String] = [:]
        /// What Janus forwards now: it starts forwarding everything published.
        var forwarding: Set<MediaKind> = [.audio, .video]
        /// Kinds with a `moderate` unanswered: the next waits for its answer (Janus handles
        /// requests on a pool of threads, so a mute and an unmute sent together could swap).
        var moderating: Set<MediaKind> = []
        /// The feeds of the last subscription offer.
        var subscribed: Set<UInt64> = []
        /// The subscriptions changed while a negotiation was under way: sync after it.
        var dirty = false
    }

    let settings: Settings
    private(set) var link: Link = .down
    /// The last plan of every room in SFU mode (kept while the link is down, to rebuild).
    private(set) var plans: [RoomID: [ParticipantID: SFUSeat]] = [:]
    // Janus's side, changed only by the broker's own files (this one, `+Reconciling`, `+Requests`).
    var members: [SFUMemberKey: MemberState] = [:]
    var spaces: [SFUSpace: SpaceState] = [:]
    var handles: [UInt64: (member: SFUMemberKey, peer: SFUPeer)] = [:]
    var feeds: [UInt64: SFUMemberKey] = [:]
    var pending: [String: Pending] = [:]
    var nextTransaction: UInt64 = 1
    var nextID: UInt64
    var nextSession: UInt64 = 1

    init(settings: Settings) {
        self.settings = settings
        self.nextID = settings.idBase
    }

    var isUp: Bool { if case .ready = link { return true } else { return false } }

    /// Whether the broker has anything of this room (a plan to keep, or Janus state to undo).
    func knows(_ room: RoomID) -> Bool { plans[room] != nil }

    // MARK: Inputs

    /// The link to Janus is open: create the session.
    mutating func linkUp() -> [Action] {
        resetJanusState()
        link = .creatingSession
        return [.janus(janusRequest("create", pending: .createSession))]
    }

    /// The link is gone: Janus forgot every session, handle and room of it. Every member who
    /// had media is told; the plans stay, to rebuild when the link is back.
    mutating func linkDown() -> [Action] {
        let told = members.values.filter(\.announced).map { Action.send(.closedUnavailable, to: $0.plan.connection) }
        resetJanusState()
        link = .down
        return told
    }

    /// Keeps Janus's session alive (its timeout is 60 s): the shell calls it every 20 s or so.
    mutating func keepalive() -> [Action] {
        guard case .ready(let session, _) = link else { return [] }
        return [.janus(janusRequest("keepalive", session: session, pending: .request("keepalive")))]
    }

    /// A room's plan after an input (empty: the room uses the mesh, ended, or nobody is admitted).
    mutating func plan(_ room: RoomID, _ plan: [ParticipantID: SFUSeat]) -> [Action] {
        guard plans[room] != plan else { return [] }
        plans[room] = plan.isEmpty ? nil : plan
        return reconcile(room)
    }

    /// A client's SFU message. `member` is the admitted seat of the sending connection (nil if none).
    mutating func client(
        _ message: SFUClientMessage, member key: SFUMemberKey, from connection: ConnectionID, rid: String?
    ) -> [Action] {
        guard case .ready(let session, _) = link, let member = members[key], member.plan.connection == connection else {
            return [.refuse(.sfuUnavailable, rid: rid, to: connection)]
        }
        guard message.session == member.session, member.announced else {
            return [.refuse(.sfuStale, rid: rid, to: connection)]
        }
        switch message {
        case .publish(_, let sdp):
            guard member.plan.publish else { return [.refuse(.forbidden, rid: rid, to: connection)] }
            guard let handle = member.publisher.handle, member.publisher.busy else {
                return [.refuse(.sfuStale, rid: rid, to: connection)]
            }
            return [
                .janus(
                    pluginMessage(
                        handle, session: session, body: [("request", .string("configure"))],
                        jsep: jsep("offer", sdp), label: "configure"))
            ]
        case .subscribe(_, let sdp):
            guard let handle = member.subscriber.handle else { return [.refuse(.sfuStale, rid: rid, to: connection)] }
            return [
                .janus(
                    pluginMessage(
                        handle, session: session, body: [("request", .string("start"))], jsep: jsep("answer", sdp),
                        label: "start"))
            ]
        case .candidate(_, let peer, let candidate):
            let handle = peer == .publish ? member.publisher.handle : member.subscriber.handle
            guard let handle else { return [] }  // not attached yet, or gone: nothing to trickle to
            let value: JSONValue
            if let candidate {
                var fields: [(String, JSONValue)] = [("candidate", .string(candidate.candidate))]
                if let mid = candidate.sdpMid { fields.append(("sdpMid", .string(mid))) }
                if let index = candidate.sdpMLineIndex { fields.append(("sdpMLineIndex", .integer(Int64(index)))) }
                value = .object(fields)
            } else {
                value = .object([("completed", .bool(true))])
            }
            return [
                .janus(
                    janusRequest(
                        "trickle", session: session, handle: handle, extra: [("candidate", value)],
                        pending: .request("trickle")))
            ]
        }
    }

    /// A message from Janus.
    mutating func received(_ reply: JSONValue) -> [Action] {
        guard case .string(let kind)? = reply["janus"] else { return [] }
        let transaction: String? = if case .string(let t)? = reply["transaction"] { t } else { nil }
        let pendingRequest = transaction.flatMap { pending[$0] }
        switch kind {
        case "ack":
            return []
        case "success", "error":
            if let transaction { pending[transaction] = nil }
            guard let pendingRequest else { return [] }
            if kind == "error" {
                let code: Int64 = if case .integer(let c)? = reply["error"]?["code"] { c } else { 0 }
                let reason: String = if case .string(let r)? = reply["error"]?["reason"] { r } else { "" }
                return failed(pendingRequest, code: code, reason: reason)
            }
            return succeeded(pendingRequest, reply)
        case "event":
            if let transaction { pending[transaction] = nil }
            guard case .integer(let sender)? = reply["sender"] else { return [] }
            return event(from: UInt64(sender), reply)
        case "timeout":
            // Janus dropped the session (keepalives lost): start again, as after a lost link.
            var actions = linkDown()
            actions += linkUp()
            return actions
        case "webrtcup", "hangup":
            // A publisher's media is up (others may now subscribe to it) or gone.
            guard case .integer(let sender)? = reply["sender"], let (key, peer) = handles[UInt64(sender)],
                peer == .publish, members[key] != nil
            else { return [] }
            members[key]?.published = kind == "webrtcup"
            var actions: [Action] = []
            for other in members.keys.sorted(by: { $0.id < $1.id }) where other.room == key.room && other != key {
                actions += syncSubscriptions(other)
            }
            return actions
        default:
            // media, slowlink, detached, trickle: nothing for the control plane.
            return []
        }
    }

    // MARK: Replies

    private mutating func succeeded(_ request: Pending, _ reply: JSONValue) -> [Action] {
        let id: UInt64? = if case .integer(let n)? = reply["data"]?["id"] { UInt64(n) } else { nil }
        switch request {
        case .createSession:
            guard let id else { return [] }
            link = .attachingControl(session: id)
            return [
                .janus(
                    attachHandle(session: id, pending: .attachControl))
            ]
        case .attachControl:
            guard case .attachingControl(let session) = link, let id else { return [] }
            link = .ready(session: session, control: id)
            var actions: [Action] = []
            for room in plans.keys.sorted(by: { $0.description < $1.description }) { actions += reconcile(room) }
            return actions
        case .createRoom(let space, let janusRoom):
            if let error = pluginError(reply) {
                if spaces[space]?.janusRoom == janusRoom { spaces[space] = nil }
                return [.janusError(request: "create", code: error.code, reason: error.reason)]
            }
            // Dropped (or made again) while Janus was creating it: now it can be destroyed.
            guard spaces[space]?.janusRoom == janusRoom else { return destroyRoom(janusRoom: janusRoom) }
            spaces[space]?.ready = true
            return reconcile(space.room)
        case .attach(let key, let peer, let mediaSession):
            guard let id else { return [] }
            guard case .ready(let session, _) = link, var member = members[key], member.session == mediaSession else {
                // The member left or restarted while the handle was attaching: let it go.
                guard case .ready(let session, _) = link else { return [] }
                return [.janus(janusRequest("detach", session: session, handle: id, pending: .request("detach")))]
            }
            handles[id] = (key, peer)
            guard let space = spaces[SFUSpace(room: key.room, breakout: member.plan.space)] else { return [] }
            switch peer {
            case .publish:
                member.publisher = Peer(handle: id)
                members[key] = member
                return [
                    .janus(
                        pluginMessage(
                            id, session: session,
                            body: [
                                ("request", .string("join")), ("ptype", .string("publisher")),
                                ("room", .integer(Int64(space.janusRoom))), ("id", .integer(Int64(member.feed))),
                                ("display", .string(key.id.description)),
                            ], label: "join"))
                ]
            case .subscribe:
                member.subscriber = Peer(handle: id, busy: true)
                let wanted = wantedFeeds(of: key, member)
                member.subscribed = wanted
                members[key] = member
                return [
                    .janus(
                        pluginMessage(
                            id, session: session,
                            body: [
                                ("request", .string("join")), ("ptype", .string("subscriber")),
                                ("room", .integer(Int64(space.janusRoom))),
                                ("streams", feedList(wanted)),
                            ], label: "join"))
                ]
            }
        case .request(let label):
            if let error = pluginError(reply) {
                return [.janusError(request: label, code: error.code, reason: error.reason)]
            }
            return []
        case .moderate(let key, let kind, let mediaSession):
            var actions: [Action] = []
            if let error = pluginError(reply) {
                actions.append(.janusError(request: "moderate", code: error.code, reason: error.reason))
            }
            return actions + moderated(key, kind, mediaSession: mediaSession)
        }
    }

    /// A `moderate` was answered: the plan may have changed meanwhile.
    private mutating func moderated(_ key: SFUMemberKey, _ kind: MediaKind, mediaSession: UInt64) -> [Action] {
        guard members[key]?.session == mediaSession else { return [] }
        members[key]?.moderating.remove(kind)
        return moderate(key)
    }

    private mutating func failed(_ request: Pending, code: Int64, reason: String) -> [Action] {
        switch request {
        case .createSession, .attachControl:
            // Janus is there but refuses us (e.g. a wrong api secret): stay down, say why.
            link = .down
            return [.janusError(request: "session", code: code, reason: reason)]
        case .createRoom(let space, let janusRoom):
            if spaces[space]?.janusRoom == janusRoom { spaces[space] = nil }
            return [.janusError(request: "create", code: code, reason: reason)]
        case .attach(let key, let peer, _):
            if peer == .publish { members[key]?.publisher.attaching = false }
            if peer == .subscribe { members[key]?.subscriber.attaching = false }
            return [.janusError(request: "attach", code: code, reason: reason)]
        case .request(let label):
            return [.janusError(request: label, code: code, reason: reason)]
        case .moderate(let key, let kind, let mediaSession):
            return [.janusError(request: "moderate", code: code, reason: reason)]
                + moderated(key, kind, mediaSession: mediaSession)
        }
    }

    /// An event of one of the members' handles.
    private mutating func event(from handle: UInt64, _ reply: JSONValue) -> [Action] {
        guard let (key, peer) = handles[handle], var member = members[key] else { return [] }
        let data = reply["plugindata"]?["data"]
        let kind: String = if case .string(let k)? = data?["videoroom"] { k } else { "" }
        let sdp: String? = if case .string(let s)? = reply["jsep"]?["sdp"] { s } else { nil }
        if let data, let error = pluginError(.object([("plugindata", .object([("data", data)]))])) {
            var actions: [Action] = [
                .janusError(request: "\(peer.rawValue) \(kind)", code: error.code, reason: error.reason)
            ]
            if peer == .subscribe {
                members[key]?.subscriber.busy = false
                actions += syncSubscriptions(key)
            }
            return actions
        }
        switch peer {
        case .publish:
            if kind == "joined" {
                member.publisher.busy = true
                member.announced = true
                members[key] = member
                // The newcomer subscribes at once to every publisher already up in its space.
                return [.send(.session(member.session, publish: true), to: member.plan.connection)]
                    + syncSubscriptions(key)
            }
            if case .string("ok")? = data?["configured"], let sdp {
                member.mids = [:]
                if case .array(let streams)? = data?["streams"] {
                    for stream in streams {
                        guard case .string(let type)? = stream["type"], let media = MediaKind(rawValue: type),
                            case .string(let mid)? = stream["mid"], member.mids[media] == nil
                        else { continue }
                        member.mids[media] = mid
                    }
                }
                member.forwarding = [.audio, .video]
                members[key] = member
                // Subscriptions to the member wait for `webrtcup`: Janus refuses them before.
                return [.send(.answer(session: member.session, sdp: sdp), to: member.plan.connection)] + moderate(key)
            }
            return []
        case .subscribe:
            if let sdp, case .string("offer")? = reply["jsep"]?["type"] {
                var streams: [SFUStream] = []
                var active: Set<UInt64> = []
                if case .array(let list)? = data?["streams"] {
                    for stream in list {
                        if case .bool(false)? = stream["active"] { continue }
                        guard case .integer(let feed)? = stream["feed_id"], case .string(let mid)? = stream["mid"],
                            case .string(let type)? = stream["type"], let media = MediaKind(rawValue: type),
                            let owner = feeds[UInt64(feed)]
                        else { continue }
                        active.insert(UInt64(feed))
                        streams.append(SFUStream(mid: mid, member: owner.id, kind: media))
                    }
                }
                member.subscribed = active
                member.subscriber.busy = true
                members[key] = member
                return [.send(.offer(session: member.session, sdp: sdp, streams: streams), to: member.plan.connection)]
            }
            // `started`, or an update that changed nothing: the negotiation is over.
            if kind == "event" || kind == "updated" {
                member.subscriber.busy = false
                members[key] = member
                return syncSubscriptions(key)
            }
            return []
        }
    }
}
