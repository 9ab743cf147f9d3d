import HearthAuth
import HearthTransport

// Configuration → transport and token verification: what `HearthServer` builds its parts from.
extension HearthConfiguration {
    /// The transport's settings: the listen address, the TLS files and ciphers, message and
    /// queue limits, keepalive, browser origins and trusted proxies.
    public func transportConfiguration(certificatePath: String, privateKeyPath: String) throws(ConfigurationError)
        -> TransportConfiguration
    {
        let (host, port) = try listenAddress()
        var t = TransportConfiguration(
            host: host, port: port, certificatePath: certificatePath, privateKeyPath: privateKeyPath)
        t.maxMessageBytes = limits.maxMessageBytes
        t.sendQueueMaxMessages = limits.sendQueueMaxMessages
        t.sendQueueMaxBytes = limits.sendQueueMaxBytes
        t.socketSendBufferBytes = limits.socketSendBufferBytes
        t.pingIntervalSeconds = limits.pingIntervalSeconds
        t.hangupSeconds = limits.hangupSeconds
        t.maxHandshakesInFlight = limits.maxHandshakesInFlight
        t.allowedOrigins = allowedOrigins
        t.trustedProxies = trustedProxies.compactMap(IPNetwork.init)
        if let ciphers = tls.ciphers { t.tls12Ciphers = ciphers }
        t.internalSocketPath = internalListen.map { String($0.dropFirst("unix:".count)) }
        return t
    }
}
