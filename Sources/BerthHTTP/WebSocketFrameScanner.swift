/// Follows one direction of a WebSocket (RFC 6455 §5.2) as its bytes pass, without holding them: where each frame
/// ends, and how many messages went by. The edge relays a WebSocket's bytes as they are; this tells it how many
/// messages its traffic event counts, and whether a close frame of its own (1011, when the instance is lost) would
/// land between two frames rather than inside one.
package struct WebSocketFrameScanner: Sendable, Equatable {
    private enum State: Sendable, Equatable {
        /// Reading a frame's header: the bytes of it so far.
        case header([UInt8])
        /// Bytes of the frame's payload still to pass.
        case payload(remaining: UInt64)
    }

    private var state = State.header([])
    /// Whole data messages (text or binary, fragmented or not) that went by.
    package private(set) var messages: UInt64 = 0
    /// A close frame went by: the side that sent it ended the WebSocket as the protocol asks.
    package private(set) var sawClose = false

    package init() {}

    /// Between two frames: a frame written now would not cut one.
    package var atFrameBoundary: Bool { state == .header([]) }

    /// The close frame an endpoint sends when it fails (1011, internal error), unmasked as a server's.
    package static let internalErrorClose: [UInt8] = [0x88, 0x02, 0x03, 0xF3]

    package mutating func scan(_ bytes: UnsafeRawBufferPointer) {
        var index = 0
        while index < bytes.count {
            switch state {
            case .payload(let remaining):
                let step = min(remaining, UInt64(bytes.count - index))
                index += Int(step)
                state = remaining == step ? .header([]) : .payload(remaining: remaining - step)
            case .header(var header):
                header.append(bytes[index])
                index += 1
                guard let payload = Self.payloadLength(header) else {
                    state = .header(header)
                    continue
                }
                // FIN set on a data frame or the last continuation: a message is whole. Control frames (0x8...) are not
                // messages.
                if header[0] & 0x80 != 0 && header[0] & 0x0F < 0x8 { messages += 1 }
                if header[0] & 0x0F == 0x8 { sawClose = true }
                state = payload == 0 ? .header([]) : .payload(remaining: payload)
            }
        }
    }

    /// The payload length once `header` is whole; nil while more of it is to come.
    private static func payloadLength(_ header: [UInt8]) -> UInt64? {
        guard header.count >= 2 else { return nil }
        let short = header[1] & 0x7F
        let extended = short == 126 ? 2 : short == 127 ? 8 : 0
        let masked = header[1] & 0x80 != 0
        guard header.count == 2 + extended + (masked ? 4 : 0) else { return nil }
        guard extended > 0 else { return UInt64(short) }
        return header[2..<2 + extended].reduce(0) { $0 << 8 | UInt64($1) }
    }
}
