import BerthWire
import Logging
import NIOCore
import NIOHTTP1

/// One HTTP/1.1 connection of the edge: it collects a request, hands it to the worker, and writes the answer back.
///
/// Everything here runs on the connection's event loop. Declarative routes are decided right here and sent into
/// the mesh with a callback, without a task; a `Worker` in code runs in a task per request. NIO's
/// `HTTPServerPipelineHandler` in front of this one hands over one request at a time, so a connection has at most
/// one exchange open.
final class EdgeHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// What every connection of an edge is served with.
    struct Serving: Sendable {
        let worker: any Worker
        /// Set when the worker is plain declarative routes: those need no task.
        let routes: RoutesWorker?
        let env: Environment
        let maxBodyBytes: Int
        let logger: Logger

        init(worker: any Worker, env: Environment, maxBodyBytes: Int, logger: Logger) {
            self.worker = worker
            self.routes = worker as? RoutesWorker
            self.env = env
            self.maxBodyBytes = maxBodyBytes
            self.logger = logger
        }
    }

    private enum State {
        case idle
        case receiving(HTTPRequestHead)
        /// Sent into the mesh from the event loop; `id` cancels it on the bus.
        case forwarding(HTTPRequestHead, id: UInt64)
        /// A Worker's task has it.
        case working(HTTPRequestHead, Task<Void, Never>)
        /// The last answer is written (413, or the client asked to close): what still comes in is ignored.
        case closing
        case closed
    }

    private let serving: Serving
    private var state = State.idle
    private var body: [ByteBuffer] = []
    private var bodyBytes = 0
    /// Numbers the requests of this connection, so that an answer meant for an earlier one is never written.
    private var exchange: UInt64 = 0
    private var context: ChannelHandlerContext?

    init(serving: Serving) {
        self.serving = serving
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard case .idle = state else { return }
            state = .receiving(head)
        case .body(let chunk):
            guard case .receiving(let head) = state else { return }
            bodyBytes += chunk.readableBytes
            guard bodyBytes <= serving.maxBodyBytes else {
                refuseBody(head, context: context)
                return
            }
            body.append(chunk)
        case .end:
            guard case .receiving(let head) = state else { return }
            dispatch(head, context: context)
        }
    }

    /// The connection is gone, also when the client only stopped sending: as nginx and Envoy take it, that client has
    /// gone away, and its request is cancelled in the mesh instead of held until its deadline.
    func channelInactive(context: ChannelHandlerContext) {
        switch state {
        case .forwarding(_, let id):
            serving.env.mesh.cancel(id)
        case .working(_, let task):
            task.cancel()
        case .idle, .receiving, .closing, .closed:
            break
        }
        state = .closed
        body = []
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        serving.logger.debug("closing a client connection", metadata: [
            "berth.client": "\(context.remoteAddress?.description ?? "?")", "berth.error": "\(error)",
        ])
        context.close(promise: nil)
    }

    // MARK: Requests

    private func dispatch(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let request = Self.edgeRequest(head, body: body)
        body = []
        bodyBytes = 0
        exchange &+= 1
        let number = exchange
        let eventLoop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: eventLoop)
        // The response is made on the event loop: for an answer from the mesh that copies the body out of its frames.
        let answer: @Sendable (_ response: @escaping @Sendable () -> EdgeResponse) -> Void = { response in
            eventLoop.execute { handler.value.answer(response(), exchange: number) }
        }

        if let routes = serving.routes {
            switch routes.decide(request) {
            case .answer(let response):
                respond(response, to: head, context: context)
            case .forward(let forwarded, let target):
                let id = serving.env.mesh.send(forwarded, to: target, port: nil) { meshAnswer in answer { meshAnswer.edgeResponse } }
                state = .forwarding(head, id: id)
            }
            return
        }
        let worker = serving.worker
        let env = serving.env
        let logger = serving.logger
        state = .working(head, Task {
            do {
                let response = try await worker.fetch(request, env: env)
                answer { response }
            } catch {
                logger.warning("worker failed", metadata: ["berth.path": "\(request.path)", "berth.error": "\(error)"])
                let failure = EdgeResponse.failure(MeshError(code: .internal, message: "the worker failed: \(error)", component: "edge"))
                answer { failure }
            }
        })
    }

    private func answer(_ response: EdgeResponse, exchange number: UInt64) {
        guard number == exchange, let context else { return }
        switch state {
        case .forwarding(let head, _), .working(let head, _):
            respond(response, to: head, context: context)
        case .idle, .receiving, .closing, .closed:
            break
        }
    }

    private func refuseBody(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        body = []
        bodyBytes = 0
        var response = EdgeResponse.failure(MeshError(
            code: .tooLarge, message: "the request body is over the \(serving.maxBodyBytes)-byte limit", component: "edge"
        ))
        response.headers.append(Header("connection", "close"))
        respond(response, to: head, context: context, lingering: true)
    }

    /// The request as a Worker sees it: the path and the query apart, the headers in order less the first `host`
    /// (the sidecar names the app's host), the body in the chunks it came in.
    static func edgeRequest(_ head: HTTPRequestHead, body: [ByteBuffer]) -> EdgeRequest {
        let target = requestTarget(head.uri)
        var path = target
        var query = Substring("")
        if let mark = target.firstIndex(of: "?") {
            path = target[..<mark]
            query = target[target.index(after: mark)...]
        }
        var headers: [Header] = []
        headers.reserveCapacity(head.headers.count)
        var hostSeen = false
        for (name, value) in head.headers {
            if !hostSeen && name.caseInsensitiveEquals("host") {
                hostSeen = true
                continue
            }
            headers.append(Header(name, value))
        }
        return EdgeRequest(method: head.method.rawValue, path: String(path), query: String(query), headers: headers, body: Body(chunks: body))
    }

    /// The origin-form target of `uri`: `http://host/a?b` becomes `/a?b`.
    static func requestTarget(_ uri: String) -> Substring {
        guard !uri.hasPrefix("/"), let colon = uri.firstIndex(of: ":"), uri[colon...].hasPrefix("://") else { return Substring(uri) }
        let rest = uri[uri.index(colon, offsetBy: 3)...]
        guard let start = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) else { return "/" }
        return rest[start] == "/" ? rest[start...] : Substring("/" + rest[start...])
    }

    // MARK: Responses

    /// With `lingering`, the client may still be sending: see below.
    private func respond(_ response: EdgeResponse, to request: HTTPRequestHead, context: ChannelHandlerContext, lingering: Bool = false) {
        var response = response
        if !(100...999).contains(response.status) {
            serving.logger.warning("the worker answered with an invalid status", metadata: [
                "berth.path": "\(request.uri)", "berth.status": "\(response.status)",
            ])
            response = .failure(MeshError(code: .internal, message: "the worker answered with status \(response.status), which HTTP has not got", component: "edge"))
        }
        let (head, closes) = Self.head(of: response, for: request)
        let bodyAllowed = Self.bodyAllowed(status: response.status) && request.method != .HEAD
        // Set before `.end` is written: writing it can hand this handler the next pipelined request at once.
        state = closes ? .closing : .idle
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if bodyAllowed {
            for chunk in response.body.chunks {
                context.write(wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil)
            }
        }
        guard closes else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            return
        }
        let channel = context.channel
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        guard lingering else {
            written.whenComplete { _ in channel.close(promise: nil) }
            return
        }
        // Closing with the rest of the body unread would reset the connection, and the client could lose the
        // answer: shut our side only, drop what still comes until the client closes, for two seconds at most.
        written.whenComplete { _ in
            channel.close(mode: .output, promise: nil)
            channel.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
        }
    }

    static func bodyAllowed(status: Int) -> Bool {
        !(100..<200).contains(status) && status != 204 && status != 304
    }

    /// The response head, and whether the connection closes after it.
    ///
    /// `content-length` is added when the answer has none and may have a body; `connection` follows HTTP/1.1 as
    /// NIO's own servers do. Headers a peer could not parse are dropped (bad name) or cleaned (control bytes in the
    /// value become spaces), so no answer can split a response.
    static func head(of response: EdgeResponse, for request: HTTPRequestHead) -> (HTTPResponseHead, closes: Bool) {
        var headers = HTTPHeaders()
        headers.reserveCapacity(response.headers.count + 2)
        var hasLength = false
        var connection: String?
        for header in response.headers {
            guard isToken(header.name) else { continue }
            let value = legalValue(header.value)
            if header.name.caseInsensitiveEquals("content-length") {
                hasLength = true
            } else if header.name.caseInsensitiveEquals("connection") {
                connection = value
            }
            headers.add(name: header.name, value: value)
        }
        if !hasLength && bodyAllowed(status: response.status) && request.method != .HEAD {
            headers.add(name: "content-length", value: String(response.body.count))
        }

        var keepAlive = request.isKeepAlive
        if let connection {
            if connection.utf8.count >= 5 && connection.lowercased().contains("close") { keepAlive = false }
        } else if keepAlive && request.version.major == 1 && request.version.minor == 0 {
            headers.add(name: "connection", value: "keep-alive")
        } else if !keepAlive && (request.version.major, request.version.minor) >= (1, 1) {
            headers.add(name: "connection", value: "close")
        }
        let version: HTTPVersion = request.version.major == 1 && request.version.minor == 0 ? .http1_0 : .http1_1
        return (HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: response.status), headers: headers), !keepAlive)
    }

    /// A header name as RFC 9110 allows it: one or more token characters.
    static func isToken(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
                UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
                UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
                true
            default:
                false
            }
        }
    }

    /// `value` with every control byte but HTAB replaced by a space (RFC 9110 §5.5).
    static func legalValue(_ value: String) -> String {
        func isControl(_ byte: UInt8) -> Bool { (byte < 0x20 && byte != 0x09) || byte == 0x7F }
        guard value.utf8.contains(where: isControl) else { return value }
        return String(decoding: value.utf8.map { isControl($0) ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
    }
}
