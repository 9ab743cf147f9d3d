// transport-demo: an echo server over HearthTransport, used by
// Tests/transport/test_transport.py.
//
//   transport-demo --port 9443 --cert cert.pem --key key.pem
//                  [--host 127.0.0.1] [--ping 20] [--hangup 40]
//                  [--max-message 65536] [--queue-messages 1024]
//                  [--queue-bytes 1048576] [--origin https://a.example]...
//
// WebSocket text messages:
//   "burst N"          -> N messages "burst-<i>" enqueued at once
//   "stream N SIZE"    -> N messages of SIZE bytes, 500 per tick
//   "close CODE TEXT"  -> the server closes the session with CODE/TEXT
//   "later TEXT"       -> "posted TEXT", sent from a Transport.post job that
//                         another thread posts 50 ms later
//   anything else      -> echoed back
// HTTP: GET|HEAD /healthz -> {"ok":true} (with x-content-type-options: nosniff);
//       GET /stats -> counters as JSON; GET /query -> the query string;
//       POST /echo -> the body; GET /cached -> a response with its own cache-control;
//       GET /bad-header -> a route bug (a header value with CR LF: the transport answers 500);
//       else 404.
// Prints "READY" on stdout once listening. SIGTERM/SIGINT: graceful stop
// (every session gets "bye", then close 1001), exit 0.

import Dispatch
import HearthTransport
import Logging

#if canImport(Glibc)
    import Glibc
#endif

final class EchoDelegate: TransportDelegate {
    struct Stream { var remaining: Int; let size: Int; var next: Int }
    var streams: [SessionID: Stream] = [:]
    var open: Set<SessionID> = []
    let logger: Logger

    init(logger: Logger) { self.logger = logger }

    func transportDidOpen(_ session: SessionID, path: String, peerAddress: String, transport: Transport) {
        open.insert(session)
        if path.hasPrefix("/hello") {
            transport.send(OutboundMessage("path \(path)"), to: session)
        }
    }

