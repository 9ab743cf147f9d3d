import Foundation
import HearthStore
import Synchronization

/// The byte pipe to Janus: its Unix-socket API transport (`pfunix`, SOCK_SEQPACKET, one JSON
/// message per datagram). Opened on the event-loop thread, which only queues what it sends (a
/// writer thread of the link's own does the blocking writes, so a burst larger than the socket
/// buffer, e.g. every breakout of every room opening at once, waits for Janus instead of
/// blocking the loop); read by a thread of its own, which hands every message, and the end of
/// the link, to `onEvent` (the server posts them to the event-loop thread). Knows nothing of
/// what the messages mean: that is `SFUBroker`'s.
final class JanusLink: Sendable {
    enum Event: Sendable {
        case message([UInt8])
        /// The link is gone (Janus stopped, or the socket failed): no more events follow.
        case down
    }

    /// Which link an event came from: after a reconnect, events of the old one are ignored.
    let generation: UInt64
    private let fd: Mutex<Int32>
    /// Messages waiting for the writer thread, and their bytes (beyond `maxQueuedBytes` the
    /// link counts as lost: Janus has stopped reading).
    private let outbox = Mutex<(messages: [[UInt8]], bytes: Int, closed: Bool)>(([], 0, false))
    private let wake = DispatchSemaphore(value: 0)
    private let threadsRunning = Mutex(2)
    static let maxQueuedBytes = 64 << 20

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
        let link = JanusLink(fd: fd, generation: generation)
        startNamedThread("janus-read") { link.read(onEvent: onEvent) }
        startNamedThread("janus-write") { link.write() }
        return .success(link)
    }

    private init(fd: Int32, generation: UInt64) {
        self.fd = Mutex(fd)
        self.generation = generation
    }

    /// Queues one message for the writer thread. False when the link is closed, or when Janus
    /// has left more than `maxQueuedBytes` unread (the link is then shut down, and `down` follows).
    @discardableResult
    func send(_ message: [UInt8]) -> Bool {
        let queued = outbox.withLock { box -> Bool in
            guard !box.closed, box.bytes + message.count <= Self.maxQueuedBytes else { return false }
            box.messages.append(message)
            box.bytes += message.count
            return true
        }
        if queued {
            wake.signal()
        } else {
            shutDown()
        }
        return queued
    }

    private func write() {
        let socket = fd.withLock { $0 }
        defer { finished() }
        while true {
            wake.wait()
            let (batch, closed) = outbox.withLock { box -> ([[UInt8]], Bool) in
                defer {
                    box.messages = []
                    box.bytes = 0
                }
                return (box.messages, box.closed)
            }
            if closed { return }
            for message in batch {
                var sent = -1
                repeat {
                    sent = message.withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                } while sent < 0 && errno == EINTR
                if sent != message.count {
                    shutDown()
                    return
                }
            }
        }
    }

    /// The reader and the writer each call it once when they stop; the last one closes the socket.
    private func finished() {
        let last = threadsRunning.withLock { n -> Bool in
            n -= 1
            return n == 0
        }
        if last {
            fd.withLock { fd in
                close(fd); fd = -1
            }
        }
    }

    /// Ends the link: the reader wakes, reports `down` and closes the socket; the writer stops.
    func shutDown() {
        fd.withLock { fd in if fd >= 0 { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) } }
        outbox.withLock { $0.closed = true }
        wake.signal()
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
        // The writer stops too; the last of the two closes the socket.
        shutDown()
        finished()
        onEvent(generation, .down)
    }
}

struct JanusLinkError: Error, CustomStringConvertible {
    var errno: Int32
    var description: String { String(cString: strerror(errno)) }
}
