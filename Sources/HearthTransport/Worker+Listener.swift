import CLws

#if canImport(Glibc)
    import Glibc
#endif

/// Why the listener is stopped. It watches for connections again once no cause is left.
struct ListenerPauses: Equatable {
    enum Cause: CaseIterable {
        /// An accept failed (out of descriptors): until the next tick.
        case descriptors
        /// `maxHandshakesInFlight` connections are in their handshakes: until one is through.
        case handshakes
        /// The iteration's accept budget is spent: until the iteration ends.
        case budget
    }

    private(set) var causes: Set<Cause> = []

    var isListening: Bool { causes.isEmpty }

    /// Adds `cause`; true when the listener was listening until now (and must stop).
    mutating func pause(_ cause: Cause) -> Bool {
        let was = causes.isEmpty
        causes.insert(cause)
        return was
    }

    /// Takes `cause` away; true when it was the last one (and the listener must start).
    mutating func resume(_ cause: Cause) -> Bool {
        causes.remove(cause) != nil && causes.isEmpty
    }
}

/// The TLS listen socket: its accepts, the handshakes they start, and the pauses.
///
/// The socket is ours, not lws's (`Listener`), so that the loop decides when it is read: its
/// watcher is stopped while any `ListenerPauses` cause holds. Accepting starts a TLS handshake,
/// the costliest thing a connection does, so each iteration accepts only while its
/// `AcceptBudget` lasts, timed in the loop thread's CPU time (time the thread was stopped or
/// waiting does not count).
extension Worker {
    func startAccepting() {
        guard let loop, listenerPauses.isListening else { return }
        clws_io_start(loop, acceptWatcher, listener.fd, hearthAcceptCallback, Unmanaged.passUnretained(self).toOpaque())
    }

    private func pauseListener(_ cause: ListenerPauses.Cause) {
        if listenerPauses.pause(cause), let loop { clws_io_stop(loop, acceptWatcher) }
    }

    func resumeListener(_ cause: ListenerPauses.Cause) {
        if listenerPauses.resume(cause) && isServing { startAccepting() }
    }

    /// The listen socket is readable: accept the waiting connections and hand each to lws,
    /// which starts its TLS handshake, while the iteration's accept budget lasts and under
    /// `maxHandshakesInFlight`. Out of descriptors, the listener pauses until the next tick.
    func acceptReady() {
        guard isServing, let vhost else { return }
        let bound = configuration.maxHandshakesInFlight
        chargeHandshakes()
        let started = Worker.threadCPUNanos()
        let failure = listener.acceptAll(
            limit: bound > 0 ? max(0, bound - handshaking.count) : .max,
            until: { acceptBudget.isSpent(after: Worker.threadCPUNanos() &- started) }
        ) { fd in
            counters.connectionsAccepted += 1
            // nil when lws cannot take it (a client already gone, or past lws's descriptor
            // table); lws has then closed the socket.
            if let wsi = lws_adopt_socket_vhost(vhost, fd) { handshaking.insert(wsi) }
        }
        acceptBudget.accepted(for: Worker.threadCPUNanos() &- started)
        // The handshake steps run inside this burst are in its time already.
        handshakeCharged = handshakeClock.pointee.nanos
        if bound > 0 && handshaking.count >= bound {
            pauseListener(.handshakes)
        } else if acceptBudget.isSpent() && !listenerPauses.causes.contains(.budget) {
            // More may wait: the next iteration takes them (`listenerIterationEnded`).
            pauseListener(.budget)
            counters.acceptDeferrals += 1
        }
        guard let error = failure else { return }
        counters.acceptFailures += 1
        pauseListener(.descriptors)
        let now = Worker.nowMs()
        if now &- lastAcceptFailureLog >= 10_000 {
            lastAcceptFailureLog = now
            logger.warning(
                "accept failed; listener paused until the next tick",
                metadata: ["error": "\(String(cString: strerror(error)))", "sessions": "\(sessions.count)"])
        }
    }

    /// `wsi` got to its first request, or closed: it no longer counts against
    /// `maxHandshakesInFlight`.
    func handshakeEnded(_ wsi: OpaquePointer) {
        guard handshaking.remove(wsi) != nil, handshaking.count < configuration.maxHandshakesInFlight else { return }
        resumeListener(.handshakes)
    }

    /// The loop iteration is over (its writes done): the next one's accept budget is half of
    /// this one's other work.
    func listenerIterationEnded() {
        chargeHandshakes()
        let now = Worker.threadCPUNanos()
        acceptBudget.iterationEnded(took: now &- iterationStart)
        iterationStart = now
        resumeListener(.budget)
    }

    /// Charges the accept budget with the TLS handshake work done since the last charge outside
    /// the accept bursts: the key exchange and signature of connections accepted earlier, run
    /// as their ClientHellos arrive. It is accepting's work too, not the rooms' (else it would
    /// raise the next iteration's budget instead of using up this one's).
    func chargeHandshakes() {
        let total = handshakeClock.pointee.nanos
        acceptBudget.accepted(for: total &- handshakeCharged)
        handshakeCharged = total
        counters.handshakeNanoseconds = total
    }

    /// CPU time this thread has used, in nanoseconds (the shim's clock, which also times the
    /// handshakes, so both are read the same way).
    static func threadCPUNanos() -> UInt64 { clws_thread_cpu_nanos() }
}
