import Dispatch
import Synchronization

/// A response body produced on another thread while the lws thread writes it out: a bounded
/// pipe of byte chunks between one producer (any thread but the lws thread) and the transport.
///
/// The producer `write`s chunks and ends with `finish()` (or `fail()`, which cuts the response
/// off so the client sees it incomplete). When more than `capacity` bytes wait unwritten, `write`
/// blocks until the transport has taken some: memory stays bounded however large the body and
/// however slow the client. If the client goes away, or does not read for `stallTimeout`
/// seconds, the stream is cancelled and `write` returns false: the producer stops.
public final class HTTPBodyStream: Sendable {
    /// Bytes buffered before `write` waits for the transport.
    public static let defaultCapacity = 1 << 20

    private struct State {
        var chunks: [[UInt8]] = []
        var head = 0
        var buffered = 0
        var finished = false
        var failed = false
        var cancelled = false
        /// The transport found nothing to write and waits for `wake`.
        var consumerWaiting = false
        var producerWaiting = false
        var wake: (@Sendable () -> Void)? = nil
    }

    private let state = Mutex(State())
    private let space = DispatchSemaphore(value: 0)
    private let capacity: Int
    private let stallTimeout: Double

    public init(capacity: Int = HTTPBodyStream.defaultCapacity, stallTimeout: Double = 60) {
        self.capacity = max(1, capacity)
        self.stallTimeout = stallTimeout
    }

    // MARK: Producer

    /// Queues `bytes`; blocks while the buffer is full. False once the stream is cancelled (the
    /// client went away or stopped reading): stop producing.
    @discardableResult
    public func write(_ bytes: [UInt8]) -> Bool {
        guard !bytes.isEmpty else { return !state.withLock { $0.cancelled } }
        let (accepted, wake, mustWait) = state.withLock { s -> (Bool, (@Sendable () -> Void)?, Bool) in
            guard !s.cancelled, !s.finished else { return (false, nil, false) }
            s.chunks.append(bytes)
            s.buffered += bytes.count
            let wake = s.consumerWaiting ? s.wake : nil
            s.consumerWaiting = false
            let full = s.buffered > capacity
            if full { s.producerWaiting = true }
            return (true, wake, full)
        }
        wake?()
        guard accepted else { return false }
        guard mustWait else { return true }
        if space.wait(timeout: .now() + stallTimeout) == .timedOut {
            cancel()
            return false
        }
        return !state.withLock { $0.cancelled }
    }

    /// The body is complete.
    public func finish() { end(failed: false) }

    /// The body cannot be completed (a read failed midway): the transport cuts the response off.
    public func fail() { end(failed: true) }

    private func end(failed: Bool) {
        let wake = state.withLock { s -> (@Sendable () -> Void)? in
            guard !s.finished, !s.cancelled else { return nil }
            s.finished = true
            s.failed = failed
            let wake = s.consumerWaiting ? s.wake : nil
            s.consumerWaiting = false
            return wake
        }
        wake?()
    }

    // MARK: Transport side (lws thread)

    enum Take {
        /// Bytes to write; `last`: nothing follows.
        case bytes([UInt8], last: Bool)
        /// Nothing yet: `wake` will be called when there is.
        case waiting
        /// The producer failed: cut the response off.
        case failed
    }

    /// Called when data (or the end) arrives after a `take` found nothing.
    func attach(wake: @escaping @Sendable () -> Void) {
        state.withLock { $0.wake = wake }
    }

    /// Up to `max` bytes (at least one chunk's worth when available).
    func take(max: Int) -> Take {
        let (result, signal) = state.withLock { s -> (Take, Bool) in
            if s.failed { return (.failed, false) }
            guard s.head < s.chunks.count else {
                if s.finished { return (.bytes([], last: true), false) }
                s.consumerWaiting = true
                return (.waiting, false)
            }
            var out: [UInt8] = []
            while s.head < s.chunks.count {
                let chunk = s.chunks[s.head]
                if !out.isEmpty && out.count + chunk.count > max { break }
                out += chunk
                s.head += 1
            }
            s.buffered -= out.count
            if s.head == s.chunks.count {
                s.chunks.removeAll(keepingCapacity: true)
                s.head = 0
            }
            var signal = false
            if s.producerWaiting && s.buffered <= capacity / 2 {
                s.producerWaiting = false
                signal = true
            }
            return (.bytes(out, last: s.finished && s.head == s.chunks.count), signal)
        }
        if signal { space.signal() }
        return result
    }

    /// The response will not be written (the client went away): the producer's next `write`
    /// returns false, and a blocked one wakes.
    func cancel() {
        let signal = state.withLock { s -> Bool in
            s.cancelled = true
            s.chunks = []
            s.head = 0
            s.buffered = 0
            s.wake = nil
            let waiting = s.producerWaiting
            s.producerWaiting = false
            return waiting
        }
        if signal { space.signal() }
    }

    /// True once cancelled (for producers that want to stop early between writes).
    public var isCancelled: Bool { state.withLock { $0.cancelled } }
}
