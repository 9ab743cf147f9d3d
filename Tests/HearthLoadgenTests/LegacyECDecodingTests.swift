import CLws
import Foundation
import XCTest

/// The generator's cheaper certificate parsing (`clws_loadgen_legacy_ec_decoding` in
/// clws_shim.h): once registered, an EC certificate's key comes out of the legacy decoding rather
/// than a provider's decoders, and a signature made by the certificate's private key (as a
/// server's TLS 1.3 CertificateVerify is) still verifies with it, while a changed message does not.
final class LegacyECDecodingTests: XCTestCase {

    func testAnECCertificatesKeyIsDecodedTheLegacyWayAndStillVerifies() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hearth-loadgen-ec-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let certPath = dir.appendingPathComponent("cert.pem").path
        let keyPath = dir.appendingPathComponent("key.pem").path
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-keyout", keyPath, "-out", certPath,
        ]
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        XCTAssertEqual(openssl.terminationStatus, 0)
        let message = Array("CertificateVerify stands in for this".utf8)
        let signature = try sign(message, keyPath: keyPath)

        // Before: OpenSSL 3's provider decoders produce the key (it belongs to a provider).
        try withCertificateKey(certPath) { key in
            XCTAssertNotNil(EVP_PKEY_get0_provider(key))
            XCTAssertTrue(verify(signature, of: message, with: key))
        }

        XCTAssertEqual(clws_loadgen_legacy_ec_decoding(), 1)

        // After: a legacy key (no provider), which verifies the same signature and rejects a
        // signature over another message.
        try withCertificateKey(certPath) { key in
            XCTAssertNil(EVP_PKEY_get0_provider(key))
            XCTAssertEqual(String(cString: EVP_PKEY_get0_type_name(key)), "EC")
            XCTAssertTrue(verify(signature, of: message, with: key))
            XCTAssertFalse(verify(signature, of: Array("another message".utf8), with: key))
        }
    }

    /// Parses the PEM certificate at `path` (d2i_X509, as a TLS client parses the server's) and
    /// hands its public key to `body`.
    private func withCertificateKey(_ path: String, _ body: (OpaquePointer) throws -> Void) throws {
        let cert = try readPEM(path) { PEM_read_bio_X509($0, nil, nil, nil) }
        defer { X509_free(cert) }
        try body(try XCTUnwrap(X509_get0_pubkey(cert)))
    }

    /// The object `read` makes of the PEM file at `path`.
    private func readPEM(_ path: String, _ read: (OpaquePointer) -> OpaquePointer?) throws -> OpaquePointer {
        let pem = try XCTUnwrap(FileManager.default.contents(atPath: path))
        return try pem.withUnsafeBytes { raw in
            let bio = try XCTUnwrap(BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)))
            defer { BIO_free(bio) }
            return try XCTUnwrap(read(bio))
        }
    }

    /// ECDSA with SHA-256 over `message` by the private key at `keyPath`.
    private func sign(_ message: [UInt8], keyPath: String) throws -> [UInt8] {
        let key = try readPEM(keyPath) { PEM_read_bio_PrivateKey($0, nil, nil, nil) }
        defer { EVP_PKEY_free(key) }
        let ctx = try XCTUnwrap(EVP_MD_CTX_new())
        defer { EVP_MD_CTX_free(ctx) }
        XCTAssertEqual(EVP_DigestSignInit(ctx, nil, EVP_sha256(), nil, key), 1)
        var length = 0
        XCTAssertEqual(EVP_DigestSign(ctx, nil, &length, message, message.count), 1)
        var signature = [UInt8](repeating: 0, count: length)
        XCTAssertEqual(EVP_DigestSign(ctx, &signature, &length, message, message.count), 1)
        return Array(signature.prefix(length))
    }

    private func verify(_ signature: [UInt8], of message: [UInt8], with key: OpaquePointer) -> Bool {
        guard let ctx = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(ctx) }
        guard EVP_DigestVerifyInit(ctx, nil, EVP_sha256(), nil, key) == 1 else { return false }
        return EVP_DigestVerify(ctx, signature, signature.count, message, message.count) == 1
    }
}
