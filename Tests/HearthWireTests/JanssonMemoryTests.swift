import CJansson
import HearthCore
import HearthWire
import Synchronization
import XCTest

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

private let allocations = Atomic<Int>(0)
private let releases = Atomic<Int>(0)

/// Every jansson value the wire code makes is released: counted through jansson's allocator hooks.
final class JanssonMemoryTests: XCTestCase {
    func testEncodeAndDecodeReleaseEverything() {
        var oldMalloc: json_malloc_t?
        var oldFree: json_free_t?
        json_get_alloc_funcs(&oldMalloc, &oldFree)
        json_set_alloc_funcs(
            { size in
                allocations.add(1, ordering: .relaxed)
                return malloc(size)
            },
            { pointer in
                if pointer != nil { releases.add(1, ordering: .relaxed) }
                free(pointer)
            })
        defer { json_set_alloc_funcs(oldMalloc, oldFree) }

        var inputs = Samples.commands.map(\.json)
        inputs += [
            #"{"type":"hello","token":"t","rid":"r"}"#, #"{"type":"resume","secret":"s","lastSeq":3}"#,
            #"{"type":"ping"}"#, "not json", #"{"type":"ping","type":"ping"}"#, #"[1,2]"#,
            #"{"type":"dance","rid":"x"}"#,
            #"{"type":"admit","member":"x","rid":"y"}"#,
            #"{"type":"resume","secret":"s","lastSeq":99999999999999999999}"#,
            String(repeating: "[", count: 40) + String(repeating: "]", count: 40),
        ]
        for json in inputs { _ = WireDecoder.decode(json) }
        for message in Samples.events { _ = WireEncoder.encode(message, iceServers: Samples.iceServers) }
        _ = WireEncoder.encodePong(rid: "r")
        _ = WireEncoder.encodeError(.badJSON, rid: nil)
        _ = WireEncoder.encode(Message(event: .signal(from: ParticipantID(1), kind: .ice, payload: "{broken")))

        XCTAssertGreaterThan(allocations.load(ordering: .relaxed), 1000)
        XCTAssertEqual(allocations.load(ordering: .relaxed), releases.load(ordering: .relaxed))
    }
}
