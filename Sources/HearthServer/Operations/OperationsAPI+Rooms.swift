import Foundation
import HearthCore
import HearthStore
import HearthTransport
import HearthWire

// MARK: - Rooms

/// The endpoints about rooms: list, create, get, end (loop thread; a create also reads the
/// store's end marks on the reader thread, see `OperationsAPI.deferCreate`).
enum Rooms {
    static func list(_ request: HTTPRequest, backend: OperationsAccess) throws(APIError) -> Answer {
        let phase = try phaseFilter(request)
        let rooms = backend.rooms.values
            .filter { phase == nil || (phase == "ended") == $0.isEnded }
            .sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        return Answer(status: 200, body: .object([("rooms", .array(rooms.map { item($0) }))]))
    }

    /// `?phase=open|ended`, or nil.
    static func phaseFilter(_ request: HTTPRequest) throws(APIError) -> String? {
        guard let p = Query(request.query)["phase"] else { return nil }
        guard p == "open" || p == "ended" else { throw .badRequest("Query parameter phase must be open or ended.") }
        return p
    }

    /// One room of the list, from the engine (a room this node holds).
    static func item(_ room: Room, node: String? = nil) -> JSONValue {
        let counts = room.seatCounts
        return .object(
            header(room) + [
                ("members", .integer(Int64(counts.inRoom))), ("waiting", .integer(Int64(counts.waiting))),
                ("locked", .bool(room.locked)), ("staffPresent", .bool(room.staffPresent)),
            ] + (node.map { [("node", JSONValue.string($0))] } ?? []))
    }

    /// The list in a cluster: every room of the shared tables, each with the node holding it
    /// (null: none yet). The rooms this node holds come from its engine, with their counts;
    /// the others carry null counts (ask their node: `GET /api/v1/rooms/{id}` goes there).
    static func clusterList(
        _ shared: [SharedJournal.SharedRoom], phase: String?, backend: OperationsAccess, node: String
    ) -> Answer {
        var items: [(created: Int64, id: String, item: JSONValue)] = []
        for s in shared {
            if let room = backend.rooms[s.room], backend.host.shared?.owns(s.room) == true {
                guard phase == nil || (phase == "ended") == room.isEnded else { continue }
                items.append((room.createdAt.milliseconds, room.id.rawValue, item(room, node: node)))
                continue
            }
            let ended = s.endedAt != nil
            guard phase == nil || (phase == "ended") == ended else { continue }
            let created = s.createdAt?.milliseconds ?? 0
            let endedAt: JSONValue = s.endedAt.map { JSONValue.integer($0.milliseconds) } ?? .null
            let holder: JSONValue = s.node.map { JSONValue.string($0) } ?? .null
            let fields: [(String, JSONValue)] = [
                ("id", .string(s.room.rawValue)), ("phase", .string(ended ? "ended" : "open")),
                ("createdAt", .integer(created)), ("endedAt", endedAt), ("members", .null), ("waiting", .null),
                ("locked", .null), ("staffPresent", .null), ("node", holder),
            ]
            items.append((created, s.room.rawValue, .object(fields)))
        }
        items.sort { ($0.created, $0.id) < ($1.created, $1.id) }
        return Answer(status: 200, body: .object([("rooms", .array(items.map(\.item)))]))
    }

