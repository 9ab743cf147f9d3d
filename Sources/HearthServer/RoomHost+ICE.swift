import Foundation
import HearthAuth
import HearthCore
import HearthWire

extension RoomHost {
    /// The ICE servers a client should use (sent in `welcome` and `resumed`), with short-lived
    /// TURN credentials (coturn's REST scheme) named after the connection, not the person.
    func iceServers(for connection: ConnectionID?) -> [ICEServer] {
        configuration.ice.servers.map { server in
            guard server.turn, let secret = configuration.ice.turnSecret else { return ICEServer(urls: server.urls) }
            let user = "c\(connection?.rawValue ?? 0)"
            let (username, password) = turnCredentials(
                secret: secret, user: user, ttlSeconds: configuration.ice.turnTTLSeconds, now: Date())
            return ICEServer(urls: server.urls, username: username, credential: password)
        }
    }
}
