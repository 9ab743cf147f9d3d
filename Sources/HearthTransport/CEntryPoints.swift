import CLws
import Logging

#if canImport(Glibc)
    import Glibc
#endif

// C entry points. They live outside main.swift as nonisolated global
// functions so that no actor isolation is assumed when C calls them on the
// lws thread (a closure literal in top-level code would be @MainActor).

/// pthread start routine: runs one worker's loop; `arg` is a +1 Worker.
func hearthTransportThreadMain(_ arg: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    guard let arg else { return nil }
    let worker = Unmanaged<Worker>.fromOpaque(arg).takeRetainedValue()
    clws_name_this_thread("hearth-loop")
    worker.run()
    return nil
}

/// The lws protocol callback of both protocols ("http" and "hearth.v1").
func hearthLwsCallback(
    _ wsi: OpaquePointer?, _ reason: lws_callback_reasons, _ user: UnsafeMutableRawPointer?,
    _ input: UnsafeMutableRawPointer?, _ len: Int
) -> Int32 {
    guard let wsi else { return 0 }
    guard let worker = Worker.from(wsi) else {
        return lws_callback_http_dummy(wsi, reason, user, input, len)
    }
    return worker.callback(wsi, reason, user, input, len)
}

/// lws sul (timer) callback; the sul is the first member of a clws_timer.
func hearthTimerCallback(_ sul: UnsafeMutablePointer<lws_sorted_usec_list_t>?) {
    guard let sul else { return }
    let timer = UnsafeMutableRawPointer(sul).assumingMemoryBound(to: clws_timer.self)
    guard let owner = timer.pointee.owner else { return }
    Unmanaged<Worker>.fromOpaque(owner).takeUnretainedValue().timerFired(timer)
}

/// libev prepare callback (once per loop iteration, before it blocks): the delegate's end of
/// the iteration, then flush queued output.
func hearthPrepareCallback(_ owner: UnsafeMutableRawPointer?) {
    guard let owner else { return }
    Unmanaged<Worker>.fromOpaque(owner).takeUnretainedValue().iterationEnded()
}

/// libev io callback on the TLS listen socket: accept the waiting connections.
func hearthAcceptCallback(_ owner: UnsafeMutableRawPointer?) {
    guard let owner else { return }
    Unmanaged<Worker>.fromOpaque(owner).takeUnretainedValue().acceptReady()
}

/// lws log emitter: one swift-log line per lws line, label "hearth.lws".
func hearthLwsLogEmit(_ level: Int32, _ line: UnsafePointer<CChar>?) {
    guard let line else { return }
    var text = String(cString: line)
    while text.last == "\n" || text.last == "\r" { text.removeLast() }
    let logger = Logger(label: "hearth.lws")
    if level & Int32(LLL_ERR) != 0 {
        logger.error("\(text)")
    } else if level & Int32(LLL_WARN) != 0 {
        logger.warning("\(text)")
    } else if level & Int32(LLL_NOTICE) != 0 {
        logger.notice("\(text)")
    } else {
        logger.debug("\(text)")
    }
}
