import XCTest

@testable import HearthTransport

#if canImport(Glibc)
    import Glibc
#endif

/// The listen socket hands over each connection as its documentation says: non-blocking,
/// close-on-exec, Nagle off; and `acceptAll` stops at an empty queue or at its limit.
final class ListenerTests: XCTestCase {
    /// The port of `listener`'s socket (it was opened on port 0: the kernel chose one).
    private func port(_ listener: Listener) -> UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener.fd, $0, &length) }
        }
        return UInt16(bigEndian: address.sin_port)
    }

    /// A blocking client socket connected to 127.0.0.1:`port` (loopback: the connection is in
    /// the listener's queue once `connect` returns).
    private func connectClient(_ port: UInt16) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        XCTAssertEqual(result, 0, String(cString: strerror(errno)))
        return fd
    }

    func testAcceptedConnectionsAreNonBlockingCloseOnExecAndWithoutNagle() throws {
        let listener = try Listener.open(host: "127.0.0.1", port: 0)
        let clients = try (0..<3).map { _ in try connectClient(port(listener)) }
        defer { clients.forEach { _ = close($0) } }

        var accepted: [Int32] = []
        XCTAssertNil(listener.acceptAll(limit: 2) { accepted.append($0) })
        XCTAssertEqual(accepted.count, 2, "the limit")
        XCTAssertNil(listener.acceptAll { accepted.append($0) })
        XCTAssertEqual(accepted.count, 3, "the rest of the queue, then the empty queue ends the loop")
        defer { accepted.forEach { _ = close($0) } }

        for fd in accepted {
            XCTAssertNotEqual(fcntl(fd, F_GETFL) & O_NONBLOCK, 0, "non-blocking")
            XCTAssertNotEqual(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0, "close-on-exec")
            var noDelay: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            XCTAssertEqual(getsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, &length), 0)
            XCTAssertNotEqual(noDelay, 0, "Nagle off")
        }
    }
}
