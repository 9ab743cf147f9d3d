import Crypto
import Foundation
import JWTKit
import XCTest

@testable import HearthAuth

final class TokenVerifierTests: XCTestCase {
    private let now = TestJWT.now

    private func hsVerifier(kid: String? = nil) throws -> TokenVerifier {
        TokenVerifier(keys: [try .hs256(secret: TestJWT.secret, kid: kid)])
    }

    private func assertRefused(
        _ token: String, by verifier: TokenVerifier, room: String = "room-1", at time: Date? = nil,
        _ expected: TokenError.Reason, file: StaticString = #filePath, line: UInt = #line
    ) {
        switch verifier.verify(token, now: time ?? now, expectedRoom: room) {
        case .success(let claims):
            XCTFail("expected refusal \(expected), got \(claims)", file: file, line: line)
        case .failure(let error):
            XCTAssertEqual(error, .invalid(expected), file: file, line: line)
            XCTAssertEqual(error.reason, expected, file: file, line: line)
        }
    }

    private func assertAccepted(
        _ token: String, by verifier: TokenVerifier, room: String = "room-1", at time: Date? = nil,
        file: StaticString = #filePath, line: UInt = #line
    ) -> JoinClaims? {
        switch verifier.verify(token, now: time ?? now, expectedRoom: room) {
        case .success(let claims):
            return claims
        case .failure(let error):
            XCTFail("expected acceptance, got \(error.reason)", file: file, line: line)
            return nil
        }
    }

    // MARK: Valid tokens

    func testValidHS256TokenVerifies() throws {
        let token = TestJWT.hs256(
            TestJWT.claims([
                "jti": "j-1", "nbf": Int(now.timeIntervalSince1970) - 5, "capacity": 8,
                "waitingRoom": false, "consentVersion": "2024-06", "requireLocation": true,
                "chatPolicy": "staff-only", "privateMessages": true, "selfUnmute": false,
            ]))
        let claims = assertAccepted(token, by: try hsVerifier())
        XCTAssertEqual(
            claims,
            JoinClaims(
                sub: "user-1", room: "room-1", role: "participant", name: "River",
                exp: now.addingTimeInterval(300), nbf: now.addingTimeInterval(-5), iat: now, jti: "j-1",
                capacity: 8, waitingRoom: false, consentVersion: "2024-06", requireLocation: true,
                chatPolicy: "staff-only", privateMessages: true, selfUnmute: false))
    }

    func testTokenMadeIndependentlyByPythonVerifies() throws {
        // Produced with python3 hmac/hashlib/base64/json (see the HearthAuth work report).
        let token =
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1LTE3Iiwicm9vbSI6InItMSIsInJvbGUiOiJwYXJ0aWNpcGFudCIsIm5hbWUiOiJTa3kiLCJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMDMwMCwiY2hhdFBvbGljeSI6InN0YWZmLW9ubHkiLCJjYXBhY2l0eSI6OH0.63Jq5wPpXX5egzsNuC3pFA0SG7DhRisngDTC81u85XE"
        let verifier = TokenVerifier(keys: [try .hs256(secret: "python-independent-secret-0123456789abcdef")])
        let claims = assertAccepted(token, by: verifier, room: "r-1", at: Date(timeIntervalSince1970: 1_700_000_100))
        XCTAssertEqual(claims?.sub, "u-17")
        XCTAssertEqual(claims?.name, "Sky")
        XCTAssertEqual(claims?.chatPolicy, "staff-only")
        XCTAssertEqual(claims?.capacity, 8)
        XCTAssertEqual(claims?.exp, Date(timeIntervalSince1970: 1_700_000_300))
        XCTAssertNil(claims?.waitingRoom)
    }

    func testEveryKnownRoleIsAccepted() throws {
        let verifier = try hsVerifier()
        for role in ["facilitator", "cofacilitator", "participant", "guest", "observer"] {
            let token = TestJWT.hs256(TestJWT.claims(["role": role, "jti": "invite-1"]))
            XCTAssertEqual(assertAccepted(token, by: verifier)?.role, role)
        }
    }

    func testAGuestTokenNeedsAnID() throws {
        let verifier = try hsVerifier()
        for jti in [nil, NSNull()] as [Any?] {
            assertRefused(
                TestJWT.hs256(TestJWT.claims(["role": "guest", "jti": jti])), by: verifier, .missingClaim("jti"))
        }
        XCTAssertEqual(TokenError.Reason.missingClaim("jti").description, "missing_claim:jti")
        // Only guests' invitations are single use.
        XCTAssertNotNil(assertAccepted(TestJWT.hs256(TestJWT.claims(["role": "participant"])), by: verifier))
    }

