import HearthWire

/// The Janus API requests the broker sends: transactions, ids, and the JSON of each request.
extension SFUBroker {
    mutating func takeID() -> UInt64 {
        defer { nextID += 1 }
        return nextID
    }

    mutating func transaction(_ request: Pending) -> String {
        defer { nextTransaction += 1 }
        let id = "h\(nextTransaction)"
        pending[id] = request
        return id
    }

    /// A Janus API request (`create`, `attach`, `detach`, `trickle`, `keepalive`).
    mutating func janusRequest(
        _ janus: String, session: UInt64? = nil, handle: UInt64? = nil, extra: [(String, JSONValue)] = [],
        pending: Pending
    ) -> JSONValue {
        var fields: [(String, JSONValue)] = [
            ("janus", .string(janus)), ("transaction", .string(transaction(pending))),
            ("apisecret", .string(settings.apiSecret)),
        ]
        if let session { fields.append(("session_id", .integer(Int64(session)))) }
        if let handle { fields.append(("handle_id", .integer(Int64(handle)))) }
        return .object(fields + extra)
    }

    /// A VideoRoom request on a handle (`janus: message`).
    mutating func pluginMessage(
        _ handle: UInt64, session: UInt64, body: [(String, JSONValue)], jsep: JSONValue? = nil, label: String
    ) -> JSONValue {
        pluginMessage(handle, session: session, body: body, jsep: jsep, pending: .request(label))
    }

    mutating func pluginMessage(
        _ handle: UInt64, session: UInt64, body: [(String, JSONValue)], jsep: JSONValue? = nil, pending: Pending
    ) -> JSONValue {
        var extra: [(String, JSONValue)] = [("body", .object(body))]
        if let jsep { extra.append(("jsep", jsep)) }
        return janusRequest("message", session: session, handle: handle, extra: extra, pending: pending)
    }

    /// Janus's list of publisher feeds to subscribe to (`streams` of a join, `subscribe` of an
    /// update), in feed order.
    func feedList(_ feeds: Set<UInt64>) -> JSONValue {
        .array(feeds.sorted().map { .object([("feed", .integer(Int64($0)))]) })
    }

    func jsep(_ type: String, _ sdp: String) -> JSONValue {
        .object([("type", .string(type)), ("sdp", .string(sdp))])
    }

    /// The VideoRoom's own error in a reply (`plugindata.data.error_code`), if any.
    func pluginError(_ reply: JSONValue) -> (code: Int64, reason: String)? {
        guard let data = reply["plugindata"]?["data"], case .integer(let code)? = data["error_code"] else { return nil }
        let reason: String = if case .string(let r)? = data["error"] { r } else { "" }
        return (code, reason)
    }

    /// Attaches a new VideoRoom handle to Janus's session.
    mutating func attachHandle(session: UInt64, pending: Pending) -> JSONValue {
        janusRequest(
            "attach", session: session, extra: [("plugin", .string("janus.plugin.videoroom"))], pending: pending)
    }
}
