import CJansson
import Foundation
import HearthAuth
import HearthCore
import HearthStore
import HearthTransport

/// What the operations API may reach, on the event-loop thread: the rooms (read), room
/// creation and ending (journaled engine inputs), and the record store (appends only: reads of
/// the disk happen on the API's reader thread, never here).
struct OperationsAccess {
    let host: RoomHost
    let transport: Transport

    var rooms: [RoomID: Room] { host.rooms }
    var defaultRoomSettings: RoomSettings { host.defaultRoomSettings }
    var store: Store { host.recordStore }

    func createRoom(_ id: RoomID, settings: RoomSettings, at: Instant) -> Bool {
        host.createRoom(id, settings: settings, at: at, transport: transport)
    }

    func endRoom(_ id: RoomID, at: Instant) -> Bool { host.endRoom(id, at: at, transport: transport) }
}

/// The operations API under `/api/v1/`: HTTPS on the same port, admin credentials only
/// (`docs/api.md`, `docs/openapi.json`).
///
/// Every call is answered with JSON and audited (action `api:<endpoint>`, room or `-`,
/// reason `operator:<sub>` or `credential:<why>`), except calls refused early because their
/// address keeps failing authentication (429). Runs on the event-loop thread, which never waits
/// on the disk: what needs the records (attendance, the audit export, the ended-room check of a
/// create) is read on the API's reader thread (`RecordReader`) and answered later through
/// `Transport.respond(to:with:)`; what needs the rooms is read on the loop.
struct OperationsAPI {
    static let prefix = "/api/v1/"
    /// Largest request body the API reads (the transport caps every body at 64 KiB first).
    static let maxBodyBytes = 16_384

    private let verifier: AdminTokenVerifier?
    private let disabledMessage: String
    private let guardrail: FailureBudget
    private let reader = RecordReader()

    init(configuration: HearthConfiguration) {
        var keys: [TokenKey] = []
        var message = "The operations API is disabled: no admin keys are configured."
        for key in configuration.admin.keys {
            guard
                let k = try? TokenKey(
                    algorithm: key.algorithm, secret: key.secret, publicKey: key.publicKey, kid: key.kid)
            else {
                keys = []
                message = "The operations API is disabled: an admin key could not be loaded."
                break
            }
            keys.append(k)
        }
        verifier =
            keys.isEmpty
            ? nil
            : AdminTokenVerifier(
                keys: keys, leewaySeconds: configuration.admin.leewaySeconds,
                maxLifetimeSeconds: configuration.admin.maxLifetimeSeconds)
        disabledMessage = message
        guardrail = FailureBudget(
            burst: configuration.rateLimits.authFailureBurst, perSecond: configuration.rateLimits.authFailuresPerSecond)
    }

