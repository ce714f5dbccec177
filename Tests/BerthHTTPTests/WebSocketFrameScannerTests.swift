import Testing

@testable import BerthHTTP

/// How the edge follows a WebSocket's frames as they pass: messages counted, frame ends found, in pieces of any size.
@Suite struct WebSocketFrameScannerTests {
    func scan(_ scanner: inout WebSocketFrameScanner, _ bytes: [UInt8], by step: Int = .max) {
        var index = 0
        while index < bytes.count {
            let end = min(bytes.count, index + step)
            bytes[index..<end].withUnsafeBytes { scanner.scan($0) }
            index = end
        }
    }

    /// An unmasked text frame of `payload` bytes, with a 16- or 64-bit length when it needs one.
    func frame(opcode: UInt8 = 0x1, fin: Bool = true, payload: Int, masked: Bool = false) -> [UInt8] {
        var bytes: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        let mask: UInt8 = masked ? 0x80 : 0
        if payload < 126 {
            bytes.append(mask | UInt8(payload))
        } else if payload <= 0xFFFF {
            bytes += [mask | 126, UInt8(payload >> 8), UInt8(payload & 0xFF)]
        } else {
            bytes += [mask | 127] + (0..<8).reversed().map { UInt8(truncatingIfNeeded: payload >> ($0 * 8)) }
        }
        if masked { bytes += [1, 2, 3, 4] }
        return bytes + [UInt8](repeating: 0x61, count: payload)
    }

    @Test(arguments: [1, 3, 1_000])
    func messagesAreCountedInPiecesOfAnySize(step: Int) {
        var scanner = WebSocketFrameScanner()
        let bytes = frame(payload: 5) + frame(payload: 300, masked: true) + frame(payload: 70_000) + frame(opcode: 0x9, payload: 4)
        scan(&scanner, bytes, by: step)
        #expect(scanner.messages == 3, "the ping is no message")
        #expect(scanner.atFrameBoundary)
    }

    @Test func aFragmentedMessageCountsOnceItsLastFragmentCame() {
        var scanner = WebSocketFrameScanner()
        scan(&scanner, frame(fin: false, payload: 3) + frame(opcode: 0x0, fin: false, payload: 3))
        #expect(scanner.messages == 0)
        scan(&scanner, frame(opcode: 0x0, payload: 3))
        #expect(scanner.messages == 1)
    }

    @Test func insideAFrameIsNoBoundary() {
        var scanner = WebSocketFrameScanner()
        let bytes = frame(payload: 10)
        scan(&scanner, Array(bytes.prefix(5)))
        #expect(!scanner.atFrameBoundary)
        scan(&scanner, Array(bytes.dropFirst(5)))
        #expect(scanner.atFrameBoundary)
    }

    @Test func aCloseFrameIsSeen() {
        var scanner = WebSocketFrameScanner()
        scan(&scanner, frame(payload: 2))
        #expect(!scanner.sawClose)
        scan(&scanner, WebSocketFrameScanner.internalErrorClose)
        #expect(scanner.sawClose && scanner.messages == 1)
    }
}
