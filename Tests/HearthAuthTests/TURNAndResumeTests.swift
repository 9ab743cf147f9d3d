import Foundation
import XCTest

@testable import HearthAuth

final class TURNCredentialsTests: XCTestCase {
    func testKnownVector() {
        // python3 -c "import hmac,hashlib,base64;print(base64.b64encode(hmac.new(b'secret',
        //   b'1700000000:u1',hashlib.sha1).digest()).decode())"
        let credentials = turnCredentials(
            secret: "secret", user: "u1", ttlSeconds: 0, now: Date(timeIntervalSince1970: 1_700_000_000))
        XCTAssertEqual(credentials.username, "1700000000:u1")
        XCTAssertEqual(credentials.password, "nHzZnCmm4aatc14e91U9AY8VNQM=")
    }

    func testExpiryIsNowPlusTTL() {
        // python3: hmac.new(b'turn-shared-secret', b'1700003600:sess-42', hashlib.sha1), base64
        let credentials = turnCredentials(
            secret: "turn-shared-secret", user: "sess-42", ttlSeconds: 3600,
            now: Date(timeIntervalSince1970: 1_700_000_000.75))
        XCTAssertEqual(credentials.username, "1700003600:sess-42")
        XCTAssertEqual(credentials.password, "DjjBMG756eVQi01vhGGwYX6ZPoU=")
    }
}

final class ResumeSecretTests: XCTestCase {
    func testHashMatchesPythonHashlib() {
        // python3 -c "import hashlib;print(hashlib.sha256(b'hello').hexdigest())"
        XCTAssertEqual(
            ResumeSecret.hash("hello"), "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        XCTAssertEqual(
            ResumeSecret.hash("Zm9vYmFyYmF6cXV4"), "802465db6639387e55405b2dcae83e6fc548cbab0ab75d90e024588f04162280")
    }

    /// RFC 4648 §10's vectors in the URL alphabet without padding, and the two bytes that
    /// differ between the alphabets (0xfb 0xff: "+/8=" in standard base64).
    func testBase64URLEncoding() {
        let vectors: [(String, String)] = [
            ("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ]
        for (plain, encoded) in vectors {
            XCTAssertEqual(Base64URL.encode(Array(plain.utf8)), encoded)
        }
        XCTAssertEqual(Base64URL.encode([0xFB, 0xFF]), "-_8")
        XCTAssertEqual(Base64URL.encode([0xFB, 0xFF, 0xBF]), "-_-_")
        XCTAssertEqual(Base64URL.decodeLenient("-_-_"), [0xFB, 0xFF, 0xBF])
    }

    func testGenerate() {
        let first = ResumeSecret.generate()
        let second = ResumeSecret.generate()
        XCTAssertNotEqual(first.secret, second.secret)
        // 32 bytes base64url without padding: 43 characters of the URL-safe alphabet.
        XCTAssertEqual(first.secret.count, 43)
        let alphabet = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        XCTAssertTrue(first.secret.allSatisfy { alphabet.contains($0) }, first.secret)
        XCTAssertEqual(Base64URL.decodeLenient(first.secret)?.count, 32)
        XCTAssertEqual(first.hash, ResumeSecret.hash(first.secret))
        XCTAssertEqual(first.hash.count, 64)
        XCTAssertTrue(ResumeSecret.matches(first.secret, hash: first.hash))
        XCTAssertTrue(ResumeSecret.matches(first.secret, hash: first.hash.uppercased()))
        XCTAssertFalse(ResumeSecret.matches(second.secret, hash: first.hash))
        XCTAssertFalse(ResumeSecret.matches(first.secret, hash: ""))
    }
}