    func transportDidReceive(_ session: SessionID, text: UnsafeRawBufferPointer, transport: Transport) {
        let message = String(decoding: text, as: UTF8.self)
        let words = message.split(separator: " ", maxSplits: 2).map(String.init)
        if words.count == 2, words[0] == "burst", let n = Int(words[1]) {
            for i in 0..<n { transport.send(OutboundMessage("burst-\(i)"), to: session) }
        } else if words.count == 3, words[0] == "stream", let n = Int(words[1]), let size = Int(words[2]) {
            streams[session] = Stream(remaining: n, size: size, next: 0)
        } else if words.count >= 2, words[0] == "later" {
            // Cross-thread path: another thread posts a job onto the lws thread.
            let reply = OutboundMessage("posted " + words[1...].joined(separator: " "))
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(50)) {
                transport.post { $0.send(reply, to: session) }
            }
        } else if words.count >= 2, words[0] == "close", let code = UInt16(words[1]) {
            transport.close(session, code: code, reason: words.count > 2 ? words[2] : "")
        } else {
            transport.send(OutboundMessage(Array(text)), to: session)
        }
    }

    func transportDidClose(_ session: SessionID, transport: Transport) {
        open.remove(session)
        streams[session] = nil
    }

    func transportHTTP(_ request: HTTPRequest, transport: Transport) -> HTTPReply {
        .response(response(to: request, transport: transport))
    }

    private func response(to request: HTTPRequest, transport: Transport) -> HTTPResponse {
        switch (request.method, request.path) {
        case ("GET", "/healthz"), ("HEAD", "/healthz"):
            return HTTPResponse(
                status: 200, contentType: "application/json", text: "{\"ok\":true}",
                headers: [("x-content-type-options", "nosniff")])
        case ("GET", "/cached"):
            return HTTPResponse(status: 200, text: "cached\n", headers: [("Cache-Control", "max-age=60")])
        case ("GET", "/bad-header"):
            return HTTPResponse(status: 200, text: "never sent\n", headers: [("x-injected", "a\r\nset-cookie: b=c")])
        case ("GET", "/stats"):
            let c = transport.counters
            let fields: [(String, UInt64)] = [
                ("messagesIn", c.messagesIn), ("bytesIn", c.bytesIn), ("messagesOut", c.messagesOut),
                ("bytesOut", c.bytesOut), ("framesOut", c.framesOut), ("sessionsOpened", c.sessionsOpened),
                ("sessionsClosed", c.sessionsClosed), ("queueOverflowCloses", c.queueOverflowCloses),
                ("oversizeCloses", c.oversizeCloses), ("binaryCloses", c.binaryCloses),
                ("originRejections", c.originRejections), ("httpRequests", c.httpRequests),
                ("httpFramingRefusals", c.httpFramingRefusals),
                ("connectionsAccepted", c.connectionsAccepted), ("acceptFailures", c.acceptFailures),
                ("acceptDeferrals", c.acceptDeferrals), ("handshakeNanoseconds", c.handshakeNanoseconds),
                ("openSessions", UInt64(transport.openSessionCount)),
            ]
            let body = "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
            return HTTPResponse(status: 200, contentType: "application/json", text: body)
        case ("GET", "/query"):
            return HTTPResponse(status: 200, text: request.query)
        case ("POST", "/echo"):
            return HTTPResponse(status: 200, contentType: "application/octet-stream", body: request.body)
        default:
            return HTTPResponse(status: 404, text: "not found\n")
        }
    }

    func transportTick(_ transport: Transport) {
        for (session, var s) in streams {
            let n = min(500, s.remaining)
            let filler = String(repeating: "x", count: s.size)
            for _ in 0..<n {
                let head = "s\(s.next)-"
                transport.send(
                    OutboundMessage(head + String(filler.prefix(max(0, s.size - head.utf8.count)))),
                    to: session)
                s.next += 1
            }
            s.remaining -= n
            streams[session] = s.remaining > 0 ? s : nil
        }
    }

    func transportWillStop(_ transport: Transport) {
        logger.info("demo: saying bye", metadata: ["sessions": "\(open.count)"])
        transport.send(OutboundMessage("bye"), to: open)
    }
}

enum Demo {
    static func run() {
        var args = Array(CommandLine.arguments.dropFirst())
        var options: [String: [String]] = [:]
        while args.count >= 2 {
            let key = args.removeFirst()
            options[key, default: []].append(args.removeFirst())
        }
        func int(_ k: String, _ d: Int) -> Int { options[k]?.last.flatMap { Int($0) } ?? d }

        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = getenv("DEMO_DEBUG") != nil ? .debug : .info
            return h
        }
        let logger = Logger(label: "transport-demo")

        var config = TransportConfiguration(
            host: options["--host"]?.last ?? "127.0.0.1", port: int("--port", 9443),
            certificatePath: options["--cert"]?.last ?? "cert.pem",
            privateKeyPath: options["--key"]?.last ?? "key.pem")
        config.pingIntervalSeconds = int("--ping", 20)
        config.hangupSeconds = int("--hangup", 40)
        config.maxMessageBytes = int("--max-message", 65_536)
        config.sendQueueMaxMessages = int("--queue-messages", 1024)
        config.sendQueueMaxBytes = int("--queue-bytes", 1 << 20)
        config.allowedOrigins = options["--origin"] ?? []
        if let mask = options["--lws-log"]?.last.flatMap({ Int32($0) }) { config.libraryLogMask = mask }

        let transport: Transport
        do {
            transport = try Transport(configuration: config, delegate: EchoDelegate(logger: logger), logger: logger)
            try transport.start()
        } catch {
            logger.error("cannot start: \(error)")
            exit(1)
        }

        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let queue = DispatchQueue(label: "signals")
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler {
                logger.info("demo: signal \(sig), stopping")
                transport.stop()
                logger.info("demo: stopped")
                exit(0)
            }
            source.resume()
            sources.append(source)
        }
        print("READY")
        fflush(nil)
        withExtendedLifetime(sources) { dispatchMain() }
    }
}

Demo.run()