    func handle(_ request: HTTPRequest, backend: OperationsAccess, now: Instant) -> HTTPReply {
        let route = Route(request)
        func audit(_ outcome: AuditRecord.Outcome, reason: String) {
            backend.store.append(
                AuditRecord(
                    at: now, room: RoomID(route.room ?? "-"), actor: nil, subject: nil, action: "api:\(route.name)",
                    outcome: outcome, reason: reason))
        }

        // Addresses that keep failing are refused before any work (and not audited again).
        guard guardrail.allowed(request.peerAddress, now: now) else {
            return .response(APIError.rateLimited.response)
        }
        guard let verifier else {
            guardrail.failed(request.peerAddress, now: now)
            audit(.refused(.forbidden), reason: "api-disabled")
            return .response(APIError(503, "api-disabled", disabledMessage, .forbidden).response)
        }

        // Authentication: one answer (401) whatever failed; the reason goes to the audit trail.
        let claims: AdminClaims
        switch Self.bearerToken(request.headers["authorization"]) {
        case nil:
            guardrail.failed(request.peerAddress, now: now)
            audit(.refused(.authenticationFailed), reason: "credential:missing")
            return .response(APIError.unauthenticated.response)
        case let token?:
            let date = Date(timeIntervalSince1970: Double(now.milliseconds) / 1000)
            switch verifier.verify(token, now: date) {
            case .failure(let error):
                guardrail.failed(request.peerAddress, now: now)
                audit(.refused(.authenticationFailed), reason: "credential:\(error.reason)")
                return .response(APIError.unauthenticated.response)
            case .success(let c):
                claims = c
            }
        }

        let call = Call(
            exchange: request.exchange, transport: backend.transport, store: backend.store,
            action: "api:\(route.name)", room: route.room, operatorID: claims.sub)
        do {
            switch try route.endpoint.get() {
            case .createRoom:
                let (id, settings) = try Rooms.prepareCreate(request, backend: backend)
                deferCreate(id, settings: settings, call: call, backend: backend)
            case .attendance(let id):
                let engineEnded = backend.rooms[id].flatMap { room -> Instant? in
                    if case .ended(let at) = room.phase { return at }
                    return nil
                }
                let engineKnows = backend.rooms[id] != nil
                reader.read(store: call.store, after: call.store.lastTicket) {
                    let response: HTTPResponse
                    do throws(APIError) {
                        response = call.done(
                            try Records.attendance(
                                id, store: call.store, engineKnows: engineKnows, engineEnded: engineEnded,
                                now: RoomHost.now()))
                    } catch {
                        response = call.refused(error)
                    }
                    call.respond(response)
                }
            case .audit(let id):
                let since = try Records.since(request)
                let engineKnows = backend.rooms[id] != nil
                reader.read(store: call.store, after: call.store.lastTicket) {
                    Records.exportAudit(id, since: since, engineKnows: engineKnows, call: call)
                }
            case let endpoint:
                return .response(call.done(try endpoint.run(request, backend: backend, now: now), at: now))
            }
        } catch {
            return .response(call.refused(error, at: now))
        }
        return .deferred
    }

    /// Create, in two hops: the store's end marks (ids of ended sessions are not reused) are
    /// read on the reader thread, then the room is created on the loop, which checks the
    /// engine again (another call may have created it meanwhile).
    private func deferCreate(_ id: RoomID, settings: RoomSettings, call: Call, backend: OperationsAccess) {
        let host = LoopConfined(backend.host)
        reader.read(store: call.store, after: call.store.lastTicket) {
            let ended: Instant?
            do {
                ended = try call.store.endedAt(id)
            } catch {
                return call.respond(call.refused(APIError.internalError.about(id)))
            }
            if ended != nil { return call.respond(call.refused(APIError.roomEnded.about(id))) }
            call.transport.post { transport in
                let backend = OperationsAccess(host: host.value, transport: transport)
                let now = RoomHost.now()
                let response: HTTPResponse
                do throws(APIError) {
                    response = call.done(try Rooms.create(id, settings: settings, backend: backend, now: now), at: now)
                } catch {
                    response = call.refused(error, at: now)
                }
                transport.respond(to: call.exchange, with: response)
            }
        }
    }

    /// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
    static func bearerToken(_ header: String?) -> String? {
        guard let header else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }
}

// MARK: - Routing

/// A successful endpoint's answer.
struct Answer {
    var status: Int
    var body: JSONValue
    /// The room to audit under when the path named none (a created room).
    var room: String? = nil
}

/// One API error: the HTTP status, the JSON code and message, and the code the audit row
/// carries (`AuditRecord` outcomes use the engine's codes).
struct APIError: Error {
    var status: Int
    var code: String
    var message: String
    var auditCode: ErrorCode
    /// The room the audit row names when the path named none (a room being created).
    var room: String? = nil

    init(_ status: Int, _ code: String, _ message: String, _ auditCode: ErrorCode) {
        self.status = status
        self.code = code
        self.message = message
        self.auditCode = auditCode
    }

    var response: HTTPResponse {
        let body = JSONValue.object([("code", .string(code)), ("message", .string(message))])
        return HTTPResponse(status: status, contentType: "application/json", body: body.encoded())
    }

