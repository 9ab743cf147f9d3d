import XCTest

@testable import HearthTransport

final class ClientAddressTests: XCTestCase {
    private let proxies = ["10.0.0.0/8", "127.0.0.1", "2001:db8:ffff::/48"].compactMap(IPNetwork.init)

    private func client(_ peer: String, _ forwardedFor: String?) -> String {
        ClientAddress.resolve(peer: peer, forwardedFor: forwardedFor, trustedProxies: proxies)
    }

    func testNetworksParseOnlyWellFormedCIDRs() {
        XCTAssertEqual(IPNetwork("10.1.2.3/8")?.description, "10.0.0.0/8")
        XCTAssertEqual(IPNetwork("192.0.2.7")?.description, "192.0.2.7/32")
        XCTAssertEqual(IPNetwork("2001:db8::1/64")?.description, "2001:db8::/64")
        XCTAssertEqual(IPNetwork("::1")?.description, "::1/128")
        XCTAssertEqual(IPNetwork("0.0.0.0/0")?.description, "0.0.0.0/0")
        for bad in [
            "", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0/8", "proxy.local",
            "10.0.0.0/8/8", " 10.0.0.0/8", "[::1]", "::ffff:10.0.0.0/104",
        ] {
            XCTAssertNil(IPNetwork(bad), bad)
        }
    }

    func testNetworkMembership() throws {
        let v4 = try XCTUnwrap(IPNetwork("10.0.0.0/8"))
        XCTAssertTrue(v4.contains(try XCTUnwrap(IPAddress("10.255.0.1"))))
        XCTAssertFalse(v4.contains(try XCTUnwrap(IPAddress("11.0.0.1"))))
        XCTAssertTrue(v4.contains(try XCTUnwrap(IPAddress("::ffff:10.0.0.9"))), "a mapped address is IPv4")
        XCTAssertFalse(v4.contains(try XCTUnwrap(IPAddress("::a00:1"))), "an IPv6 address is never in an IPv4 block")
        let v6 = try XCTUnwrap(IPNetwork("2001:db8:ffff::/48"))
        XCTAssertTrue(v6.contains(try XCTUnwrap(IPAddress("2001:db8:ffff:1::1"))))
        XCTAssertFalse(v6.contains(try XCTUnwrap(IPAddress("2001:db8:fffe::1"))))
    }

    func testBehindTheInternalSocketTheClientIsTheLastUntrustedHop() {
        let proxies = [IPNetwork("10.0.0.0/8")!]
        XCTAssertEqual(ClientAddress.resolve(fromTrustedSocket: "198.51.100.7", trustedProxies: []), "198.51.100.7")
        // The proxy appends the address it saw: a client's own entries to the left are not believed.
        XCTAssertEqual(
            ClientAddress.resolve(fromTrustedSocket: "203.0.113.1, 198.51.100.7", trustedProxies: []), "198.51.100.7")
        // A second proxy hop (listed as trusted) is looked through.
        XCTAssertEqual(
            ClientAddress.resolve(fromTrustedSocket: "198.51.100.7, 10.1.2.3", trustedProxies: proxies), "198.51.100.7")
        XCTAssertEqual(ClientAddress.resolve(fromTrustedSocket: nil, trustedProxies: proxies), "unix")
        XCTAssertEqual(ClientAddress.resolve(fromTrustedSocket: "garbage", trustedProxies: proxies), "unix")
    }

    func testAnUntrustedPeerIsTheClientWhateverTheHeaderSays() {
        XCTAssertEqual(client("192.0.2.1", "198.51.100.7"), "192.0.2.1")
        XCTAssertEqual(client("192.0.2.1", nil), "192.0.2.1")
        XCTAssertEqual(
            ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: "198.51.100.7", trustedProxies: []), "127.0.0.1")
    }

    func testATrustedPeerForwardsTheRightmostUntrustedHop() {
        XCTAssertEqual(client("127.0.0.1", "198.51.100.7"), "198.51.100.7")
        // What the client wrote itself is on the left, and ignored.
        XCTAssertEqual(client("127.0.0.1", "203.0.113.9, 198.51.100.7"), "198.51.100.7")
        XCTAssertEqual(client("127.0.0.1", "spoofed, 198.51.100.7"), "198.51.100.7")
        // Trusted hops on the right are skipped.
        XCTAssertEqual(client("10.0.0.2", "203.0.113.9,198.51.100.7, 10.0.0.1 ,127.0.0.1"), "198.51.100.7")
        XCTAssertEqual(client("127.0.0.1", "2001:db8::5, 2001:db8:ffff::1"), "2001:db8::5")
        // Ports and brackets, as some proxies write them.
        XCTAssertEqual(client("127.0.0.1", "198.51.100.7:4711"), "198.51.100.7")
        XCTAssertEqual(client("127.0.0.1", "[2001:db8::5]:4711"), "2001:db8::5")
        XCTAssertEqual(client("127.0.0.1", "[2001:db8::5]"), "2001:db8::5")
    }

    func testABrokenChainStopsAtTheNearestTrustedHop() {
        XCTAssertEqual(client("127.0.0.1", nil), "127.0.0.1")
        XCTAssertEqual(client("127.0.0.1", ""), "127.0.0.1")
        XCTAssertEqual(client("127.0.0.1", "unknown"), "127.0.0.1")
        XCTAssertEqual(client("127.0.0.1", "198.51.100.7, 10.0.0.1, garbage"), "127.0.0.1")
        XCTAssertEqual(client("127.0.0.1", "198.51.100.7, garbage, 10.0.0.1"), "10.0.0.1")
        XCTAssertEqual(client("127.0.0.1", "[2001:db8::5]x"), "127.0.0.1")
        // Every hop trusted: the leftmost is the client.
        XCTAssertEqual(client("127.0.0.1", "10.0.0.3, 10.0.0.1"), "10.0.0.3")
    }

    func testTheForwardedAddressIsCanonical() {
        XCTAssertEqual(client("127.0.0.1", "2001:DB8:0:0::0005"), "2001:db8::5")
        XCTAssertEqual(client("::ffff:127.0.0.1", "::ffff:198.51.100.7"), "198.51.100.7")
    }

    func testLimitKeysAreIPv4AsIsAndIPv6ByThe64() {
        XCTAssertEqual(ClientAddress.limitKey("198.51.100.7"), "198.51.100.7")
        XCTAssertEqual(ClientAddress.limitKey("::ffff:198.51.100.7"), "198.51.100.7")
        XCTAssertEqual(ClientAddress.limitKey("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64")
        XCTAssertEqual(ClientAddress.limitKey("2001:db8:1:2::ffff"), "2001:db8:1:2::/64")
        XCTAssertNotEqual(ClientAddress.limitKey("2001:db8:1:3::1"), ClientAddress.limitKey("2001:db8:1:2::1"))
        XCTAssertEqual(ClientAddress.limitKey("::1"), "::/64")
        XCTAssertEqual(ClientAddress.limitKey(""), "")
        XCTAssertEqual(ClientAddress.limitKey("not-an-address"), "not-an-address")
    }
}
