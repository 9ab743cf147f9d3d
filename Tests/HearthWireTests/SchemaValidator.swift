import Foundation
import XCTest

/// Where the repository's files are, found from this file's path.
enum Repo {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let schema = root.appendingPathComponent("docs/protocol.schema.json")
    static let protocolDoc = root.appendingPathComponent("docs/protocol.md")

    static func text(_ url: URL) throws -> String { try String(contentsOf: url, encoding: .utf8) }
}

/// Validates JSON documents against `docs/protocol.schema.json` with Python's `jsonschema`
/// (draft 2020-12), in one subprocess per batch.
enum SchemaValidator {
    enum Definition: String {
        case client, server
    }

    struct Item {
        var definition: Definition
        /// The JSON text of the instance (an encoder's output as-is).
        var json: String
        var expectValid: Bool = true
        var label: String
    }

    /// Reads JSON lines `{"def": "client"|"server", "instance": …}` from the file in argv[2] and
    /// prints one line per item: `ok` or the best-matching validation error. The definitions
    /// are reached through a `$ref` to `protocol.schema.json#/$defs/…`, as a client would.
    static let script = #"""
        import json, sys
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import best_match
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        schema = json.load(open(sys.argv[1], encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        base = schema["$id"].rsplit("/", 1)[0] + "/"
        registry = Registry().with_resource(schema["$id"], Resource.from_contents(schema, default_specification=DRAFT202012))

        def validator(ref):
            wrapper = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": base + "test.json",
                       "$ref": "protocol.schema.json#/$defs/" + ref}
            return Draft202012Validator(wrapper, registry=registry)

        validators = {"client": validator("client"), "server": validator("server")}
        for line in open(sys.argv[2], encoding="utf-8"):
            item = json.loads(line)
            instance = item["instance"]
            errors = list(validators[item["def"]].iter_errors(instance))
            if not errors:
                print("ok")
                continue
            detail = best_match(errors).message
            # Say why the message fails its own definition, not only that no branch of oneOf matched.
            name = item["def"] + "." + str(instance.get("type")) if isinstance(instance, dict) else None
            if name in schema["$defs"]:
                own = list(validator(name).iter_errors(instance))
                if own:
                    detail = "; ".join(e.message + " at " + "/".join(map(str, e.absolute_path)) for e in own)
            print("invalid: " + detail.replace("\n", " ")[:400])
        """#

    /// Runs the batch; returns one result per item, in order (`nil` when valid).
    static func validate(_ items: [Item]) throws -> [String?] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "hearth-wire-schema-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("items.jsonl")
        let lines = items.map { #"{"def":""# + $0.definition.rawValue + #"","instance":"# + $0.json + "}" }
        try (lines.joined(separator: "\n") + "\n").write(to: input, atomically: true, encoding: .utf8)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, Repo.schema.path, input.path]
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ValidatorFailed(
                message: "python3 exited \(process.terminationStatus): \(String(decoding: errors, as: UTF8.self))")
        }
        let results = String(decoding: output, as: UTF8.self).split(separator: "\n").map(String.init)
        guard results.count == items.count else {
            throw ValidatorFailed(message: "expected \(items.count) results, got \(results.count)")
        }
        return results.map { $0 == "ok" ? nil : $0 }
    }

    struct ValidatorFailed: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// Validates and fails the test for each item whose outcome is not the expected one.
    static func assert(_ items: [Item], file: StaticString = #filePath, line: UInt = #line) throws {
        let results = try validate(items)
        for (item, result) in zip(items, results) {
            if item.expectValid, let result {
                XCTFail("\(item.label): \(item.json)\n→ \(result)", file: file, line: line)
            } else if !item.expectValid && result == nil {
                XCTFail("\(item.label): schema accepted \(item.json)", file: file, line: line)
            }
        }
    }
}
