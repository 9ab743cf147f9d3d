import HearthCore
import HearthStore
import HearthTransport

/// What the operations API may reach, on the event-loop thread: the rooms (read), room
/// creation and ending (journaled engine inputs), and the record store.
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

/// The operations API under `/api/v1/`: HTTPS on the same port, admin credentials only.
struct OperationsAPI {
    static let prefix = "/api/v1/"

    init(configuration: HearthConfiguration) {}

    func handle(_ request: HTTPRequest, backend: OperationsAccess, now: Instant) -> HTTPResponse {
        HTTPResponse(
            status: 404, contentType: "application/json", text: #"{"code":"not-found","message":"No such endpoint."}"#)
    }
}
