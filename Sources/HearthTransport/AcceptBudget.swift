/// How long the listener may spend accepting in one loop iteration.
///
/// Accepting a connection starts its TLS handshake: lws reads the ClientHello and writes the
/// server's flight, key exchange and signature included, as it adopts the socket. When thousands
/// of clients reconnected at once, whole iterations went on handshakes while the established
/// rooms waited for the next one (loadtest/RESULTS.md, issue 16 part 2). An iteration may now
/// accept for half as long as the previous one spent on everything else (at least `minimum`);
/// past it the listener waits for the next iteration. The rooms then wait for about one and a
/// half times their own work, and a session start, whose own signalling fills the iterations,
/// still gets a third of the loop for its handshakes. Half, not all of it: when thousands of
/// reconnected rooms' output made the flush long, accepting as long again made iterations of
/// 29-62 ms (a probe build, 2026-12-01), and the unaffected rooms' p99 went over 50 ms in 5 of
/// 8 10k storms, against none of 8 at half, all back sooner too (RESULTS.md). No upper bound:
/// one of 50 ms starved a 10k session start (1,234 clients not connected after 30 s in one of
/// two runs), as a fixed number of accepts per iteration had (the `accept-pacing` branch).
///
/// Handshake work that runs after the accept counts as accepting too: a ClientHello that
/// arrives after its socket was adopted has the server's key exchange and signature done when
/// lws services the socket, in a later iteration, outside the accept. Counted as the rooms'
/// work, it raised the next iteration's budget, which accepted more, whose handshakes raised the
/// one after: in a 10k storm, runs of 26-75 ms iterations, most of each accepting (a probe build
/// on 2026-11-30). The worker times every handshake step with OpenSSL's info callback and
/// charges it here (`Worker.chargeHandshakes`).
///
/// Pure bookkeeping in nanoseconds (no clock of its own): the worker times its accepts and its
/// iterations in the loop thread's CPU time (`Worker+Listener.swift`), so that time the thread
/// spent stopped or preempted is not taken for work.
struct AcceptBudget: Equatable {
    static let minimum: UInt64 = 5_000_000

    /// What this iteration may spend accepting.
    private(set) var budget: UInt64 = AcceptBudget.minimum
    /// What it has spent so far.
    private(set) var spent: UInt64 = 0

    /// Whether accepting for `running` more (on top of what was spent) uses up the budget.
    func isSpent(after running: UInt64 = 0) -> Bool { spent + running >= budget }

    /// Accepting took `duration`.
    mutating func accepted(for duration: UInt64) { spent += duration }

    /// The iteration is over after `took` in all: the next may accept for half as long as this
    /// one did everything else (at least `minimum`).
    mutating func iterationEnded(took: UInt64) {
        let other = took > spent ? took - spent : 0
        budget = max(Self.minimum, other / 2)
        spent = 0
    }
}
