import CLws

#if canImport(Glibc)
    import Glibc
#endif

// C entry points: nonisolated global functions outside any @main file, so no actor isolation is
// assumed when libev, libwebsockets or pthreads call them on a worker thread.

/// pthread start routine: runs one worker's event loop; `arg` is a +1 retained LoadWorker.
func loadgenThreadMain(_ arg: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    guard let arg else { return nil }
    let worker = Unmanaged<LoadWorker>.fromOpaque(arg).takeRetainedValue()
    worker.run()
    return nil
}

/// libev: a connection's socket is ready; `tag` is its index in the worker.
func loadgenSocketCallback(_ owner: UnsafeMutableRawPointer?, _ tag: Int32, _ revents: Int32) {
    guard let owner else { return }
    Unmanaged<LoadWorker>.fromOpaque(owner).takeUnretainedValue().socketReady(Int(tag), revents)
}

/// libev prepare: the loop is about to block; the worker writes what its connections queued.
func loadgenFlushCallback(_ owner: UnsafeMutableRawPointer?) {
    guard let owner else { return }
    Unmanaged<LoadWorker>.fromOpaque(owner).takeUnretainedValue().flushDirty()
}

/// lws sul timer callback; the sul is the first member of a clws_timer whose owner is the worker.
func loadgenTimerCallback(_ sul: UnsafeMutablePointer<lws_sorted_usec_list_t>?) {
    guard let sul else { return }
    let timer = UnsafeMutableRawPointer(sul).assumingMemoryBound(to: clws_timer.self)
    guard let owner = timer.pointee.owner else { return }
    Unmanaged<LoadWorker>.fromOpaque(owner).takeUnretainedValue().timerFired(timer)
}

/// pthread start routine of the storm's /healthz probe; `arg` is an unretained HealthProbe.
func healthProbeThreadMain(_ arg: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    guard let arg else { return nil }
    Unmanaged<HealthProbe>.fromOpaque(arg).takeUnretainedValue().run()
    return nil
}