    static let unauthenticated = APIError(
        401, "unauthenticated", "A valid admin token is required: Authorization: Bearer <token>.",
        .authenticationFailed)
    static let rateLimited = APIError(
        429, "rate-limited", "Too many failed requests from this address; try again later.", .rateLimited)
    static let notFound = APIError(404, "not-found", "No such endpoint.", .invalidArgument)
    static let unknownRoom = APIError(404, "unknown-room", "No such room.", .invalidArgument)
    static let roomExists = APIError(409, "room-exists", "An open room already has this id.", .invalidArgument)
    static let roomEnded = APIError(
        409, "room-ended", "The session with this id has ended (room ids are not reused).", .roomEnded)
    static let badJSON = APIError(400, "bad-json", "The body is not a JSON object.", .badJSON)
    static let bodyTooLarge = APIError(
        413, "body-too-large", "The body is larger than \(OperationsAPI.maxBodyBytes) bytes.", .invalidArgument)
    static let internalError = APIError(500, "internal-error", "The records could not be read.", .internalError)

    func about(_ room: RoomID) -> APIError {
        var copy = self
        copy.room = room.rawValue
        return copy
    }

    static func methodNotAllowed(_ allowed: String) -> APIError {
        APIError(405, "method-not-allowed", "This endpoint accepts \(allowed) only.", .invalidArgument)
    }
    static func badRequest(_ message: String) -> APIError { APIError(400, "bad-request", message, .badMessage) }
    static func invalidSettings(_ message: String) -> APIError {
        APIError(400, "invalid-settings", message, .invalidArgument)
    }
}

/// What a request asks for, decided from its method and path alone.
private struct Route {
    enum Endpoint {
        case listRooms, createRoom, getRoom(RoomID), endRoom(RoomID), attendance(RoomID), audit(RoomID)
    }

    /// The endpoint name in the audit action (`api:<name>`).
    let name: String
    /// The room named in the path, if any (valid or not, as audited).
    let room: String?
    let endpoint: Result<Endpoint, APIError>

    init(_ request: HTTPRequest) {
        let rest = request.path.dropFirst(OperationsAPI.prefix.count)
        let segments = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let method = request.method
        func only(_ allowed: String, _ endpoint: Endpoint) -> Result<Endpoint, APIError> {
            method == allowed ? .success(endpoint) : .failure(.methodNotAllowed(allowed))
        }
        switch segments.count {
        case 1 where segments[0] == "rooms":
            room = nil
            switch method {
            case "GET": (name, endpoint) = ("list-rooms", .success(.listRooms))
            case "POST": (name, endpoint) = ("create-room", .success(.createRoom))
            default: (name, endpoint) = ("rooms", .failure(.methodNotAllowed("GET, POST")))
            }
        case 2 where segments[0] == "rooms":
            room = Self.auditable(segments[1])
            name = "get-room"
            endpoint = Self.roomID(segments[1]).flatMap { only("GET", .getRoom($0)) }
        case 3 where segments[0] == "rooms" && ["end", "attendance", "audit"].contains(segments[2]):
            room = Self.auditable(segments[1])
            let id = Self.roomID(segments[1])
            switch segments[2] {
            case "end":
                name = "end-room"
                endpoint = id.flatMap { only("POST", .endRoom($0)) }
            case "attendance":
                name = "get-attendance"
                endpoint = id.flatMap { only("GET", .attendance($0)) }
            default:
                name = "export-audit"
                endpoint = id.flatMap { only("GET", .audit($0)) }
            }
        default:
            (name, room, endpoint) = ("unknown", nil, .failure(.notFound))
        }
    }

    /// Room ids as in `/v1/rooms/{room}`: 1–64 of `A-Z a-z 0-9 _ -`. Any other id names no room.
    static func roomID(_ text: String) -> Result<RoomID, APIError> {
        isRoomID(text) ? .success(RoomID(text)) : .failure(.unknownRoom)
    }

    static func isRoomID(_ text: String) -> Bool {
        (1...64).contains(text.utf8.count)
            && text.utf8.allSatisfy {
                ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 || $0 == 95
            }
    }

    /// The room an audit row names: the path's id when it is a valid one, else `-`.
    static func auditable(_ text: String) -> String? { isRoomID(text) ? text : nil }
}