    func testTypHeaderIsOptional() throws {
        let token = TestJWT.hs256(TestJWT.claims(), header: ["alg": "HS256"])
        XCTAssertNotNil(assertAccepted(token, by: try hsVerifier()))
    }

    func testMinterRoundTrip() throws {
        let minter = try TokenMinter(secret: TestJWT.secret, kid: "dev")
        let claims = JoinClaims(
            sub: "u-9", room: "room-1", role: "facilitator", name: "Dr. Ash",
            exp: now.addingTimeInterval(600), iat: now, jti: "abc", capacity: 4, chatPolicy: "off")
        let token = minter.mint(claims: claims)
        let verifier = TokenVerifier(keys: [try .hs256(secret: TestJWT.secret, kid: "dev")])
        XCTAssertEqual(assertAccepted(token, by: verifier), claims)
        // The header names the kid and the algorithm.
        let header = try XCTUnwrap(token.split(separator: ".").first)
        let headerJSON = try XCTUnwrap(Base64URL.decodeLenient(String(header)))
        let object = try JSONSerialization.jsonObject(with: Data(headerJSON)) as? [String: String]
        XCTAssertEqual(object, ["alg": "HS256", "typ": "JWT", "kid": "dev"])
    }

    func testMinterRefusesPublicKeys() throws {
        let key = try TokenKey.eddsaPublic(
            rawRepresentation: Array(Curve25519.Signing.PrivateKey().publicKey.rawRepresentation))
        XCTAssertThrowsError(try TokenMinter(key: key)) { error in
            XCTAssertEqual(error as? TokenKeyError, .notASigningKey)
        }
    }

    // MARK: Algorithm

    func testAlgNoneIsRefused() throws {
        let verifier = try hsVerifier()
        let input = TestJWT.signingInput(header: ["alg": "none", "typ": "JWT"], payload: TestJWT.claims())
        assertRefused(input + ".", by: verifier, .algorithmNotAllowed)
        assertRefused(input + ".c2lnbmF0dXJl", by: verifier, .algorithmNotAllowed)
        let upper = TestJWT.signingInput(header: ["alg": "None"], payload: TestJWT.claims())
        assertRefused(upper + ".", by: verifier, .algorithmNotAllowed)
        // HS256-signed but claiming an algorithm we do not offer.
        assertRefused(TestJWT.hs256(header: ["alg": "HS512"]), by: verifier, .algorithmNotAllowed)
        assertRefused(TestJWT.hs256(header: ["alg": "hs256"]), by: verifier, .algorithmNotAllowed)
        assertRefused(TestJWT.hs256(header: ["alg": 256]), by: verifier, .algorithmNotAllowed)
        assertRefused(TestJWT.hs256(header: ["typ": "JWT"]), by: verifier, .malformed)
    }

    func testAlgorithmConfusionIsRefused() throws {
        // The attacker knows the Ed25519 public key and uses its bytes as an HMAC secret.
        let privateKey = Curve25519.Signing.PrivateKey()
        let publicRaw = Array(privateKey.publicKey.rawRepresentation)
        let publicPEM = EdDSA.PublicKey(backing: privateKey.publicKey).pemRepresentation
        let verifier = TokenVerifier(keys: [try .eddsaPublic(rawRepresentation: publicRaw)])
        for secretBytes in [publicRaw, Array(publicPEM.utf8)] {
            let forged = TestJWT.hs256(TestJWT.claims(), secretBytes: secretBytes, header: ["alg": "HS256"])
            assertRefused(forged, by: verifier, .algorithmMismatch)
        }
        // Same with a kid pointing at the public key while an HS256 key also exists.
        let mixed = TokenVerifier(keys: [
            try .hs256(secret: TestJWT.secret, kid: "h"), try .eddsaPublic(rawRepresentation: publicRaw, kid: "e"),
        ])
        let forged = TestJWT.hs256(TestJWT.claims(), secretBytes: publicRaw, header: ["alg": "HS256", "kid": "e"])
        assertRefused(forged, by: mixed, .algorithmMismatch)
        // And an EdDSA-labelled token against an HS256 key.
        let edToken = try TestJWT.eddsa(key: privateKey, header: ["alg": "EdDSA", "kid": "h"])
        assertRefused(edToken, by: mixed, .algorithmMismatch)
    }

