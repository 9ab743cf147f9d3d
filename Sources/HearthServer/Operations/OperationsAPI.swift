import Foundation
import HearthAuth
import HearthCore
import HearthStore
import HearthTransport
import HearthWire

/// What the operations API may reach, on the event-loop thread: the rooms (read), room
/// creation and ending (journaled engine inputs), and the record store (appends only: reads of
/// the disk happen on the API's reader thread, never here).
struct OperationsAccess {
    let host: RoomHost
    let transport: Transport

    var rooms: [RoomID: Room] { host.rooms }
    var defaultRoomSettings: RoomSettings { host.defaultRoomSettings }
    /// Whether a media server is configured (rooms may use the SFU).
    var sfuEnabled: Bool { host.sfu != nil }
    var store: any RecordStore { host.recordStore }

    func createRoom(_ id: RoomID, settings: RoomSettings, at: Instant) -> RoomHost.Creation {
        host.createRoom(id, settings: settings, at: at, transport: transport)
    }

    /// In a cluster: the room must be this node's before a route reads or ends it. If no live
    /// node holds it, a claim starts and the call gets `room-elsewhere` (try again: by then the
    /// room is here); also while another node holds it.
    func hold(_ id: RoomID, at: Instant) throws(APIError) {
        guard host.hold(id, at: at, transport: transport) == .held else { throw APIError.roomElsewhere.about(id) }
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
///
/// This file routes and authenticates; the endpoints are in `OperationsAPI+Rooms.swift` (list,
/// create, get, end) and `OperationsAPI+Records.swift` (attendance, audit export), the reads of
/// the disk in `RecordReader.swift`.
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
        guardrail = FailureBudget(configuration.rateLimits)
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
        guard guardrail.allows(request.peerAddress, now: now) else {
            return .response(APIError.rateLimited.response)
        }
        guard let verifier else {
            guardrail.spend(request.peerAddress, now: now)
            audit(.refused(.forbidden), reason: "api-disabled")
            return .response(APIError(503, "api-disabled", disabledMessage, .forbidden).response)
        }

        // Authentication: one answer (401) whatever failed; the reason goes to the audit trail.
        let claims: AdminClaims
        switch Self.bearerToken(request.headers["authorization"]) {
        case nil:
            guardrail.spend(request.peerAddress, now: now)
            audit(.refused(.authenticationFailed), reason: "credential:missing")
            return .response(APIError.unauthenticated.response)
        case let token?:
            let date = Date(timeIntervalSince1970: Double(now.milliseconds) / 1000)
            switch verifier.verify(token, now: date) {
            case .failure(let error):
                guardrail.spend(request.peerAddress, now: now)
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
            case .listRooms where backend.host.shared != nil:
                let phase = try Rooms.phaseFilter(request)
                deferClusterList(phase: phase, call: call, backend: backend)
            case .createRoom:
                let (id, settings) = try Rooms.prepareCreate(request, backend: backend)
                deferCreate(id, settings: settings, call: call, backend: backend)
            case .attendance(let id):
                let engineEnded = backend.rooms[id]?.endedAt
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

    /// The list in a cluster, in two hops: the shared tables on the reader thread, then this
    /// node's own rooms (their live counts) on the loop.
    private func deferClusterList(phase: String?, call: Call, backend: OperationsAccess) {
        guard let shared = backend.host.shared else { return }
        let host = LoopConfined(backend.host)
        reader.read(store: call.store, after: call.store.lastTicket) {
            let rooms: [SharedJournal.SharedRoom]
            do {
                rooms = try shared.rooms()
            } catch {
                return call.respond(call.refused(APIError.internalError))
            }
            call.transport.post { transport in
                let backend = OperationsAccess(host: host.value, transport: transport)
                let now = RoomHost.now()
                let answer = Rooms.clusterList(rooms, phase: phase, backend: backend, node: shared.node)
                transport.respond(to: call.exchange, with: call.done(answer, at: now))
            }
        }
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
    static let roomElsewhere = APIError(
        503, "room-elsewhere",
        "Another node of the cluster serves this room, or the shared store cannot be reached; try again.",
        .serverBusy)

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
struct Route {
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

    /// Room ids as in `/v1/rooms/{room}` (`RoomID(validating:)`). Any other id names no room.
    static func roomID(_ text: String) -> Result<RoomID, APIError> {
        RoomID(validating: text).map { .success($0) } ?? .failure(.unknownRoom)
    }

    static func auditable(_ text: String) -> String? { RoomID.isValid(text) ? text : nil }
}

// MARK: - Answering from either thread

/// One authenticated call, as far as answering and auditing it go: safe to use on the reader
/// thread (the store's appends and `Transport.post` are thread-safe).
struct Call: Sendable {
    let exchange: HTTPExchangeID
    let transport: Transport
    let store: any RecordStore
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

struct Query {
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