extension Route.Endpoint {
    /// The endpoints answered on the loop from the rooms alone.
    fileprivate func run(_ request: HTTPRequest, backend: OperationsAccess, now: Instant) throws(APIError) -> Answer {
        switch self {
        case .listRooms:
            return try Rooms.list(request, backend: backend)
        case .getRoom(let id):
            guard let room = backend.rooms[id] else { throw .unknownRoom }
            return Answer(status: 200, body: Rooms.object(room))
        case .endRoom(let id):
            guard let room = backend.rooms[id] else { throw .unknownRoom }
            guard !room.isEnded, backend.endRoom(id, at: now), let ended = backend.rooms[id] else {
                throw .roomEnded
            }
            return Answer(status: 200, body: Rooms.object(ended))
        case .createRoom, .attendance, .audit:
            preconditionFailure("answered through the reader thread (OperationsAPI.handle)")
        }
    }
}

// MARK: - Answering from either thread

/// One authenticated call, as far as answering and auditing it go: safe to use on the reader
/// thread (the store's appends and `Transport.post` are thread-safe).
struct Call: Sendable {
    let exchange: HTTPExchangeID
    let transport: Transport
    let store: Store
    let action: String
    /// The room named in the path, if any.
    let room: String?
    let operatorID: String

    /// Audits the call as done; the response.
    func done(_ answer: Answer, at now: Instant = RoomHost.now()) -> HTTPResponse {
        audit(.done, reason: "operator:\(operatorID)", room: answer.room, at: now)
        return HTTPResponse(status: answer.status, contentType: "application/json", body: answer.body.encoded())
    }

    /// Audits the call as refused; the error response.
    func refused(_ error: APIError, at now: Instant = RoomHost.now()) -> HTTPResponse {
        audit(.refused(error.auditCode), reason: "operator:\(operatorID) code:\(error.code)", room: error.room, at: now)
        return error.response
    }

    func audit(_ outcome: AuditRecord.Outcome, reason: String, room: String?, at now: Instant) {
        store.append(
            AuditRecord(
                at: now, room: RoomID(room ?? self.room ?? "-"), actor: nil, subject: nil, action: action,
                outcome: outcome, reason: reason))
    }

    /// Hands the response to the loop thread (the one cross-thread way into the transport).
    func respond(_ response: HTTPResponse) {
        let exchange = self.exchange
        transport.post { $0.respond(to: exchange, with: response) }
    }
}

// MARK: - Rooms

private enum Rooms {
    static func list(_ request: HTTPRequest, backend: OperationsAccess) throws(APIError) -> Answer {
        let query = Query(request.query)
        var phase: String? = nil
        if let p = query["phase"] {
            guard p == "open" || p == "ended" else {
                throw .badRequest("Query parameter phase must be open or ended.")
            }
            phase = p
        }
        let rooms = backend.rooms.values
            .filter { phase == nil || (phase == "ended") == $0.isEnded }
            .sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        let items: [JSONValue] = rooms.map { room in
            var inRoom = 0
            var waiting = 0
            for seat in room.seats.values {
                if seat.placement == .room { inRoom += 1 } else { waiting += 1 }
            }
            return .object(
                header(room) + [
                    ("members", .integer(Int64(inRoom))), ("waiting", .integer(Int64(waiting))),
                    ("locked", .bool(room.locked)), ("staffPresent", .bool(room.staffPresent)),
                ])
        }
        return Answer(status: 200, body: .object([("rooms", .array(items))]))
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
                guard case .string(let text) = value, Route.isRoomID(text) else {
                    throw .badRequest("id must be a string of 1 to 64 characters A-Z a-z 0-9 _ -.")
                }
                id = RoomID(text)
            case "settings":
                guard case .object(let s) = value else { throw .invalidSettings("settings must be an object.") }
                try apply(s, to: &settings)
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
        guard backend.createRoom(id, settings: settings, at: now), let room = backend.rooms[id] else {
            throw APIError.roomExists.about(id)
        }
        return Answer(status: 201, body: object(room), room: id.rawValue)
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
                        + "maxWaiting, opensAt, closesAt).")
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
        var endedAt = JSONValue.null
        if case .ended(let at) = room.phase { endedAt = .integer(at.milliseconds) }
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
        let consentOK = room.settings.consentVersion == nil || seat.consentVersion == room.settings.consentVersion
        let locationOK = !room.settings.requireLocation || seat.location != nil
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
            ("ready", waiting ? .bool(consentOK && locationOK) : .null),
        ])
    }
}

// MARK: - Records (reader thread)

