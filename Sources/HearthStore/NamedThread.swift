import Foundation

/// Starts `body` on a thread of its own that carries `name`, so that an operator finds it
/// (`top -H`, perf, `/proc/<pid>/task/*/comm`). Linux keeps at most 15 bytes of a name.
///
/// The thread names itself first thing through `/proc/thread-self/comm`. Not with
/// `Thread.current.name = …`: swift-corelibs-foundation passes a name to the system only once the
/// starting thread has stored the new thread's handle, which the new thread may not yet see if it
/// runs first; the name is then dropped without a word and the thread keeps its creator's name
/// (seen in a test run: hearthd's reader thread called `hearth-loop`; a loop of 300 starts lost
/// 0–6 names). Not before `start` either: that name never reaches the system thread.
public func startNamedThread(_ name: String, _ body: @escaping @Sendable () -> Void) {
    precondition(name.utf8.count <= 15, "Linux keeps at most 15 bytes of a thread's name")
    let thread = Thread {
        nameThisThread(name)
        body()
    }
    thread.start()
}

/// Names the calling thread. Failure leaves its name as it was (a name is for people, not for
/// the program), so it is not reported.
func nameThisThread(_ name: String) {
    let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
    guard fd >= 0 else { return }
    defer { close(fd) }
    let bytes = Array(name.utf8)
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
}
