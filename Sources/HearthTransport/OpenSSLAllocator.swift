import CLws

/// OpenSSL's allocator in a process whose `malloc` is jemalloc (`hearthd`).
///
/// libwebsockets clears OpenSSL's error queue before every `SSL_read` and `SSL_write`, and
/// `ERR_clear_error()` passes each of the queue's 16 slots' two strings to `free`: 32 calls,
/// nearly always with NULL. glibc's `free(NULL)` returns at once; jemalloc's costs about 46
/// instructions, so clearing the queue cost about 2k instructions per write, 20k per chat
/// message delivered to a group of 10 (`loadtest/instructions`, loadtest/RESULTS.md).
/// Installed, OpenSSL's frees skip the NULLs and go to the same `free` otherwise; its
/// allocations are plain `malloc` and `realloc`.
public enum OpenSSLAllocator {
    /// Installs the allocator. It must run before OpenSSL's first allocation in the process
    /// (OpenSSL refuses later: it cannot free with one allocator what another allocated); false
    /// then, and OpenSSL keeps its own.
    @discardableResult
    public static func skipNullFrees() -> Bool { clws_openssl_skip_null_frees() == 1 }
}