private enum Records {
    /// A room is known to the records if the engine has it or the store holds rows of its
    /// session (attendance, or audit rows other than API calls and refused connections).
    static func attendance(
        _ id: RoomID, store: Store, engineKnows: Bool, engineEnded: Instant?, now: Instant
    ) throws(APIError) -> Answer {
        let records: [AttendanceRecord]
        let audit: [AuditRecord]
        let ended: Instant?
        do {
            records = try store.attendanceRecords(room: id)
            audit = try store.auditRecords(room: id).map(\.record)
            ended = try engineEnded ?? store.endedAt(id)
        } catch {
            throw .internalError
        }
        guard engineKnows || !records.isEmpty || audit.contains(where: isSessionRecord) else {
            throw .unknownRoom
        }
        let until = ended ?? now
        let ledger = AttendanceLedger(records: records, until: until)
        let recomputed = AttendanceLedger(auditRecords: audit, until: until)
        let members: [JSONValue] = ledger.members.map { m in
            .object([
                ("userId", .string(m.userID.rawValue)), ("role", .string(m.role.rawValue)),
                ("firstAdmitted", m.firstAdmitted.map { .integer($0.milliseconds) } ?? .null),
                ("lastLeft", m.lastLeft.map { .integer($0.milliseconds) } ?? .null),
                ("intervals", .integer(Int64(m.inRoom.count))),
                ("minutesInRoom", .number(minutes(m.roomMilliseconds))),
                ("minutesWaiting", .number(minutes(m.waitingMilliseconds))),
                ("msInRoom", .integer(m.roomMilliseconds)), ("msWaiting", .integer(m.waitingMilliseconds)),
            ])
        }
        return Answer(
            status: 200,
            body: .object([
                ("room", .string(id.rawValue)), ("participantCount", .integer(Int64(ledger.participantCount))),
                ("endedAt", ended.map { .integer($0.milliseconds) } ?? .null), ("members", .array(members)),
                ("matchesAuditTrail", .bool(recomputed.members == ledger.members)),
            ]))
    }

    /// Whether a row comes from a session (the engine), not from a refused connection or an API
    /// call naming the room: only sessions make a room known to the records.
    static func isSessionRecord(_ record: AuditRecord) -> Bool {
        !record.action.hasPrefix("api:") && record.action != Store.authenticateAction
            && record.action != AuthenticationFailureFolding.summaryAction
    }

    /// Minutes with two decimals, as `hearthd attendance` prints them.
    static func minutes(_ ms: Int64) -> Double { (Double(ms) / 600).rounded() / 100 }

    /// The export's `since` (loop thread, before any read).
    static func since(_ request: HTTPRequest) throws(APIError) -> Instant? {
        guard let text = Query(request.query)["since"] else { return nil }
        guard let ms = Int64(text), ms >= 0 else {
            throw .badRequest("Query parameter since must be milliseconds since the epoch (a whole number).")
        }
        return Instant(milliseconds: ms)
    }

    /// Bytes gathered before they go to the stream: each hand-over wakes the loop once.
    static let exportBatchBytes = 65_536