    func testCritHeaderIsRefused() throws {
        let token = TestJWT.hs256(header: ["alg": "HS256", "crit": ["exp"], "exp": 1])
        assertRefused(token, by: try hsVerifier(), .unsupportedHeader)
        // Of any type, null included: its presence is the refusal.
        for crit: Any in [NSNull(), "exp", 1, [String: Any]()] {
            assertRefused(
                TestJWT.hs256(header: ["alg": "HS256", "crit": crit]), by: try hsVerifier(), .unsupportedHeader)
        }
    }

    /// Header fields of every JSON type (signed correctly, so only the header rules decide), and
    /// headers that are not a JSON object at all.
    func testHeaderFieldsOfEveryJSONType() throws {
        let verifier = try hsVerifier()
        let kidVerifier = try hsVerifier(kid: "k")
        for alg: Any in [NSNull(), true, 1.5, ["HS256"], ["a": "HS256"]] {
            assertRefused(TestJWT.hs256(header: ["alg": alg]), by: verifier, .algorithmNotAllowed)
        }
        for kid: Any in [NSNull(), false, 7, ["k"], ["k": "k"]] {
            assertRefused(TestJWT.hs256(header: ["alg": "HS256", "kid": kid]), by: kidVerifier, .malformed)
        }
        // Fields the verifier does not read are ignored, whatever their type.
        XCTAssertNotNil(
            assertAccepted(
                TestJWT.hs256(header: ["alg": "HS256", "kid": "k", "typ": 5, "x5u": NSNull(), "cty": ["a": [1]]]),
                by: kidVerifier))
        let payload = TestJWT.b64url(TestJWT.json(TestJWT.claims()))
        for header in ["[]", "\"HS256\"", "null", "1", "{", "{\"alg\":\"HS256\"", ""] {
            let input = TestJWT.b64url(Data(header.utf8)) + "." + payload
            let mac = HMAC<SHA256>.authenticationCode(
                for: Data(input.utf8), using: SymmetricKey(data: Array(TestJWT.secret.utf8)))
            assertRefused(input + "." + TestJWT.b64url(Data(mac)), by: verifier, .malformed)
        }
        // Segments that are not base64url (standard alphabet, padding, stray characters).
        let token = TestJWT.hs256()
        var parts = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        for bad in [parts[0] + "=", parts[0].replacingOccurrences(of: "e", with: "+") + "/", "*" + parts[0]] {
            parts[0] = bad
            assertRefused(parts.joined(separator: "."), by: verifier, .malformed)
        }
    }

    // MARK: Signature

    func testWrongKeyIsRefused() throws {
        assertRefused(TestJWT.hs256(secret: TestJWT.otherSecret), by: try hsVerifier(), .badSignature)
    }

    func testTamperedPayloadIsRefused() throws {
        let token = TestJWT.hs256()
        var parts = token.split(separator: ".").map(String.init)
        parts[1] = TestJWT.b64url(TestJWT.json(TestJWT.claims(["role": "facilitator"])))
        assertRefused(parts.joined(separator: "."), by: try hsVerifier(), .badSignature)
        // Tampered header (typ added) also breaks the signature.
        var parts2 = token.split(separator: ".").map(String.init)
        parts2[0] = TestJWT.b64url(TestJWT.json(["alg": "HS256", "typ": "JWT", "x": 1]))
        assertRefused(parts2.joined(separator: "."), by: try hsVerifier(), .badSignature)
        // Truncated and emptied signatures (41 base64url characters cannot be decoded at all).
        assertRefused(String(token.dropLast(3)), by: try hsVerifier(), .badSignature)
        assertRefused(String(token.dropLast(2)), by: try hsVerifier(), .malformed)
        let unsigned = parts.prefix(2).joined(separator: ".") + "."
        assertRefused(unsigned, by: try hsVerifier(), .badSignature)
    }

    // MARK: Claims

    func testMissingClaimsAreRefused() throws {
        let verifier = try hsVerifier()
        for claim in ["sub", "room", "role", "name", "exp"] {
            assertRefused(TestJWT.hs256(TestJWT.claims([claim: nil])), by: verifier, .missingClaim(claim))
            assertRefused(TestJWT.hs256(TestJWT.claims([claim: NSNull()])), by: verifier, .missingClaim(claim))
        }
    }

