import CLws
import Dispatch
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A TLS WebSocket + HTTP server over libwebsockets.
///
/// libwebsockets runs its event loop (libev, epoll) on a dedicated thread and
/// every libwebsockets call happens there. The delegate is called on that
/// thread, and the members documented as "lws thread only" must be called
/// from it (from a delegate method or a ``post(_:)`` job).
///
/// Thread-safe members: ``init(configuration:delegate:logger:)``,
/// ``start()``, ``stop()``, ``post(_:)``, ``isOnLoopThread``. An HTTP response worked
/// out on another thread comes back through ``post(_:)`` and ``respond(to:with:)``.
///
/// The design allows several workers (one lws context and thread each,
/// worker index in the low bits of ``SessionID``); one worker is implemented.
/// With several workers, a session's lws-thread-only calls would have to run
/// on the thread of the worker that owns it.
///
/// A started transport keeps itself (and its delegate) alive until ``stop()``
/// returns.
public final class Transport: @unchecked Sendable {
    // @unchecked: mutable state is either behind `lifecycle`/`inbox` locks or
    // confined to the lws thread (the worker).

    public let configuration: TransportConfiguration
    let logger: Logger
    let inbox: WorkerInbox

    private enum Lifecycle: Sendable { case idle, starting, running(pthread_t), stopping, stopped }
    private let lifecycle = Mutex<Lifecycle>(.idle)
    private let loopThread = Atomic<UInt>(0)

    /// The delegate until the worker takes it over; the worker; both touched
    /// only by start/stop (serialized by `lifecycle`) and the lws thread.
    private var delegate: (any TransportDelegate)?
    private var worker: Worker?

    /// Validates the configuration. Nothing is opened until ``start()``.
    public init(configuration: TransportConfiguration, delegate: any TransportDelegate, logger: Logger) throws {
        let c = configuration
        guard (1...65_535).contains(c.port) else {
            throw TransportError.invalidConfiguration("port must be 1...65535")
        }
        guard !c.host.isEmpty else { throw TransportError.invalidConfiguration("host is empty") }
        guard c.maxMessageBytes > 0, c.sendQueueMaxMessages > 0, c.sendQueueMaxBytes > 0 else {
            throw TransportError.invalidConfiguration("limits must be positive")
        }
        guard (1...65_535).contains(c.pingIntervalSeconds), (1...65_535).contains(c.hangupSeconds),
            c.hangupSeconds > c.pingIntervalSeconds
        else {
            throw TransportError.invalidConfiguration("need 0 < pingIntervalSeconds < hangupSeconds <= 65535")
        }
        guard c.tickMilliseconds > 0 else { throw TransportError.invalidConfiguration("tickMilliseconds must be > 0") }
        guard c.maxHTTPBodyBytes >= 0 else { throw TransportError.invalidConfiguration("maxHTTPBodyBytes < 0") }
        if let problem = TransportConfiguration.tls12CipherProblem(c.tls12Ciphers) {
            throw TransportError.invalidConfiguration("tls12Ciphers: \(problem)")
        }
        self.configuration = configuration
        self.delegate = delegate
        self.logger = logger
        self.inbox = WorkerInbox()
    }

    // MARK: - Thread-safe API

    /// Creates the libwebsockets context (TLS vhost, listen socket) on a new
    /// thread and returns once it is listening. Raises RLIMIT_NOFILE's soft
    /// limit to the hard limit (capped at 1 Mi) first.
    ///
    /// Throws a ``TransportError`` if the certificate or key is unreadable, the
    /// address cannot be bound, or libwebsockets fails to start.
    public func start() throws {
        try lifecycle.withLock { state in
            guard case .idle = state else { throw TransportError.alreadyStarted }
            state = .starting
        }
        do {
            let thread = try launch()
            lifecycle.withLock { $0 = .running(thread) }
        } catch {
            lifecycle.withLock { $0 = .idle }
            throw error
        }
    }