    /// The audit export, streamed: the status is decided first (is the room known?), then the
    /// rows are read with a cursor and encoded one by one into a bounded `HTTPBodyStream`, so
    /// neither the rows nor the body are ever all in memory and the loop only copies bytes out.
    /// The call is audited once the body is done (so an export never contains its own row).
    static func exportAudit(_ id: RoomID, since: Instant?, engineKnows: Bool, call: Call) {
        let store = call.store
        do {
            guard try engineKnows || store.containsAuditRecord(room: id, where: isSessionRecord) else {
                return call.respond(call.refused(.unknownRoom))
            }
        } catch {
            return call.respond(call.refused(.internalError))
        }
        let stream = HTTPBodyStream()
        call.respond(HTTPResponse(status: 200, contentType: "application/json", stream: stream))
        // Room ids are 1-64 of A-Z a-z 0-9 _ - (checked by the route): nothing to escape.
        var buffer = Array(#"{"room":""#.utf8) + Array(id.rawValue.utf8) + Array(#"","records":["#.utf8)
        var first = true
        do {
            try store.forEachAuditRecord(room: id, since: since) { row in
                if !first { buffer.append(UInt8(ascii: ",")) }
                first = false
                buffer += record(row).encoded()
                guard buffer.count >= exportBatchBytes else { return true }
                defer { buffer.removeAll(keepingCapacity: true) }
                return stream.write(buffer)
            }
        } catch {
            stream.fail()
            call.audit(
                .refused(.internalError), reason: "operator:\(call.operatorID) code:internal-error", room: nil,
                at: RoomHost.now())
            return
        }
        buffer += Array("]}".utf8)
        if !stream.isCancelled, stream.write(buffer) { stream.finish() }
        call.audit(.done, reason: "operator:\(call.operatorID)", room: nil, at: RoomHost.now())
    }

    static func record(_ row: StoredAudit) -> JSONValue {
        func text(_ s: String?) -> JSONValue { s.map(JSONValue.string) ?? .null }
        let r = row.record
        var code: String? = nil
        if case .refused(let c) = r.outcome { code = c.rawValue }
        return .object([
            ("id", .integer(row.id)), ("at", .integer(r.at.milliseconds)), ("room", .string(r.room.rawValue)),
            ("action", .string(r.action)), ("outcome", .string(code == nil ? "done" : "refused")),
            ("code", text(code)), ("reason", text(r.reason)),
            ("actorUserId", text(r.actor?.userID.rawValue)), ("actorMember", text(r.actor?.id.description)),
            ("actorRole", text(r.actor?.role.rawValue)), ("subjectUserId", text(r.subject?.userID.rawValue)),
            ("subjectMember", text(r.subject?.id.description)), ("subjectRole", text(r.subject?.role.rawValue)),
            ("hash", .string(row.hash)),
        ])
    }
}

// MARK: - The reader thread

/// The operations API's reader: one thread of its own that runs the API's reads of the store,
/// one at a time in arrival order, so the event loop never waits on the disk. Each read first
/// waits until the records queued before its call are committed (the writer's ticket), so it
/// sees everything the rooms had done when the call arrived.
///
/// The thread runs at a lower scheduling priority (nice +10) than the event loop: an export is
/// bulk work (a 50,000-row export is ~16 MB of JSON), and on a busy machine it must give the CPU
/// to the rooms rather than share it evenly with them.
///
/// `@unchecked Sendable`: `jobs` and `started` are touched only with `condition` held.
final class RecordReader: @unchecked Sendable {
    /// How long a read waits for the writer before it reads what is committed (a stalled disk).
    static let commitWait = 2.0
    static let niceness: Int32 = 10

    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var started = false

    func read(store: Store, after ticket: UInt64, _ job: @escaping @Sendable () -> Void) {
        condition.withLock {
            jobs.append {
                _ = store.waitCommitted(ticket, timeout: Self.commitWait)
                job()
            }
            if !started {
                started = true
                let thread = Thread { [self] in run() }
                thread.name = "hearth-api-reader"
                thread.start()
            }
            condition.signal()
        }
    }

    private func run() {
        // On Linux the nice value is per thread, and `who` 0 is the calling thread: this lowers
        // the reader alone.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, Self.niceness)
        while true {
            let job = condition.withLock {
                while jobs.isEmpty { condition.wait() }
                return jobs.removeFirst()
            }
            job()
        }
    }
}

/// Query arguments (`a=1&b=2`, already URL-decoded by the transport); the first of a name wins.
private struct Query {
    private var values: [String: String] = [:]

    init(_ query: String) {
        for part in query.split(separator: "&") {
            let pair = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(pair[0])
            if values[name] == nil { values[name] = pair.count > 1 ? String(pair[1]) : "" }
        }
    }

    subscript(name: String) -> String? { values[name] }
}

// MARK: - Failed-request budget

/// Per source address, failed API requests (bad credentials, API disabled) as a token bucket:
/// beyond it, the address gets 429 until the bucket refills. Event-loop thread only.
private final class FailureBudget {
    private let burst: Int
    private let perSecond: Double
    private var buckets: [String: TokenBucket] = [:]

    init(burst: Int, perSecond: Double) {
        self.burst = burst
        self.perSecond = perSecond
    }

    func allowed(_ address: String, now: Instant) -> Bool {
        guard var bucket = buckets[address] else { return true }
        defer { buckets[address] = bucket }
        return bucket.available(now: now)
    }