    func testInvalidClaimValuesAreRefused() throws {
        let verifier = try hsVerifier()
        let cases: [(String, Any)] = [
            ("exp", "soon"), ("sub", 42), ("name", ""), ("sub", String(repeating: "x", count: 600)),
            ("capacity", 0), ("capacity", "ten"), ("capacity", 1.5), ("chatPolicy", "loud"),
            ("waitingRoom", "yes"), ("iat", "now"), ("jti", ""),
        ]
        for (claim, value) in cases {
            assertRefused(TestJWT.hs256(TestJWT.claims([claim: value])), by: verifier, .invalidClaim(claim))
        }
    }

    /// Every optional claim against a value of every JSON type: its own type is read, `null` is
    /// absence, anything else is `invalidClaim` naming the claim.
    func testClaimsOfEveryJSONType() throws {
        let verifier = try hsVerifier()
        let t = Int(now.timeIntervalSince1970)
        enum Kind { case string, number, integer, bool }
        let claims: [(String, Kind, Any)] = [
            ("jti", .string, "invite-1"), ("consentVersion", .string, "v2"), ("chatPolicy", .string, "off"),
            ("capacity", .integer, 8), ("nbf", .number, t - 10), ("waitingRoom", .bool, false),
            ("requireLocation", .bool, true), ("privateMessages", .bool, true), ("selfUnmute", .bool, false),
        ]
        // Values of every JSON type, with the kinds of claim that read them.
        let values: [(Any, Set<Kind>)] = [
            (true, [.bool]), ("text", [.string]), (7, [.number, .integer]), (7.5, [.number]),
            (["a"], []), (["k": "v"], []),
        ]
        for (claim, kind, good) in claims {
            XCTAssertNotNil(assertAccepted(TestJWT.hs256(TestJWT.claims([claim: good])), by: verifier), claim)
            // null is the claim's absence.
            XCTAssertNotNil(assertAccepted(TestJWT.hs256(TestJWT.claims([claim: NSNull()])), by: verifier), claim)
            for (value, readBy) in values where !readBy.contains(kind) {
                assertRefused(TestJWT.hs256(TestJWT.claims([claim: value])), by: verifier, .invalidClaim(claim))
            }
        }
        // A fractional NumericDate is a date.
        XCTAssertNotNil(assertAccepted(TestJWT.hs256(TestJWT.claims(["nbf": Double(t) - 0.5])), by: verifier))
        // An integral number written as a real or with an exponent is an integer; a fraction, or
        // one past what `Int` holds, is not.
        let header = Array(#"{"alg":"HS256"}"#.utf8)
        for (written, capacity) in [("12.0", 12), ("1e1", 10), ("1.2e1", 12)] {
            let token = TestJWT.hs256(
                rawHeader: header, rawPayload: TestJWT.rawClaims(extra: #""capacity":"# + written))
            XCTAssertEqual(assertAccepted(token, by: verifier)?.capacity, capacity, written)
        }
        for written in ["12.5", "1e300"] {
            let token = TestJWT.hs256(
                rawHeader: header, rawPayload: TestJWT.rawClaims(extra: #""capacity":"# + written))
            assertRefused(token, by: verifier, .invalidClaim("capacity"))
        }
    }

    /// JSON no encoder writes makes the token malformed as a whole, whichever member it is in.
    func testStrictJSONIsRequired() throws {
        let verifier = try hsVerifier()
        let header = Array(#"{"alg":"HS256"}"#.utf8)
        XCTAssertNotNil(assertAccepted(TestJWT.hs256(rawHeader: header, rawPayload: TestJWT.rawClaims()), by: verifier))
        // Whitespace around the object is JSON.
        let spaced = TestJWT.hs256(rawHeader: Array(#" {"alg":"HS256"} "#.utf8), rawPayload: TestJWT.rawClaims())
        XCTAssertNotNil(assertAccepted(spaced, by: verifier))
        // Duplicate claim names (RFC 7519, section 4), in the payload and in the header.
        for extra in [#""role":"facilitator""#, #""role":"participant""#] {
            let token = TestJWT.hs256(rawHeader: header, rawPayload: TestJWT.rawClaims(extra: extra))
            assertRefused(token, by: verifier, .malformed)
        }
        let unknownTwice = TestJWT.hs256(rawHeader: header, rawPayload: TestJWT.rawClaims(extra: #""x":1,"x":2"#))
        assertRefused(unknownTwice, by: verifier, .malformed)
        let twoAlgs = TestJWT.hs256(
            rawHeader: Array(#"{"alg":"HS256","alg":"HS256"}"#.utf8), rawPayload: TestJWT.rawClaims())
        assertRefused(twoAlgs, by: verifier, .malformed)
        // NUL, a lone surrogate, a raw control character; numbers beyond 64 bits or a double's
        // range, and numbers JSON does not allow.
        let members = [
            #""x":"a\u0000b""#, #""x":"\ud800""#, "\"x\":\"a\tb\"", #""x":99999999999999999999"#,
            #""x":1e400"#, #""x":01"#, #""x":1."#, #""x":+1"#,
        ]
        for member in members {
            let token = TestJWT.hs256(rawHeader: header, rawPayload: TestJWT.rawClaims(extra: member))
            assertRefused(token, by: verifier, .malformed)
        }
        // Nesting: the object and 31 arrays in an unknown claim (32 levels) are read, one more
        // level is not, in the payload or the header.
        let nested = { (depth: Int) in
            #""x":"# + String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        }
        XCTAssertNotNil(
            assertAccepted(
                TestJWT.hs256(rawHeader: header, rawPayload: TestJWT.rawClaims(extra: nested(31))), by: verifier))
        for depth in [32, 2_000] {
            let token = TestJWT.hs256(rawHeader: header, rawPayload: TestJWT.rawClaims(extra: nested(depth)))
            assertRefused(token, by: verifier, .malformed)
        }
        let deepHeader = Array(("{\"alg\":\"HS256\"," + nested(32) + "}").utf8)
        assertRefused(TestJWT.hs256(rawHeader: deepHeader, rawPayload: TestJWT.rawClaims()), by: verifier, .malformed)
        // Invalid UTF-8, and bytes after the object.
        var invalidUTF8 = TestJWT.rawClaims(extra: #""x":"a""#)
        invalidUTF8.insert(0xFF, at: invalidUTF8.count - 2)
        assertRefused(TestJWT.hs256(rawHeader: header, rawPayload: invalidUTF8), by: verifier, .malformed)
        let trailing = TestJWT.hs256(rawHeader: header, rawPayload: TestJWT.rawClaims() + Array(" x".utf8))
        assertRefused(trailing, by: verifier, .malformed)
    }

    func testExpiry() throws {
        let verifier = try hsVerifier()
        let t = Int(now.timeIntervalSince1970)
        assertRefused(TestJWT.hs256(TestJWT.claims(["iat": t - 400, "exp": t - 31])), by: verifier, .expired)
        XCTAssertNotNil(assertAccepted(TestJWT.hs256(TestJWT.claims(["iat": t - 400, "exp": t - 29])), by: verifier))
        let strict = TokenVerifier(keys: [try .hs256(secret: TestJWT.secret)], leewaySeconds: 0)
        assertRefused(TestJWT.hs256(TestJWT.claims(["iat": t - 400, "exp": t - 1])), by: strict, .expired)
    }

    func testNotBeforeInTheFuture() throws {
        let verifier = try hsVerifier()
        let t = Int(now.timeIntervalSince1970)
        assertRefused(TestJWT.hs256(TestJWT.claims(["nbf": t + 31])), by: verifier, .notYetValid)
        XCTAssertNotNil(assertAccepted(TestJWT.hs256(TestJWT.claims(["nbf": t + 29])), by: verifier))
    }

    func testIssuedInTheFuture() throws {
        // Without this check a token with iat and exp a year ahead would pass the lifetime rule.
        let verifier = try hsVerifier()
        let t = Int(now.timeIntervalSince1970) + 365 * 86_400
        assertRefused(TestJWT.hs256(TestJWT.claims(["iat": t, "exp": t + 300])), by: verifier, .issuedInFuture)
    }

    func testLifetimeTooLong() throws {
        let verifier = try hsVerifier()
        let t = Int(now.timeIntervalSince1970)
        assertRefused(TestJWT.hs256(TestJWT.claims(["iat": t, "exp": t + 601])), by: verifier, .lifetimeTooLong)
        XCTAssertNotNil(assertAccepted(TestJWT.hs256(TestJWT.claims(["iat": t, "exp": t + 600])), by: verifier))
        // Without iat the lifetime is measured from now (plus leeway for the issuer's clock).
        assertRefused(TestJWT.hs256(TestJWT.claims(["iat": nil, "exp": t + 631])), by: verifier, .lifetimeTooLong)
        XCTAssertNotNil(assertAccepted(TestJWT.hs256(TestJWT.claims(["iat": nil, "exp": t + 600])), by: verifier))
        let short = TokenVerifier(keys: [try .hs256(secret: TestJWT.secret)], maxLifetimeSeconds: 60)
        assertRefused(TestJWT.hs256(TestJWT.claims(["iat": t, "exp": t + 61])), by: short, .lifetimeTooLong)
    }

    func testWrongRoom() throws {
        assertRefused(TestJWT.hs256(), by: try hsVerifier(), room: "room-2", .wrongRoom)
        assertRefused(TestJWT.hs256(), by: try hsVerifier(), room: "Room-1", .wrongRoom)
    }

    func testUnknownRole() throws {
        let verifier = try hsVerifier()
        for role in ["admin", "Facilitator", "facilitator ", "staff"] {
            assertRefused(TestJWT.hs256(TestJWT.claims(["role": role])), by: verifier, .unknownRole)
        }
    }

    // MARK: Malformed input

    func testMalformedTokensAreRefused() throws {
        let verifier = try hsVerifier()
        let valid = TestJWT.hs256()
        let parts = valid.split(separator: ".").map(String.init)
        let garbage = [
            "", "garbage", "a.b", "a.b.c.d", "...", "..", "%%%.%%%.%%%",
            valid + ".extra",
            "." + parts[1] + "." + parts[2],
            parts[0] + ".." + parts[2],
            TestJWT.b64url(Data("not json".utf8)) + "." + parts[1] + "." + parts[2],
            parts[0] + "." + TestJWT.b64url(Data("[1,2,3]".utf8)) + "." + parts[2],
            parts[0] + "." + TestJWT.b64url(Data("{\"sub\":".utf8)) + "." + parts[2],
            parts[0] + "." + parts[1] + "." + "!!!",
            String(repeating: "A", count: 10_000) + "." + parts[1] + "." + parts[2],
        ]
        for token in garbage {
            assertRefused(token, by: verifier, .malformed)
        }
        // kid must be a string.
        assertRefused(TestJWT.hs256(header: ["alg": "HS256", "kid": 7]), by: verifier, .malformed)
    }

    // MARK: Keys

    func testKidSelectsAmongKeys() throws {
        let verifier = TokenVerifier(keys: [
            try .hs256(secret: TestJWT.secret, kid: "a"), try .hs256(secret: TestJWT.otherSecret, kid: "b"),
        ])
        XCTAssertNotNil(assertAccepted(TestJWT.hs256(header: ["alg": "HS256", "kid": "a"]), by: verifier))
        let tokenB = TestJWT.hs256(secret: TestJWT.otherSecret, header: ["alg": "HS256", "kid": "b"])
        XCTAssertNotNil(assertAccepted(tokenB, by: verifier))
        // Signed with a's secret but naming b.
        assertRefused(TestJWT.hs256(header: ["alg": "HS256", "kid": "b"]), by: verifier, .badSignature)
    }

    func testUnknownKid() throws {
        let verifier = TokenVerifier(keys: [try .hs256(secret: TestJWT.secret, kid: "a")])
        assertRefused(TestJWT.hs256(header: ["alg": "HS256", "kid": "zzz"]), by: verifier, .unknownKid)
        // No kid and no default key.
        assertRefused(TestJWT.hs256(header: ["alg": "HS256"]), by: verifier, .unknownKid)
        // A default key is used only for tokens without kid.
        let withDefault = TokenVerifier(keys: [try .hs256(secret: TestJWT.secret)])
        XCTAssertNotNil(assertAccepted(TestJWT.hs256(header: ["alg": "HS256"]), by: withDefault))
        assertRefused(TestJWT.hs256(header: ["alg": "HS256", "kid": "a"]), by: withDefault, .unknownKid)
        assertRefused(TestJWT.hs256(), by: TokenVerifier(keys: []), .unknownKid)
    }

    func testEdDSATokenVerifies() throws {
        let privateKey = Curve25519.Signing.PrivateKey()
        let raw = Data(privateKey.publicKey.rawRepresentation)
        let pem = EdDSA.PublicKey(backing: privateKey.publicKey).pemRepresentation
        let encodings = [TestJWT.b64url(raw), raw.base64EncodedString(), pem]
        for encoded in encodings {
            let verifier = TokenVerifier(keys: [try .eddsaPublic(encoded, kid: "ed")])
            let token = try TestJWT.eddsa(key: privateKey, header: ["alg": "EdDSA", "kid": "ed"])
            XCTAssertEqual(assertAccepted(token, by: verifier)?.sub, "user-1")
            // Another key's signature fails.
            let other = try TestJWT.eddsa(key: Curve25519.Signing.PrivateKey(), header: ["alg": "EdDSA", "kid": "ed"])
            assertRefused(other, by: verifier, .badSignature)
        }
        // Claims are still checked after a good EdDSA signature.
        let verifier = TokenVerifier(keys: [try .eddsaPublic(TestJWT.b64url(raw))])
        let wrongRole = try TestJWT.eddsa(TestJWT.claims(["role": "root"]), key: privateKey)
        assertRefused(wrongRole, by: verifier, .unknownRole)
    }

    func testES256TokenVerifies() throws {
        let privateKey = P256.Signing.PrivateKey()
        let verifier = TokenVerifier(keys: [try .es256Public(pem: privateKey.publicKey.pemRepresentation)])
        let token = try TestJWT.es256(key: privateKey)
        XCTAssertEqual(assertAccepted(token, by: verifier)?.room, "room-1")
        // JWS needs raw r||s; a DER signature is refused.
        assertRefused(try TestJWT.es256(key: privateKey, der: true), by: verifier, .badSignature)
        assertRefused(try TestJWT.es256(key: P256.Signing.PrivateKey()), by: verifier, .badSignature)
    }

    func testKeyConstructionErrors() throws {
        XCTAssertThrowsError(try TokenKey.hs256(secret: "short")) { error in
            XCTAssertEqual(error as? TokenKeyError, .secretTooShort(minimumBytes: 32))
        }
        XCTAssertThrowsError(try TokenKey.eddsaPublic("not a key")) { error in
            XCTAssertEqual(error as? TokenKeyError, .invalidPublicKey(algorithm: .eddsa))
        }
        XCTAssertThrowsError(
            try TokenKey.es256Public(pem: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"))
        // An Ed25519 PEM is not an ES256 key.
        let edPEM = EdDSA.PublicKey(backing: Curve25519.Signing.PrivateKey().publicKey).pemRepresentation
        XCTAssertThrowsError(try TokenKey.es256Public(pem: edPEM))
        XCTAssertThrowsError(try TokenKey(algorithm: "RS256", secret: nil, publicKey: "x", kid: nil)) { error in
            XCTAssertEqual(error as? TokenKeyError, .unknownAlgorithm("RS256"))
        }
        XCTAssertThrowsError(try TokenKey(algorithm: "HS256", secret: nil, publicKey: nil, kid: nil)) { error in
            XCTAssertEqual(error as? TokenKeyError, .missingSecret)
        }
        XCTAssertThrowsError(try TokenKey(algorithm: "EdDSA", secret: TestJWT.secret, publicKey: nil, kid: nil)) {
            error in
            XCTAssertEqual(error as? TokenKeyError, .missingPublicKey(algorithm: .eddsa))
        }
        let key = try TokenKey(algorithm: "HS256", secret: TestJWT.secret, publicKey: nil, kid: "k1")
        XCTAssertEqual(key.algorithm, .hs256)
        XCTAssertEqual(key.kid, "k1")
    }

    func testNothingSecretLeaksIntoDescriptions() throws {
        let key = try TokenKey.hs256(secret: TestJWT.secret, kid: "k1")
        var dumped = ""
        dump(key, to: &dumped)
        for text in [key.description, String(describing: key), String(reflecting: key), dumped] {
            XCTAssertFalse(text.contains("test-secret"), text)
        }
        XCTAssertEqual(key.description, "TokenKey(kid: \"k1\", algorithm: HS256)")
        let error = TokenError.invalid(.badSignature)
        XCTAssertEqual(error.description, "invalid token")
        XCTAssertEqual("\(error)", "invalid token")
        XCTAssertEqual(error.reason.description, "bad_signature")
        XCTAssertEqual(TokenError.Reason.missingClaim("sub").description, "missing_claim:sub")
    }
}
