import Synchronization

/// W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` header, the convention every tracer
/// reads. `00-<trace id: 32 hex>-<parent span id: 16 hex>-<flags: 2 hex>`.
public struct TraceParent: Sendable, Hashable, CustomStringConvertible {
    /// The header's name.
    public static let header = "traceparent"

    /// 32 lowercase hex digits, not all zero.
    public var traceID: String
    /// The span of the sender: 16 lowercase hex digits, not all zero.
    public var spanID: String
    /// Bit 0: sampled.
    public var flags: UInt8

    public init(traceID: String, spanID: String, flags: UInt8 = 1) {
        self.traceID = traceID
        self.spanID = spanID
        self.flags = flags
    }

    /// Parses a `traceparent` value as the recommendation asks of a receiver: version `ff` and anything malformed
    /// (wrong lengths, uppercase or other non-hex digits, an all-zero id) give nil, so the receiver starts a new trace.
    /// A version above 00 is read for its first four fields, and may carry more after a `-`.
    public init?(parsing value: some StringProtocol) {
        let bytes = Array(value.utf8)
        guard bytes.count >= 55 else { return nil }
        guard bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"), bytes[52] == UInt8(ascii: "-") else { return nil }
        guard let version = Self.hexValue(bytes[0..<2]), version != 0xFF else { return nil }
        if version == 0 {
            guard bytes.count == 55 else { return nil }
        } else if bytes.count > 55 {
            guard bytes[55] == UInt8(ascii: "-") else { return nil }
        }
        let trace = bytes[3..<35], span = bytes[36..<52]
        guard trace.allSatisfy(Self.isLowerHex), span.allSatisfy(Self.isLowerHex),
              trace.contains(where: { $0 != UInt8(ascii: "0") }), span.contains(where: { $0 != UInt8(ascii: "0") }),
              let flags = Self.hexValue(bytes[53..<55])
        else { return nil }
        self.init(traceID: String(decoding: trace, as: UTF8.self), spanID: String(decoding: span, as: UTF8.self), flags: UInt8(flags))
    }

    /// The header value, version 00: written in one buffer, as it is made for every request at every hop.
    public var value: String {
        let trace = traceID.utf8, span = spanID.utf8
        let count = 3 + trace.count + 1 + span.count + 3
        return String(unsafeUninitializedCapacity: count) { buffer in
            var index = 0
            func put(_ byte: UInt8) {
                buffer[index] = byte
                index += 1
            }
            put(UInt8(ascii: "0"))
            put(UInt8(ascii: "0"))
            put(UInt8(ascii: "-"))
            for byte in trace { put(byte) }
            put(UInt8(ascii: "-"))
            for byte in span { put(byte) }
            put(UInt8(ascii: "-"))
            put(Self.hexDigit(flags >> 4))
            put(Self.hexDigit(flags & 0xF))
            return index
        }
    }

    public var description: String { value }

    /// The same trace, with `spanID` as the sender: what a hop passes on once it made its own span.
    public func with(spanID: String) -> TraceParent {
        TraceParent(traceID: traceID, spanID: spanID, flags: flags)
    }

    /// Whether `text` is a span id: 16 lowercase hex digits, not all zero.
    public static func isSpanID(_ text: String) -> Bool {
        text.utf8.count == 16 && text.utf8.allSatisfy(isLowerHex) && text.utf8.contains { $0 != UInt8(ascii: "0") }
    }

    /// Whether `text` is a trace id: 32 lowercase hex digits, not all zero.
    public static func isTraceID(_ text: String) -> Bool {
        text.utf8.count == 32 && text.utf8.allSatisfy(isLowerHex) && text.utf8.contains { $0 != UInt8(ascii: "0") }
    }

    static func isLowerHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }

    private static func hexValue(_ digits: ArraySlice<UInt8>) -> Int? {
        var value = 0
        for byte in digits {
            guard isLowerHex(byte) else { return nil }
            value = value << 4 | Int(byte <= UInt8(ascii: "9") ? byte - UInt8(ascii: "0") : byte - UInt8(ascii: "a") + 10)
        }
        return value
    }

    /// `value` as `digits` lowercase hex digits, zero-padded.
    static func hex(_ value: UInt64, digits: Int) -> String {
        String(unsafeUninitializedCapacity: digits) { buffer in
            for index in 0..<digits {
                buffer[index] = hexDigit(UInt8(truncatingIfNeeded: value >> (UInt64(digits - 1 - index) * 4)) & 0xF)
            }
            return digits
        }
    }

    /// `high` then `low`, 16 hex digits each.
    static func hex(_ high: UInt64, _ low: UInt64) -> String {
        String(unsafeUninitializedCapacity: 32) { buffer in
            for index in 0..<16 {
                let shift = UInt64(15 - index) * 4
                buffer[index] = hexDigit(UInt8(truncatingIfNeeded: high >> shift) & 0xF)
                buffer[16 + index] = hexDigit(UInt8(truncatingIfNeeded: low >> shift) & 0xF)
            }
            return 32
        }
    }

    /// The lowercase hex digit of `nibble` (0-15).
    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
}

/// New trace and span ids, unique within a process and unguessable across processes, with no system call per id:
/// a counter mixed (splitmix64) with keys chosen at random when the generator is made.
public final class TraceIDs: Sendable {
    private let counter = Atomic<UInt64>(0)
    private let keys: (UInt64, UInt64)

    public init() {
        var random = SystemRandomNumberGenerator()
        keys = (random.next(), random.next())
    }

    /// A new span id: 16 hex digits, never all zero.
    public func spanID() -> String {
        TraceParent.hex(nonZero(Self.mix(next() ^ keys.0)), digits: 16)
    }

    /// A new trace id: 32 hex digits, never all zero.
    public func traceID() -> String {
        let count = next()
        return TraceParent.hex(nonZero(Self.mix(count ^ keys.0)), Self.mix(count ^ keys.1))
    }

    /// A new trace, with a first span as its sender, sampled.
    public func newTrace() -> TraceParent {
        TraceParent(traceID: traceID(), spanID: spanID(), flags: 1)
    }

    private func next() -> UInt64 { counter.wrappingAdd(1, ordering: .relaxed).newValue }
    private func nonZero(_ value: UInt64) -> UInt64 { value == 0 ? 1 : value }

    /// splitmix64's finaliser: a bijection, so distinct counts give distinct ids.
    private static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The class names that traffic events give what is not a container instance.
public enum EventNames {
    /// The destination class of an egress call that left the mesh; its instance id is the host it went to.
    public static let internetClass = "internet"
    /// The source class of the edge's event for a client's request to a Worker: the parent span of its requests.
    public static let clientClass = "client"
}

/// Where a process sends its spans besides the event stream (an OTLP exporter): each traffic event it publishes is
/// one span. Called on the process's bus thread: it must not wait.
public protocol SpanSink: Sendable {
    func record(_ event: TrafficEvent)
}
