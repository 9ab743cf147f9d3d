import Crypto
import Foundation
import XCTest

@testable import HearthAuth

final class AdminTokenVerifierTests: XCTestCase {
    private let now = TestJWT.now
    private static let adminSecret = "admin-secret-that-is-at-least-32-bytes-long"

    private func verifier(kid: String? = nil) throws -> AdminTokenVerifier {
        AdminTokenVerifier(keys: [try .hs256(secret: Self.adminSecret, kid: kid)])
    }

    /// A valid admin payload at ``TestJWT/now``.
    private func claims(_ changes: [String: Any?] = [:]) -> [String: Any] {
        var claims: [String: Any] = [
            "sub": "operator-1", "scope": "hearth-admin",
            "iat": Int(now.timeIntervalSince1970), "exp": Int(now.timeIntervalSince1970) + 300,
        ]
        for (key, value) in changes {
            if let value { claims[key] = value } else { claims.removeValue(forKey: key) }
        }
        return claims
    }

    private func assertRefused(
        _ token: String, by verifier: AdminTokenVerifier, at time: Date? = nil, _ expected: TokenError.Reason,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        switch verifier.verify(token, now: time ?? now) {
        case .success(let claims): XCTFail("expected refusal \(expected), got \(claims)", file: file, line: line)
        case .failure(let error): XCTAssertEqual(error.reason, expected, file: file, line: line)
        }
    }

    func testValidTokenIsAccepted() throws {
        let token = TestJWT.hs256(
            claims(["nbf": Int(now.timeIntervalSince1970) - 10, "jti": "j1"]), secret: Self.adminSecret)
        let result = try verifier().verify(token, now: now)
        let claims = try result.get()
        XCTAssertEqual(claims.sub, "operator-1")
        XCTAssertEqual(claims.jti, "j1")
        XCTAssertEqual(claims.exp, now.addingTimeInterval(300))
        XCTAssertEqual(claims.iat, now)
    }

    func testScopeIsRequiredAndExact() throws {
        let v = try verifier()
        assertRefused(TestJWT.hs256(claims(["scope": nil]), secret: Self.adminSecret), by: v, .missingClaim("scope"))
        for scope in ["hearth", "hearth-admin ", "HEARTH-ADMIN", "hearth-admin other", ""] {
            assertRefused(
                TestJWT.hs256(claims(["scope": scope]), secret: Self.adminSecret), by: v, .invalidClaim("scope"))
        }
        assertRefused(
            TestJWT.hs256(claims(["scope": ["hearth-admin"]]), secret: Self.adminSecret), by: v,
            .invalidClaim("scope"))
    }