    func failed(_ address: String, now: Instant) {
        var bucket = buckets[address] ?? TokenBucket(burst: burst, perSecond: perSecond, now: now)
        _ = bucket.take(now: now)
        buckets[address] = bucket
        if buckets.count > 10_000 {
            buckets = buckets.filter { _, b in
                var b = b
                return !b.isFull(now: now)
            }
        }
    }
}

// MARK: - JSON (jansson)

/// A JSON value, built in Swift and written (or read) through jansson. Objects keep their
/// keys in order.
indirect enum JSONValue {
    case object([(String, JSONValue)])
    case array([JSONValue])
    case string(String)
    case integer(Int64)
    case number(Double)
    case bool(Bool)
    case null

    /// Compact JSON bytes (reals with up to 15 significant digits).
    func encoded() -> [UInt8] {
        guard let root = jansson() else { return Array(#"{"code":"internal-error","message":"encoding"}"#.utf8) }
        defer { cj_decref(root) }
        // JSON_REAL_PRECISION(15): `0.07` rather than `0.070000000000000007`.
        let flags = cj_compact_flags() | (15 << 11)
        let size = json_dumpb(root, nil, 0, flags)
        guard size > 0 else { return [] }
        var out = [UInt8](repeating: 0, count: size)
        let written = out.withUnsafeMutableBytes { buffer in
            json_dumpb(root, buffer.baseAddress!.assumingMemoryBound(to: CChar.self), size, flags)
        }
        return Array(out.prefix(written))
    }

    private func jansson() -> UnsafeMutablePointer<json_t>? {
        switch self {
        case .object(let fields):
            let object = json_object()
            for (key, value) in fields {
                guard let child = value.jansson() else { continue }
                _ = key.withCString { json_object_set_new(object, $0, child) }
            }
            return object
        case .array(let items):
            let array = json_array()
            for item in items {
                if let child = item.jansson() { json_array_append_new(array, child) }
            }
            return array
        case .string(let text):
            var text = text
            return text.withUTF8 { utf8 in
                utf8.withMemoryRebound(to: CChar.self) { chars in
                    guard let base = chars.baseAddress, !chars.isEmpty else { return json_string("") }
                    return json_stringn(base, chars.count)
                }
            }
        case .integer(let n): return json_integer(json_int_t(n))
        case .number(let x): return json_real(x)
        case .bool(let b): return cj_boolean(b ? 1 : 0)
        case .null: return cj_null()
        }
    }

    /// Parses a body: nil unless it is valid JSON (duplicate keys refused).
    static func parse(_ bytes: [UInt8]) -> JSONValue? {
        var error = json_error_t()
        let root = bytes.withUnsafeBytes { buffer in
            json_loadb(
                buffer.baseAddress?.assumingMemoryBound(to: CChar.self), buffer.count, cj_decode_flags(), &error)
        }
        guard let root else { return nil }
        defer { cj_decref(root) }
        return value(of: root)
    }

    private static func value(of j: UnsafeMutablePointer<json_t>) -> JSONValue {
        if cj_is_object(j) != 0 {
            var fields: [(String, JSONValue)] = []
            var iterator = json_object_iter(j)
            while let it = iterator {
                let key = String(
                    decoding: UnsafeRawBufferPointer(
                        start: json_object_iter_key(it), count: json_object_iter_key_len(it)),
                    as: UTF8.self)
                if let child = json_object_iter_value(it) { fields.append((key, value(of: child))) }
                iterator = json_object_iter_next(j, it)
            }
            return .object(fields)
        }
        if cj_is_array(j) != 0 {
            return .array((0..<json_array_size(j)).compactMap { json_array_get(j, $0).map(value(of:)) })
        }
        if cj_is_string(j) != 0 {
            return .string(
                String(
                    decoding: UnsafeRawBufferPointer(start: json_string_value(j), count: json_string_length(j)),
                    as: UTF8.self))
        }
        if cj_is_integer(j) != 0 { return .integer(Int64(json_integer_value(j))) }
        if cj_is_real(j) != 0 { return .number(json_real_value(j)) }
        if cj_is_boolean(j) != 0 { return .bool(cj_is_true(j) != 0) }
        return .null
    }
}
