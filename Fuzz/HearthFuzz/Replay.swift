// The entry point, in both builds.
//
// - A normal `swift build` (no flags): HearthFuzz is a corpus replayer. It runs every file named
//   on the command line (directories are walked, one level) through `fuzzOne`, the function the
//   fuzzer calls, and exits 0 if none tripped an invariant: `HearthFuzz Fuzz/corpus`.
// - scripts/fuzz builds with `-DHEARTH_FUZZ -sanitize=fuzzer,address`: `main` hands the command
//   line to libFuzzer's driver (`LLVMFuzzerRunDriver`), which calls `LLVMFuzzerTestOneInput`.
//   SwiftPM links executables with their `main` renamed and aliased (`HearthFuzz_main`), so the
//   target keeps its own `@main` instead of relying on libFuzzer's `main`.
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

#if HEARTH_FUZZ
    /// `int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*UserCb)(const uint8_t *Data, size_t Size))`
    /// from libFuzzer (compiler-rt, linked by `-sanitize=fuzzer`). Pointer and integer arguments
    /// only, so the Swift and C calling conventions agree on the supported platforms.
    @_silgen_name("LLVMFuzzerRunDriver")
    func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<Int32>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
    ) -> Int32
#endif

@main
struct Replay {
    static func main() {
        #if HEARTH_FUZZ
            var argc = CommandLine.argc
            var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
            exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in LLVMFuzzerTestOneInput(data, size) })
        #else
            replay()
        #endif
    }

    static func replay() {
        var paths: [String] = []
        for argument in CommandLine.arguments.dropFirst() {
            if let directory = opendir(argument) {
                while let entry = readdir(directory) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                    }
                    if !name.hasPrefix(".") { paths.append(argument + "/" + name) }
                }
                closedir(directory)
            } else {
                paths.append(argument)
            }
        }
        if paths.isEmpty {
            print("usage: HearthFuzz FILE-OR-DIRECTORY...  (replays inputs through the fuzz target)")
            exit(2)
        }
        for path in paths.sorted() {
            guard let bytes = read(path) else {
                print("HearthFuzz: cannot read \(path)")
                exit(1)
            }
            bytes.withUnsafeBytes { fuzzOne($0) }
        }
        print("HearthFuzz: replayed \(paths.count) inputs")
    }

    static func read(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            if n > 0 { bytes.append(contentsOf: buffer[0..<n]) }
            if n < buffer.count { break }
        }
        return bytes
    }
}
