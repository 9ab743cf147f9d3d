import HearthCore
import HearthWire

/// Reconciling: how the broker makes Janus match the engine's plan for a room (handles,
/// VideoRooms, subscriptions, mutes), and forgets Janus's state when the link is lost.
extension SFUBroker {
    /// Makes Janus match the room's plan: members gone or changed lose their handles, new
    /// members get them, spaces get their VideoRoom (and lose it when empty), mutes apply.
    mutating func reconcile(_ room: RoomID) -> [Action] {
        guard isUp else { return [] }
        let plan = plans[room] ?? [:]
        var actions: [Action] = []
        for key in members.keys.filter({ $0.room == room }).sorted(by: { $0.id < $1.id }) {
            guard let old = members[key]?.plan, let new = plan[key.id], new.connection == old.connection,
                new.space == old.space, new.publish == old.publish
            else {
                actions += teardown(key)
                continue
            }
            members[key]?.plan = new
            actions += moderate(key)
        }
        let needed = Set(plan.values.map { SFUSpace(room: room, breakout: $0.space) })
        for space in needed.sorted(by: { ($0.breakout?.rawValue ?? 0) < ($1.breakout?.rawValue ?? 0) })
        where spaces[space] == nil {
            actions += createRoom(space)
        }
        for (id, seat) in plan.sorted(by: { $0.key < $1.key }) {
            let key = SFUMemberKey(room: room, id: id)
            if members[key] == nil {
                let member = MemberState(plan: seat, session: nextSession, feed: takeID())
                members[key] = member
                feeds[member.feed] = key
                nextSession += 1
            }
            actions += start(key)
        }
        for space in spaces.keys.filter({ $0.room == room && !needed.contains($0) }) {
            actions += destroyRoom(space)
        }
        for key in members.keys.filter({ $0.room == room }).sorted(by: { $0.id < $1.id }) {
            actions += syncSubscriptions(key)
        }
        return actions
    }

    /// Attaches the member's publisher handle once their space's VideoRoom is ready (a member
    /// who may not publish is told of the session at once and only subscribes).
    private mutating func start(_ key: SFUMemberKey) -> [Action] {
        guard case .ready(let session, _) = link, var member = members[key],
            spaces[SFUSpace(room: key.room, breakout: member.plan.space)]?.ready == true
        else { return [] }
        if !member.plan.publish {
            guard !member.announced else { return [] }
            member.announced = true
            members[key] = member
            return [.send(.session(member.session, publish: false), to: member.plan.connection)]
        }
        guard member.publisher.handle == nil, !member.publisher.attaching else { return [] }
        member.publisher.attaching = true
        members[key] = member
        return [
            .janus(
                attachHandle(session: session, pending: .attach(key, .publish, mediaSession: member.session)))
        ]
    }

    /// Subscribes the member to every other publisher of their space: a subscriber handle at
    /// first, `update` after. One negotiation at a time; changes meanwhile wait for its end.
    /// Publishers that leave are dropped from subscriptions by Janus itself (a new offer).
    mutating func syncSubscriptions(_ key: SFUMemberKey) -> [Action] {
        guard case .ready(let session, _) = link, var member = members[key], member.announced else { return [] }
        let wanted = wantedFeeds(of: key, member)
        if member.subscriber.handle == nil {
            guard !wanted.isEmpty else { return [] }
            if member.subscriber.attaching { return [] }
            member.subscriber.attaching = true
            members[key] = member
            return [
                .janus(
                    attachHandle(session: session, pending: .attach(key, .subscribe, mediaSession: member.session)))
            ]
        }
        let added = wanted.subtracting(member.subscribed)
        guard !added.isEmpty, let handle = member.subscriber.handle else { return [] }
        if member.subscriber.busy {
            members[key]?.dirty = true
            return []
        }
        member.subscriber.busy = true
        member.dirty = false
        members[key] = member
        return [
            .janus(
                pluginMessage(
                    handle, session: session,
                    body: [
                        ("request", .string("update")),
                        ("subscribe", feedList(added)),
                    ], label: "update"))
        ]
    }