    private func launch() throws -> pthread_t {
        let c = configuration
        guard access(c.certificatePath, R_OK) == 0 else {
            throw TransportError.certificateUnreadable(path: c.certificatePath)
        }
        guard access(c.privateKeyPath, R_OK) == 0 else {
            throw TransportError.privateKeyUnreadable(path: c.privateKeyPath)
        }
        let listener = try Listener.open(host: c.host, port: c.port)
        guard requestLinesAreObserved else {
            throw TransportError.contextCreationFailed(
                "SSL_read is not this executable's (link with -Xlinker --export-dynamic-symbol=SSL_read): "
                    + "request lines could not be checked as sent")
        }
        raiseFileLimit()

        guard let delegate else { throw TransportError.alreadyStarted }
        let worker = Worker(index: 0, transport: self, delegate: delegate, listener: listener)
        self.worker = worker
        let retained = Unmanaged.passRetained(worker).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, hearthTransportThreadMain, retained)
        guard rc == 0 else {
            Unmanaged<Worker>.fromOpaque(retained).release()
            self.worker = nil
            throw TransportError.threadCreationFailed(errno: rc)
        }
        worker.startup.wait()
        if let failure = worker.startupFailure.withLock({ $0 }) {
            pthread_join(thread, nil)
            self.worker = nil
            throw TransportError.contextCreationFailed(failure)
        }
        self.delegate = nil
        return thread
    }

    /// Graceful stop: ``TransportDelegate/transportWillStop(_:)``, then every
    /// session is closed with 1001 "server restarting" after its queued
    /// messages are flushed; the loop exits after at most ~1.5 s of grace and
    /// every remaining connection is dropped. Returns after the lws thread has
    /// exited. Sessions still open are reported closed before it returns.
    ///
    /// If called on the lws thread itself, it only requests the stop and
    /// returns at once (the thread cannot join itself). Calling it before
    /// ``start()`` makes the transport unusable; further calls return at once.
    public func stop() {
        let thread: pthread_t? = lifecycle.withLock { state in
            switch state {
            case .running(let t):
                state = .stopping
                return t
            case .idle:
                state = .stopped
                return nil
            case .starting, .stopping, .stopped:
                return nil
            }
        }
        guard let thread else { return }
        inbox.requestStop()
        if pthread_equal(thread, pthread_self()) != 0 {
            pthread_detach(thread)
            lifecycle.withLock { $0 = .stopped }
            return
        }
        pthread_join(thread, nil)
        worker = nil
        lifecycle.withLock { $0 = .stopped }
    }

    /// Runs `job` on the lws thread (from the inbox, woken with
    /// `lws_cancel_service`). Jobs run in order. Jobs posted before
    /// ``start()`` run once the loop starts; jobs posted after the loop has
    /// exited are dropped.
    public func post(_ job: @escaping @Sendable (Transport) -> Void) {
        inbox.post(job)
    }

    /// True when called on the lws thread.
    public var isOnLoopThread: Bool {
        let t = loopThread.load(ordering: .acquiring)
        return t != 0 && pthread_equal(pthread_t(t), pthread_self()) != 0
    }

    func setLoopThread(_ t: pthread_t) { loopThread.store(UInt(t), ordering: .releasing) }

    // MARK: - lws thread only

    private var loopWorker: Worker? {
        assert(isOnLoopThread, "Transport: lws-thread-only API called from another thread")
        return worker
    }

    /// lws thread only. Enqueues `message` for `session`. If the session's
    /// queue would exceed ``TransportConfiguration/sendQueueMaxMessages`` or
    /// ``TransportConfiguration/sendQueueMaxBytes``, the queue is dropped and
    /// the session is closed with 4008 "send queue overflow". Unknown or
    /// closing sessions are ignored.
    public func send(_ message: OutboundMessage, to session: SessionID) {
        loopWorker?.enqueue(message, to: session)
    }

    /// lws thread only. The single-session `send` for each session; the
    /// message bytes are shared, not copied.
    public func send(_ message: OutboundMessage, to sessions: some Sequence<SessionID>) {
        guard let w = loopWorker else { return }
        for s in sessions { w.enqueue(message, to: s) }
    }

    /// lws thread only. Flushes the messages already queued, then closes with
    /// `code` and `reason` (at most 123 UTF-8 bytes). A peer that does not
    /// read is dropped after 5 s. Later sends to the session are ignored.
    public func close(_ session: SessionID, code: UInt16, reason: String) {
        loopWorker?.requestClose(session, code: code, reason: reason)
    }

    /// lws thread only. Answers an HTTP request the delegate deferred (``HTTPReply/deferred``).
    /// Ignored when the exchange is gone (the client closed) or already answered; a streamed
    /// response's stream is then cancelled, so its producer stops.
    public func respond(to exchange: HTTPExchangeID, with response: HTTPResponse) {
        guard let w = loopWorker else {
            response.stream?.cancel()
            return
        }
        w.completeDeferred(exchange.rawValue, response)
    }

    /// lws thread only. A streamed body has more to write.
    func resumeHTTPStream(_ exchange: UInt64) { loopWorker?.resumeStream(exchange) }

    /// lws thread only. Number of open WebSocket sessions.
    public var openSessionCount: Int { loopWorker?.sessions.count ?? 0 }

    /// lws thread only. Runs another loop iteration at once instead of waiting for I/O (the
    /// delegate put work off to ``TransportDelegate/transportIterationEnded(_:)``).
    public func requestIteration() { loopWorker?.requestIteration() }

    /// lws thread only. Bytes queued for `session`, or nil if unknown.
    public func queuedBytes(_ session: SessionID) -> Int? {
        loopWorker?.sessions[session.rawValue]?.queuedBytes
    }

    /// lws thread only. Messages queued for `session`, or nil if unknown.
    public func queuedMessages(_ session: SessionID) -> Int? {
        loopWorker?.sessions[session.rawValue]?.queuedCount
    }

    /// lws thread only. Cumulative counters.
    public var counters: TransportCounters { loopWorker?.counters ?? TransportCounters() }

    // MARK: - helpers

    private func raiseFileLimit() {
        var rl = rlimit()
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        guard getrlimit(resource, &rl) == 0 else { return }
        let target = min(rl.rlim_max, 1 << 20)
        if rl.rlim_cur < target {
            let old = rl.rlim_cur
            rl.rlim_cur = target
            if setrlimit(resource, &rl) == 0 {
                logger.info("raised RLIMIT_NOFILE", metadata: ["from": "\(old)", "to": "\(target)"])
            }
        }
    }
}

