import Foundation
import Synchronization

/// The byte pipe to Janus: its Unix-socket API transport (`pfunix`, SOCK_SEQPACKET, one JSON
/// message per datagram). Opened and written on the event-loop thread, never blocking it
/// (`MSG_DONTWAIT`: a full socket buffer counts as a lost link); read by a thread of its own,
/// which hands every message, and the end of the link, to `onEvent` (the server posts them to
/// the event-loop thread). Knows nothing of what the messages mean: that is `SFUBroker`'s.
final class JanusLink: Sendable {
    enum Event: Sendable {
        case message([UInt8])
        /// The link is gone (Janus stopped, or the socket failed): no more events follow.
        case down
    }

    /// Which link an event came from: after a reconnect, events of the old one are ignored.
    let generation: UInt64
    private let fd: Mutex<Int32>

    /// Connects to the socket at `path`; nil (with the reason) when nothing listens there.
    static func connect(
        path: String, generation: UInt64, onEvent: @escaping @Sendable (UInt64, Event) -> Void
    ) -> Result<JanusLink, JanusLinkError> {
        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(JanusLinkError(errno: errno)) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            return .failure(JanusLinkError(errno: ENAMETOOLONG))
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0 else {
            let error = errno
            close(fd)
            return .failure(JanusLinkError(errno: error))
        }
        var size: Int32 = 4 << 20
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        let link = JanusLink(fd: fd, generation: generation)
        let reader = Thread { link.read(onEvent: onEvent) }
        reader.name = "hearth-janus"
        reader.start()
        return .success(link)
    }

    private init(fd: Int32, generation: UInt64) {
        self.fd = Mutex(fd)
        self.generation = generation
    }

    /// Sends one message. False when it could not (the link is then shut down, and `down` follows).
    @discardableResult
    func send(_ message: [UInt8]) -> Bool {
        fd.withLock { fd in
            guard fd >= 0 else { return false }
            let sent = message.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
            }
            if sent == message.count { return true }
            shutdown(fd, Int32(SHUT_RDWR))
            return false
        }
    }

    /// Ends the link: the reader wakes, reports `down` and closes the socket.
    func shutDown() {
        fd.withLock { fd in if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)) } }
    }

    private func read(onEvent: @Sendable (UInt64, Event) -> Void) {
        let socket = fd.withLock { $0 }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            onEvent(generation, .message(Array(buffer[0..<n])))
        }
        fd.withLock { fd in
            close(fd)
            fd = -1
        }
        onEvent(generation, .down)
    }
}

struct JanusLinkError: Error, CustomStringConvertible {
    var errno: Int32
    var description: String { String(cString: strerror(errno)) }
}