    /// The feeds a member should receive: every other published member of their space.
    func wantedFeeds(of key: SFUMemberKey, _ member: MemberState) -> Set<UInt64> {
        var wanted: Set<UInt64> = []
        for (other, state) in members
        where other.room == key.room && other != key && state.published && state.plan.space == member.plan.space {
            wanted.insert(state.feed)
        }
        return wanted
    }

    /// Makes Janus forward exactly the kinds the plan allows (`moderate` per mid, one at a time
    /// per kind: a change while one is out is sent when it is answered).
    mutating func moderate(_ key: SFUMemberKey) -> [Action] {
        guard case .ready(let session, let control) = link, var member = members[key], !member.mids.isEmpty,
            let space = spaces[SFUSpace(room: key.room, breakout: member.plan.space)]
        else { return [] }
        var actions: [Action] = []
        for kind in MediaKind.allCases where !member.moderating.contains(kind) {
            guard let mid = member.mids[kind] else { continue }
            let allowed = kind == .audio ? member.plan.audio : member.plan.video
            guard allowed != member.forwarding.contains(kind) else { continue }
            if allowed { member.forwarding.insert(kind) } else { member.forwarding.remove(kind) }
            member.moderating.insert(kind)
            actions.append(
                .janus(
                    pluginMessage(
                        control, session: session,
                        body: [
                            ("request", .string("moderate")), ("room", .integer(Int64(space.janusRoom))),
                            ("secret", .string(settings.roomSecret)), ("id", .integer(Int64(member.feed))),
                            ("mid", .string(mid)), ("mute", .bool(!allowed)),
                        ], pending: .moderate(key, kind, mediaSession: member.session))))
        }
        members[key] = member
        return actions
    }

    /// Detaches the member's handles: Janus drops their publisher (the others' subscriptions
    /// lose its streams) and their subscriptions.
    private mutating func teardown(_ key: SFUMemberKey) -> [Action] {
        guard let member = members.removeValue(forKey: key) else { return [] }
        feeds[member.feed] = nil
        guard case .ready(let session, _) = link else { return [] }
        var actions: [Action] = []
        for handle in [member.publisher.handle, member.subscriber.handle].compactMap({ $0 }) {
            handles[handle] = nil
            actions.append(
                .janus(janusRequest("detach", session: session, handle: handle, pending: .request("detach"))))
        }
        return actions
    }

    mutating func createRoom(_ space: SFUSpace) -> [Action] {
        guard case .ready(let session, let control) = link else { return [] }
        let janusRoom = takeID()
        spaces[space] = SpaceState(janusRoom: janusRoom)
        return [
            .janus(
                pluginMessage(
                    control, session: session,
                    body: [
                        ("request", .string("create")), ("room", .integer(Int64(janusRoom))),
                        ("admin_key", .string(settings.adminKey)), ("secret", .string(settings.roomSecret)),
                        ("publishers", .integer(Int64(settings.maxPublishers))), ("is_private", .bool(true)),
                        ("permanent", .bool(false)),
                    ], pending: .createRoom(space, janusRoom: janusRoom)))
        ]
    }

    /// Forgets the space's VideoRoom and destroys it on Janus. A room whose `create` is still
    /// unanswered is destroyed when the answer comes (`succeeded`): Janus handles requests on a
    /// pool of threads, so a `destroy` sent now could overtake its `create`, be refused ("No such
    /// room") and leave the room behind.
    private mutating func destroyRoom(_ space: SFUSpace) -> [Action] {
        guard let state = spaces.removeValue(forKey: space), state.ready else { return [] }
        return destroyRoom(janusRoom: state.janusRoom)
    }

    mutating func destroyRoom(janusRoom: UInt64) -> [Action] {
        guard case .ready(let session, let control) = link else { return [] }
        return [
            .janus(
                pluginMessage(
                    control, session: session,
                    body: [
                        ("request", .string("destroy")), ("room", .integer(Int64(janusRoom))),
                        ("secret", .string(settings.roomSecret)), ("permanent", .bool(false)),
                    ], label: "destroy"))
        ]
    }

    /// Forgets everything of Janus's (a lost link took it all).
    mutating func resetJanusState() {
        members = [:]
        spaces = [:]
        handles = [:]
        feeds = [:]
        pending = [:]
    }
}