/// The cross-thread inbox of one worker: jobs and the stop request, behind a
/// mutex; the lws context pointer (as bits) so posters can wake the loop.
final class WorkerInbox: Sendable {
    private struct State {
        var jobs: [@Sendable (Transport) -> Void] = []
        var stopRequested = false
        var context: UInt = 0
        var closed = false
    }

    private let state = Mutex(State())

    /// Appends a job and wakes the loop. Dropped once the loop has exited.
    func post(_ job: @escaping @Sendable (Transport) -> Void) {
        state.withLock { s in
            guard !s.closed else { return }
            s.jobs.append(job)
            if s.context != 0 { lws_cancel_service(OpaquePointer(bitPattern: s.context)) }
        }
    }

    func requestStop() {
        state.withLock { s in
            guard !s.closed else { return }
            s.stopRequested = true
            if s.context != 0 { lws_cancel_service(OpaquePointer(bitPattern: s.context)) }
        }
    }

    /// lws thread: publish the context; wake the loop if work is already waiting.
    func attach(context: OpaquePointer) {
        state.withLock { s in
            s.context = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(context)))
            if !s.jobs.isEmpty || s.stopRequested { lws_cancel_service(context) }
        }
    }

    /// lws thread, before the context is destroyed: no more wake-ups.
    func detach() {
        state.withLock { s in
            s.context = 0
            s.closed = true
            s.jobs.removeAll()
        }
    }

    /// lws thread: take the pending jobs and the stop flag.
    func drain() -> (jobs: [@Sendable (Transport) -> Void], stop: Bool) {
        state.withLock { s in
            let jobs = s.jobs
            s.jobs = []
            return (jobs, s.stopRequested)
        }
    }
}
