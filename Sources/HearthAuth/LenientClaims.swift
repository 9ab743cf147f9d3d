/// Reads optional JWT claims one by one: a claim of the wrong type is noted (so the token is
/// refused with `invalidClaim`) instead of failing the whole decode.
struct LenientClaims<Key: CodingKey> {
    let container: KeyedDecodingContainer<Key>
    private(set) var typeErrors: [String] = []

    init(_ container: KeyedDecodingContainer<Key>) { self.container = container }

    mutating func field<T: Decodable>(_ key: Key) -> T? {
        guard container.contains(key) else { return nil }
        if (try? container.decodeNil(forKey: key)) == true { return nil }
        if let value = try? container.decode(T.self, forKey: key) { return value }
        typeErrors.append(key.stringValue)
        return nil
    }
}