    /// The create call's id and settings, checked against the body and the rooms (loop thread);
    /// the store's end marks are checked next, on the reader thread.
    static func prepareCreate(_ request: HTTPRequest, backend: OperationsAccess) throws(APIError) -> (
        RoomID, RoomSettings
    ) {
        guard request.body.count <= OperationsAPI.maxBodyBytes else { throw .bodyTooLarge }
        let fields: [(String, JSONValue)]
        if request.body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            fields = []  // no body: a room with a generated id and the default settings
        } else {
            guard case .object(let f)? = JSONValue.parse(request.body) else { throw .badJSON }
            fields = f
        }
        var id: RoomID? = nil
        var settings = backend.defaultRoomSettings
        for (key, value) in fields {
            switch key {
            case "id":
                guard case .string(let text) = value, let valid = RoomID(validating: text) else {
                    throw .badRequest("id must be a string of 1 to 64 characters A-Z a-z 0-9 _ -.")
                }
                id = valid
            case "settings":
                guard case .object(let s) = value else { throw .invalidSettings("settings must be an object.") }
                try apply(s, to: &settings)
                if !backend.sfuEnabled {
                    // Without a media server, `auto` means the mesh and `sfu` cannot be had.
                    if settings.media == .sfu {
                        throw .invalidSettings("settings.media sfu needs a media server (sfu.janusSocket).")
                    }
                    settings.media = .mesh
                }
            default:
                throw .badRequest("Unknown field \(key) (expected id, settings).")
            }
        }
        let roomID = id ?? generateID(avoiding: backend)
        if let existing = backend.rooms[roomID] {
            throw (existing.isEnded ? APIError.roomEnded : .roomExists).about(roomID)
        }
        return (roomID, settings)
    }

    /// Creates the room (loop thread, after the reader found no end mark for its id).
    static func create(_ id: RoomID, settings: RoomSettings, backend: OperationsAccess, now: Instant) throws(APIError)
        -> Answer
    {
        if let existing = backend.rooms[id] {
            throw (existing.isEnded ? APIError.roomEnded : .roomExists).about(id)
        }
        switch backend.createRoom(id, settings: settings, at: now) {
        case .created(let room): return Answer(status: 201, body: object(room), room: id.rawValue)
        case .exists: throw APIError.roomExists.about(id)
        case .ended: throw APIError.roomEnded.about(id)
        case .unavailable: throw APIError.roomElsewhere.about(id)
        }
    }

    /// Applies `settings` fields over the defaults, naming the first bad field.
    static func apply(_ fields: [(String, JSONValue)], to s: inout RoomSettings) throws(APIError) {
        func integer(_ v: JSONValue, _ name: String, _ range: ClosedRange<Int64>) throws(APIError) -> Int {
            guard case .integer(let n) = v, range.contains(n) else {
                throw .invalidSettings(
                    "settings.\(name) must be an integer from \(range.lowerBound) to \(range.upperBound).")
            }
            return Int(n)
        }
        func bool(_ v: JSONValue, _ name: String) throws(APIError) -> Bool {
            guard case .bool(let b) = v else { throw .invalidSettings("settings.\(name) must be true or false.") }
            return b
        }
        func choice(_ v: JSONValue, _ name: String, _ allowed: [String]) throws(APIError) -> String {
            guard case .string(let text) = v, allowed.contains(text) else {
                throw .invalidSettings("settings.\(name) must be one of \(allowed.joined(separator: ", ")).")
            }
            return text
        }
        for (key, value) in fields {
            switch key {
            case "capacity": s.capacity = try integer(value, key, 1...10_000)
            case "waitingRoom": s.waitingRoom = try bool(value, key)
            case "consentVersion":
                switch value {
                case .null: s.consentVersion = nil
                case .string(let text) where !text.isEmpty && text.utf8.count <= 512: s.consentVersion = text
                default:
                    throw .invalidSettings("settings.consentVersion must be a string of 1 to 512 bytes, or null.")
                }
            case "requireLocation": s.requireLocation = try bool(value, key)
            case "chatPolicy":
                s.chatPolicy = ChatPolicy(rawValue: try choice(value, key, ChatPolicy.allCases.map(\.rawValue)))!
            case "privateMessages": s.privateMessages = try bool(value, key)
            case "selfUnmute": s.selfUnmute = try bool(value, key)
            case "graceSeconds": s.graceMilliseconds = Int64(try integer(value, key, 0...3600)) * 1000
            case "facilitatorDrop":
                s.facilitatorDrop = FacilitatorDropPolicy(
                    rawValue: try choice(value, key, FacilitatorDropPolicy.allCases.map(\.rawValue)))!
            case "maxWaiting": s.maxWaiting = try integer(value, key, 1...10_000)
            case "media": s.media = MediaMode(rawValue: try choice(value, key, MediaMode.allCases.map(\.rawValue)))!
            case "meshLimit": s.meshLimit = try integer(value, key, 1...10_000)
            case "consentText":
                switch value {
                case .null: s.consentText = nil
                case .string(let text) where !text.isEmpty && text.utf8.count <= 16_384: s.consentText = text
                default: throw .invalidSettings("settings.consentText must be a string of 1 to 16384 bytes, or null.")
                }
            case "opensAt", "closesAt":
                var at: Instant?
                switch value {
                case .null: at = nil
                case .integer(let ms) where ms > 0: at = Instant(milliseconds: ms)
                default:
                    throw .invalidSettings("settings.\(key) must be a time in milliseconds since the epoch, or null.")
                }
                if key == "opensAt" { s.opensAt = at } else { s.closesAt = at }
            default:
                throw .invalidSettings(
                    "Unknown setting \(key) (expected capacity, waitingRoom, consentVersion, consentText, "
                        + "requireLocation, chatPolicy, privateMessages, selfUnmute, graceSeconds, facilitatorDrop, "
                        + "maxWaiting, opensAt, closesAt, media, meshLimit).")
            }
        }
        if let opens = s.opensAt, let closes = s.closesAt, closes <= opens {
            throw .invalidSettings("settings.closesAt must be after settings.opensAt.")
        }
        if s.consentText != nil && s.consentVersion == nil {
            throw .invalidSettings("settings.consentText needs settings.consentVersion.")
        }
    }

    /// 22 random URL-safe characters (132 bits from the system CSPRNG), unused by any room.
    static func generateID(avoiding backend: OperationsAccess) -> RoomID {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var rng = SystemRandomNumberGenerator()
        while true {
            let bytes = (0..<22).map { _ in alphabet[Int(UInt8.random(in: 0...63, using: &rng))] }
            let id = RoomID(String(decoding: bytes, as: UTF8.self))
            if backend.rooms[id] == nil { return id }
        }
    }

    static func header(_ room: Room) -> [(String, JSONValue)] {
        let endedAt = room.endedAt.map { JSONValue.integer($0.milliseconds) } ?? .null
        return [
            ("id", .string(room.id.rawValue)), ("phase", .string(room.isEnded ? "ended" : "open")),
            ("createdAt", .integer(room.createdAt.milliseconds)), ("endedAt", endedAt),
        ]
    }

    static func settings(_ s: RoomSettings) -> JSONValue {
        .object([
            ("capacity", .integer(Int64(s.capacity))), ("waitingRoom", .bool(s.waitingRoom)),
            ("consentVersion", s.consentVersion.map(JSONValue.string) ?? .null),
            ("requireLocation", .bool(s.requireLocation)), ("chatPolicy", .string(s.chatPolicy.rawValue)),
            ("privateMessages", .bool(s.privateMessages)), ("selfUnmute", .bool(s.selfUnmute)),
            ("graceSeconds", .integer(s.graceMilliseconds / 1000)),
            ("facilitatorDrop", .string(s.facilitatorDrop.rawValue)), ("maxWaiting", .integer(Int64(s.maxWaiting))),
            ("consentText", s.consentText.map(JSONValue.string) ?? .null),
            ("opensAt", s.opensAt.map { .integer($0.milliseconds) } ?? .null),
            ("closesAt", s.closesAt.map { .integer($0.milliseconds) } ?? .null),
            ("media", .string(s.media.rawValue)), ("meshLimit", .integer(Int64(s.meshLimit))),
        ])
    }

    /// The room with its settings, state and the staff-view roster. Locations are never
    /// included (only whether one was given): operators do not need them.
    static func object(_ room: Room) -> JSONValue {
        let seats = room.seats.values.sorted { $0.id < $1.id }
        let inRoom = seats.filter { $0.placement == .room }
        let waiting = seats.filter { $0.placement == .waiting }
        let state = JSONValue.object([
            ("locked", .bool(room.locked)), ("staffPresent", .bool(room.staffPresent)),
            ("spotlight", room.spotlight.map { .string($0.description) } ?? .null),
            ("admittedMembers", .integer(Int64(room.admittedMemberCount))),
            ("openHelpRequests", .integer(Int64(room.help.count))), ("lastSeq", .integer(Int64(room.seq))),
            ("media", .string(room.usesSFU ? "sfu" : "mesh")),
            (
                "breakouts",
                .array(
                    room.breakouts.open.map { b in
                        .object([
                            ("id", .string(b.id.description)), ("name", .string(b.name)),
                            ("kind", .string(b.kind.rawValue)),
                            (
                                "members",
                                .array(inRoom.filter { $0.breakout == b.id }.map { .string($0.id.description) })
                            ),
                        ])
                    })
            ),
            ("breakoutsEndAt", room.breakouts.endsAt.map { .integer($0.milliseconds) } ?? .null),
        ])
        return .object(
            header(room) + [
                ("settings", settings(room.settings)), ("state", state),
                ("members", .array(inRoom.map { member($0, room) })),
                ("waiting", .array(waiting.map { member($0, room) })),
            ])
    }

    static func member(_ seat: Seat, _ room: Room) -> JSONValue {
        let waiting = seat.placement == .waiting
        return .object([
            ("id", .string(seat.id.description)), ("userId", .string(seat.userID.rawValue)),
            ("role", .string(seat.role.rawValue)), ("alias", .string(seat.alias)),
            ("placement", .string(seat.placement.rawValue)), ("connected", .bool(seat.isConnected)),
            ("audio", .bool(seat.audio)), ("video", .bool(seat.video)),
            ("handRaisedAt", seat.handRaisedAt.map { .integer($0.milliseconds) } ?? .null),
            ("mediaGranted", .bool(seat.mediaGranted)), ("chatGranted", .bool(seat.chatGranted)),
            ("consentVersion", seat.consentVersion.map(JSONValue.string) ?? .null),
            ("locationGiven", .bool(seat.location != nil)),
            ("waitingSince", waiting ? .integer((seat.waitingSince ?? room.createdAt).milliseconds) : .null),
            ("ready", waiting ? .bool(room.isReadyForAdmission(seat)) : .null),
            ("breakout", seat.breakout.map { .string($0.description) } ?? .null),
        ])
    }
}

extension Route.Endpoint {
    /// The endpoints answered on the loop from the rooms alone.
    func run(_ request: HTTPRequest, backend: OperationsAccess, now: Instant) throws(APIError) -> Answer {
        switch self {
        case .listRooms:
            return try Rooms.list(request, backend: backend)
        case .getRoom(let id):
            try backend.hold(id, at: now)
            guard let room = backend.rooms[id] else { throw .unknownRoom }
            return Answer(status: 200, body: Rooms.object(room))
        case .endRoom(let id):
            try backend.hold(id, at: now)
            guard let room = backend.rooms[id] else { throw .unknownRoom }
            guard !room.isEnded, backend.endRoom(id, at: now) else { throw .roomEnded }
            // In a cluster, a commit that found the room taken over (the end's own, when the
            // writer was quick) drops it here before anything of the end goes out: it was not
            // ended, another node holds it.
            guard let ended = backend.rooms[id] else { throw APIError.roomElsewhere.about(id) }
            return Answer(status: 200, body: Rooms.object(ended))
        case .createRoom, .attendance, .audit:
            preconditionFailure("answered through the reader thread (OperationsAPI.handle)")
        }
    }
}