    /// A second `scope` (or any member twice) is not read as either value: the token is malformed.
    func testDuplicateClaimsAreRefused() throws {
        let payload = String(decoding: TestJWT.json(claims()), as: UTF8.self).dropLast()
        let header = Array(#"{"alg":"HS256"}"#.utf8)
        XCTAssertNoThrow(
            try verifier().verify(
                TestJWT.hs256(rawHeader: header, rawPayload: Array((payload + "}").utf8), secret: Self.adminSecret),
                now: now
            ).get())
        for extra in [#","scope":"hearth-admin"}"#, #","sub":"operator-2"}"#] {
            let token = TestJWT.hs256(
                rawHeader: header, rawPayload: Array((payload + extra).utf8), secret: Self.adminSecret)
            assertRefused(token, by: try verifier(), .malformed)
        }
    }

    func testMemberJoinTokenSignedWithTheAdminKeyIsRefused() throws {
        // A complete join token (sub, room, role, name, exp, iat) has no admin scope.
        let join = TestJWT.hs256(TestJWT.claims(), secret: Self.adminSecret)
        assertRefused(join, by: try verifier(), .missingClaim("scope"))
    }

    func testJoinKeysDoNotVerifyAdminTokens() throws {
        // Signed with a join key the admin verifier does not hold.
        assertRefused(TestJWT.hs256(claims(), secret: TestJWT.secret), by: try verifier(), .badSignature)
        assertRefused(
            TestJWT.hs256(claims(), secret: Self.adminSecret, header: ["alg": "HS256", "kid": "join"]),
            by: try verifier(kid: "admin"), .unknownKid)
        // No keys at all: nothing verifies.
        assertRefused(
            TestJWT.hs256(claims(), secret: Self.adminSecret), by: AdminTokenVerifier(keys: []), .unknownKid)
    }

    func testAdminTokenIsNotAJoinToken() throws {
        // Even a join verifier that (wrongly) held the admin key refuses it: no room, role or name.
        let join = TokenVerifier(keys: [try .hs256(secret: Self.adminSecret)])
        let admin = TestJWT.hs256(claims(), secret: Self.adminSecret)
        guard case .failure(let error) = join.verify(admin, now: now, expectedRoom: "room-1") else {
            return XCTFail("an admin token joined a room")
        }
        XCTAssertEqual(error.reason, .missingClaim("room"))
    }

    func testRequiredClaimsAndTypes() throws {
        let v = try verifier()
        for claim in ["sub", "exp", "iat"] {
            assertRefused(TestJWT.hs256(claims([claim: nil]), secret: Self.adminSecret), by: v, .missingClaim(claim))
        }
        assertRefused(TestJWT.hs256(claims(["sub": ""]), secret: Self.adminSecret), by: v, .invalidClaim("sub"))
        assertRefused(TestJWT.hs256(claims(["sub": 7]), secret: Self.adminSecret), by: v, .invalidClaim("sub"))
        assertRefused(TestJWT.hs256(claims(["exp": "soon"]), secret: Self.adminSecret), by: v, .invalidClaim("exp"))
        assertRefused(
            TestJWT.hs256(claims(["sub": String(repeating: "x", count: 513)]), secret: Self.adminSecret), by: v,
            .invalidClaim("sub"))
    }

    func testTimes() throws {
        let v = AdminTokenVerifier(
            keys: [try .hs256(secret: Self.adminSecret)], leewaySeconds: 30, maxLifetimeSeconds: 3600)
        let t = Int(now.timeIntervalSince1970)
        let token = TestJWT.hs256(claims(), secret: Self.adminSecret)
        assertRefused(token, by: v, at: now.addingTimeInterval(331), .expired)
        XCTAssertNoThrow(try v.verify(token, now: now.addingTimeInterval(329)).get())
        assertRefused(
            TestJWT.hs256(claims(["nbf": t + 60]), secret: Self.adminSecret), by: v, .notYetValid)
        assertRefused(
            TestJWT.hs256(claims(["iat": t + 60, "exp": t + 120]), secret: Self.adminSecret), by: v,
            .issuedInFuture)
        assertRefused(
            TestJWT.hs256(claims(["exp": t + 3601]), secret: Self.adminSecret), by: v, .lifetimeTooLong)
        XCTAssertNoThrow(
            try v.verify(TestJWT.hs256(claims(["exp": t + 3600]), secret: Self.adminSecret), now: now).get())
    }

    func testHeaderRulesAreShared() throws {
        let v = try verifier()
        assertRefused(
            TestJWT.hs256(claims(), secret: Self.adminSecret, header: ["alg": "none"]), by: v, .algorithmNotAllowed)
        assertRefused(
            TestJWT.hs256(claims(), secret: Self.adminSecret, header: ["alg": "HS256", "crit": ["x"]]), by: v,
            .unsupportedHeader)
        assertRefused("not.a.token", by: v, .malformed)
        assertRefused(String(repeating: "a", count: TokenVerifier.maxTokenBytes + 1), by: v, .malformed)
        // An EdDSA admin key only verifies EdDSA tokens.
        let ed = Curve25519.Signing.PrivateKey()
        let edVerifier = AdminTokenVerifier(keys: [
            try .eddsaPublic(rawRepresentation: Array(ed.publicKey.rawRepresentation))
        ])
        XCTAssertNoThrow(try edVerifier.verify(try TestJWT.eddsa(claims(), key: ed), now: now).get())
        assertRefused(TestJWT.hs256(claims(), secret: Self.adminSecret), by: edVerifier, .algorithmMismatch)
    }

    func testMinterRoundTrip() throws {
        let key = try TokenKey.hs256(secret: Self.adminSecret, kid: "ops")
        let token = try AdminTokenMinter(key: key).mint(operator: "op-7", now: now, ttlSeconds: 120, jti: "x")
        let claims = try AdminTokenVerifier(keys: [key]).verify(token, now: now).get()
        XCTAssertEqual(claims.sub, "op-7")
        XCTAssertEqual(claims.exp, now.addingTimeInterval(120))
        XCTAssertThrowsError(
            try AdminTokenMinter(
                key: .eddsaPublic(rawRepresentation: Array(Curve25519.Signing.PrivateKey().publicKey.rawRepresentation))
            ))
    }
}
