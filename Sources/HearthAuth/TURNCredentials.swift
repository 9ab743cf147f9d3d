import Crypto
import Foundation

/// Time-limited TURN credentials in coturn's REST-API scheme (`use-auth-secret` with
/// `static-auth-secret`): the username is `"<expiry unix seconds>:<user>"` and the password is
/// `base64(HMAC-SHA1(secret, username))`. HMAC-SHA1 is what coturn requires; it is computed by
/// swift-crypto (`HMAC<Insecure.SHA1>`).
///
/// - Parameters:
///   - secret: coturn's `static-auth-secret`.
///   - user: an opaque id for the TURN user (use a per-session id, not a name or user id, so the
///     TURN server's logs hold no health data).
///   - ttlSeconds: how long the credentials stay valid.
///   - now: the current time; the expiry is `floor(now) + ttlSeconds`.
public func turnCredentials(secret: String, user: String, ttlSeconds: Int, now: Date) -> (
    username: String, password: String
) {
    let expiry = Int64(now.timeIntervalSince1970.rounded(.down)) + Int64(ttlSeconds)
    let username = "\(expiry):\(user)"
    let mac = HMAC<Insecure.SHA1>.authenticationCode(
        for: Data(username.utf8), using: SymmetricKey(data: Data(secret.utf8)))
    return (username, Data(mac).base64EncodedString())
}
