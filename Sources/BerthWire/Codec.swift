internal import CBerthProto

// Encoding and decoding through libprotobuf-c. Nothing of protobuf-c leaves this file.
//
// protobuf-c works on C strings: a string is cut at its first NUL byte on both encode and decode.

extension Envelope {
    /// The protobuf encoding of this envelope: the one `Envelope` frame of a bus message.
    public func encoded() -> [UInt8] {
        withArena { arena in
            let message = arena.message(Berth__Envelope.self, berth__envelope__init)
            switch self {
            case .ready(let ready):
                message.pointee.kind_case = BERTH__ENVELOPE__KIND_READY
                message.pointee.ready = arena.encode(ready)
            case .heartbeat(let heartbeat):
                message.pointee.kind_case = BERTH__ENVELOPE__KIND_HEARTBEAT
                let c = arena.message(Berth__Heartbeat.self, berth__heartbeat__init)
                c.pointee.in_flight = heartbeat.inFlight
                message.pointee.heartbeat = c
            case .disconnect(let disconnect):
                message.pointee.kind_case = BERTH__ENVELOPE__KIND_DISCONNECT
                let c = arena.message(Berth__Disconnect.self, berth__disconnect__init)
                arena.copy(disconnect.reason, to: &c.pointee.reason)
                message.pointee.disconnect = c
            case .request(let request):
                message.pointee.kind_case = BERTH__ENVELOPE__KIND_REQUEST
                message.pointee.request = arena.encode(request)
            case .response(let response):
                message.pointee.kind_case = BERTH__ENVELOPE__KIND_RESPONSE
                message.pointee.response = arena.encode(response)
            case .directoryRequest:
                message.pointee.kind_case = BERTH__ENVELOPE__KIND_DIRECTORY_REQUEST
                message.pointee.directory_request = arena.message(Berth__DirectoryRequest.self, berth__directory_request__init)
            case .directory(let directory):
                message.pointee.kind_case = BERTH__ENVELOPE__KIND_DIRECTORY
                let c = arena.message(Berth__Directory.self, berth__directory__init)
                c.pointee.epoch = directory.epoch
                c.pointee.sequence = directory.sequence
                c.pointee.n_instances = directory.instances.count
                let list = arena.allocate(UnsafeMutablePointer<Berth__Ready>?.self, count: max(1, directory.instances.count))
                for (index, ready) in directory.instances.enumerated() { list[index] = arena.encode(ready) }
                c.pointee.instances = list
                message.pointee.directory = c
            case .directoryUpdate(let update):
                message.pointee.kind_case = BERTH__ENVELOPE__KIND_DIRECTORY_UPDATE
                let c = arena.message(Berth__DirectoryUpdate.self, berth__directory_update__init)
                c.pointee.epoch = update.epoch
                c.pointee.sequence = update.sequence
                c.pointee.instance = arena.encode(update.instance)
                c.pointee.removed = update.removed ? 1 : 0
                message.pointee.directory_update = c
            case .streamData(let data):
                message.pointee.kind_case = BERTH__ENVELOPE__KIND_STREAM_DATA
                let c = arena.message(Berth__StreamData.self, berth__stream_data__init)
                c.pointee.id = data.id
                c.pointee.final = data.final ? 1 : 0
                if let error = data.error { c.pointee.error = arena.encode(error) }
                message.pointee.stream_data = c
            case .credit(let credit):
                message.pointee.kind_case = BERTH__ENVELOPE__KIND_CREDIT
                let c = arena.message(Berth__Credit.self, berth__credit__init)
                c.pointee.id = credit.id
                c.pointee.bytes = credit.bytes
                message.pointee.credit = c
            case .streamCancel(let cancel):
                message.pointee.kind_case = BERTH__ENVELOPE__KIND_STREAM_CANCEL
                let c = arena.message(Berth__StreamCancel.self, berth__stream_cancel__init)
                c.pointee.id = cancel.id
                arena.copy(cancel.reason, to: &c.pointee.reason)
                message.pointee.stream_cancel = c
            }
            return pack(berth__envelope__get_packed_size(message)) { berth__envelope__pack(message, $0) }
        }
    }

    /// Decodes and validates one `Envelope` frame.
    ///
    /// Throws when the bytes are not an `Envelope`, no kind is set, a string is not UTF-8, or a rule of
    /// `berth.proto` is broken (a `Request` without target, method or absolute path; a `Response` status
    /// outside 100...599; a `Ready` with an unsupported version, no class or instance, or zero capacity).
    public init(decoding bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else {
            throw WireError(code: .empty, message: "Envelope has no kind set (0 bytes)")
        }
        self = try withUnpackAllocator { allocator throws(WireError) in
            guard let message = berth__envelope__unpack(allocator, bytes.count, base.assumingMemoryBound(to: UInt8.self)) else {
                throw .malformed("Envelope", bytes.count)
            }
            return try Envelope(message.pointee)
        }
    }

    private init(_ c: Berth__Envelope) throws(WireError) {
        switch c.kind_case {
        case BERTH__ENVELOPE__KIND_READY:
            self = .ready(try Ready(try present(c.ready, "Envelope.ready")))
        case BERTH__ENVELOPE__KIND_HEARTBEAT:
            self = .heartbeat(Heartbeat(inFlight: try present(c.heartbeat, "Envelope.heartbeat").pointee.in_flight))
        case BERTH__ENVELOPE__KIND_DISCONNECT:
            let reason = try present(c.disconnect, "Envelope.disconnect").pointee.reason
            self = .disconnect(Disconnect(reason: try string(reason, "Disconnect.reason")))
        case BERTH__ENVELOPE__KIND_REQUEST:
            self = .request(try Request(try present(c.request, "Envelope.request")))
        case BERTH__ENVELOPE__KIND_RESPONSE:
            self = .response(try Response(try present(c.response, "Envelope.response")))
        case BERTH__ENVELOPE__KIND_DIRECTORY_REQUEST:
            _ = try present(c.directory_request, "Envelope.directory_request")
            self = .directoryRequest
        case BERTH__ENVELOPE__KIND_DIRECTORY:
            let directory = try present(c.directory, "Envelope.directory").pointee
            var instances: [Ready] = []
            instances.reserveCapacity(directory.n_instances)
            for index in 0..<directory.n_instances {
                instances.append(try Ready(try present(directory.instances[index], "Directory.instances")))
            }
            self = .directory(Directory(epoch: directory.epoch, sequence: directory.sequence, instances: instances))
        case BERTH__ENVELOPE__KIND_DIRECTORY_UPDATE:
            let update = try present(c.directory_update, "Envelope.directory_update").pointee
            self = .directoryUpdate(DirectoryUpdate(
                epoch: update.epoch, sequence: update.sequence,
                instance: try Ready(try present(update.instance, "DirectoryUpdate.instance")), removed: update.removed != 0
            ))
        case BERTH__ENVELOPE__KIND_STREAM_DATA:
            let data = try present(c.stream_data, "Envelope.stream_data").pointee
            let error = try data.error.map { error throws(WireError) in try MeshError(error, "StreamData.error") }
            self = .streamData(StreamData(id: data.id, final: data.final != 0, error: error))
        case BERTH__ENVELOPE__KIND_CREDIT:
            let credit = try present(c.credit, "Envelope.credit").pointee
            guard credit.bytes > 0 else { throw WireError(code: .invalidValue, message: "Credit.bytes is 0 (must grant at least 1)") }
            self = .credit(Credit(id: credit.id, bytes: credit.bytes))
        case BERTH__ENVELOPE__KIND_STREAM_CANCEL:
            let cancel = try present(c.stream_cancel, "Envelope.stream_cancel").pointee
            self = .streamCancel(StreamCancel(id: cancel.id, reason: try string(cancel.reason, "StreamCancel.reason")))
        default:
            throw WireError(code: .empty, message: "Envelope has no kind set")
        }
    }

    /// Decodes and validates one `Envelope` frame; the same rules as decoding from a buffer.
    public init(decoding bytes: [UInt8]) throws(WireError) {
        self = try bytes.withUnsafeBytes { raw in Result { () throws(WireError) in try Envelope(decoding: raw) } }.get()
    }
}

extension Event {
    /// The protobuf encoding of this event: the frame after the topic on the event stream.
    public func encoded() -> [UInt8] {
        withArena { arena in
            let message = arena.message(Berth__Event.self, berth__event__init)
            switch self {
            case .traffic(let traffic):
                message.pointee.kind_case = BERTH__EVENT__KIND_TRAFFIC
                message.pointee.traffic = arena.encode(traffic)
            case .lifecycle(let lifecycle):
                message.pointee.kind_case = BERTH__EVENT__KIND_LIFECYCLE
                message.pointee.lifecycle = arena.encode(lifecycle)
            case .log(let log):
                message.pointee.kind_case = BERTH__EVENT__KIND_LOG
                message.pointee.log = arena.encode(log)
            }
            return pack(berth__event__get_packed_size(message)) { berth__event__pack(message, $0) }
        }
    }

    /// Decodes one `Event` frame. Unknown enum values decode as the enum's zero value
    /// (`ErrorCode.internal` for error codes); strings must be UTF-8.
    public init(decoding bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else {
            throw WireError(code: .empty, message: "Event has no kind set (0 bytes)")
        }
        self = try withUnpackAllocator { allocator throws(WireError) in
            guard let message = berth__event__unpack(allocator, bytes.count, base.assumingMemoryBound(to: UInt8.self)) else {
                throw .malformed("Event", bytes.count)
            }
            return try Event(message.pointee)
        }
    }

    private init(_ c: Berth__Event) throws(WireError) {
        switch c.kind_case {
        case BERTH__EVENT__KIND_TRAFFIC:
            self = .traffic(try TrafficEvent(try present(c.traffic, "Event.traffic")))
        case BERTH__EVENT__KIND_LIFECYCLE:
            self = .lifecycle(try LifecycleEvent(try present(c.lifecycle, "Event.lifecycle")))
        case BERTH__EVENT__KIND_LOG:
            self = .log(try LogLine(try present(c.log, "Event.log")))
        default:
            throw WireError(code: .empty, message: "Event has no kind set")
        }
    }

    /// Decodes one `Event` frame; the same rules as decoding from a buffer.
    public init(decoding bytes: [UInt8]) throws(WireError) {
        self = try bytes.withUnsafeBytes { raw in Result { () throws(WireError) in try Event(decoding: raw) } }.get()
    }
}

// MARK: - Encoding

/// Packs into an array of exactly `size` bytes.
private func pack(_ size: Int, _ body: (UnsafeMutablePointer<UInt8>) -> Int) -> [UInt8] {
    [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
        count = buffer.baseAddress.map(body) ?? 0
    }
}

/// Runs `body` with an arena whose first `stackBytes` are on the stack, so a typical message is encoded (or
/// decoded) without a heap allocation besides the result.
private func withArena<Result>(stackBytes: Int = 1024, _ body: (inout Arena) -> Result) -> Result {
    withUnsafeTemporaryAllocation(byteCount: stackBytes, alignment: 16) { stack in
        var arena = Arena(stack)
        return body(&arena)
    }
}

// MARK: - Decoding

/// Runs `body` with a protobuf-c allocator that takes what an unpacked message needs (its structs, strings and
/// arrays, a dozen blocks for a request with headers) from an arena whose first 4 KiB are on the stack, and frees
/// nothing: all of it goes when the arena does, so `free_unpacked` is not needed either. protobuf-c's default
/// allocator made one `malloc` and one `free` per block, on every message every process receives.
private func withUnpackAllocator<Value>(
    _ body: (UnsafeMutablePointer<ProtobufCAllocator>) throws(WireError) -> Value
) throws(WireError) -> Value {
    let result = withArena(stackBytes: 4096) { arena in
        withUnsafeMutablePointer(to: &arena) { arena in
            var allocator = ProtobufCAllocator(
                alloc: { data, size in data!.assumingMemoryBound(to: Arena.self).pointee.allocate(byteCount: size) },
                free: { _, _ in },
                allocator_data: UnsafeMutableRawPointer(arena)
            )
            return Result { () throws(WireError) in try body(&allocator) }
        }
    }
    return try result.get()
}

/// A bump allocator for the C structs and C strings of one message being packed or unpacked.
///
/// Everything it hands out lives until the arena ends, which is after `pack` returns or the unpacked message is
/// converted to Swift values. Chunks that do not fit in the first buffer come from the heap; each starts with a
/// pointer to the previous one, so `deinit` can free them.
private struct Arena: ~Copyable {
    private var cursor: UnsafeMutableRawPointer
    private var end: UnsafeMutableRawPointer
    private var heapChunks: UnsafeMutableRawPointer?

    private static let chunkHeader = 16
    private static let chunkSize = 4096

    init(_ first: UnsafeMutableRawBufferPointer) {
        cursor = first.baseAddress!
        end = first.baseAddress! + first.count
    }

    deinit {
        var chunk = heapChunks
        while let current = chunk {
            chunk = current.load(as: UnsafeMutableRawPointer?.self)
            current.deallocate()
        }
    }

    mutating func allocate<T>(_: T.Type, count: Int = 1) -> UnsafeMutablePointer<T> {
        let byteCount = MemoryLayout<T>.stride * count
        let alignment = MemoryLayout<T>.alignment
        var start = cursor.alignedUp(toMultipleOf: alignment)
        if start.distance(to: end) < byteCount {
            let size = max(Self.chunkSize, Self.chunkHeader + byteCount + alignment)
            let chunk = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
            chunk.storeBytes(of: heapChunks, as: UnsafeMutableRawPointer?.self)
            heapChunks = chunk
            end = chunk + size
            start = (chunk + Self.chunkHeader).alignedUp(toMultipleOf: alignment)
        }
        cursor = start + byteCount
        return start.bindMemory(to: T.self, capacity: count)
    }

    /// Raw bytes aligned as `malloc`'s are, for protobuf-c.
    mutating func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(allocate(SIMD16<UInt8>.self, count: (byteCount + 15) / 16))
    }

    /// A C message struct, set to its defaults (string fields point at `protobuf_c_empty_string`).
    mutating func message<T>(_ type: T.Type, _ initialize: (UnsafeMutablePointer<T>?) -> Void) -> UnsafeMutablePointer<T> {
        let pointer = allocate(type)
        initialize(pointer)
        return pointer
    }

    /// Points `field` at a NUL-terminated copy of `string`; an empty string keeps the default `""`.
    mutating func copy(_ string: String, to field: inout UnsafeMutablePointer<CChar>?) {
        guard !string.isEmpty else { return }
        var string = string
        field = string.withUTF8 { utf8 in
            let pointer = allocate(CChar.self, count: utf8.count + 1)
            UnsafeMutableRawPointer(pointer).copyMemory(from: utf8.baseAddress!, byteCount: utf8.count)
            pointer[utf8.count] = 0
            return pointer
        }
    }

    /// A `bytes` field holding `string`'s UTF-8, in the arena.
    mutating func bytes(_ string: String) -> ProtobufCBinaryData {
        guard !string.isEmpty else { return ProtobufCBinaryData(len: 0, data: nil) }
        var string = string
        return string.withUTF8 { utf8 in
            let pointer = allocate(UInt8.self, count: utf8.count)
            pointer.initialize(from: utf8.baseAddress!, count: utf8.count)
            return ProtobufCBinaryData(len: utf8.count, data: pointer)
        }
    }

    /// A repeated number field: its count and its values, in the arena.
    mutating func encode<T: BinaryInteger>(_ values: [T]) -> (Int, UnsafeMutablePointer<T>?) {
        guard !values.isEmpty else { return (0, nil) }
        let buffer = allocate(T.self, count: values.count)
        _ = UnsafeMutableBufferPointer(start: buffer, count: values.count).initialize(from: values)
        return (values.count, buffer)
    }

    mutating func encode(_ headers: [Header]) -> (Int, UnsafeMutablePointer<UnsafeMutablePointer<Berth__Header>?>?) {
        guard !headers.isEmpty else { return (0, nil) }
        let list = allocate(UnsafeMutablePointer<Berth__Header>?.self, count: headers.count)
        let structs = allocate(Berth__Header.self, count: headers.count)
        for (index, header) in headers.enumerated() {
            let c = structs + index
            berth__header__init(c)
            copy(header.name, to: &c.pointee.name)
            c.pointee.value = bytes(header.value)
            list[index] = c
        }
        return (headers.count, list)
    }

    mutating func encode(_ endpoint: Endpoint) -> UnsafeMutablePointer<Berth__Endpoint> {
        let c = message(Berth__Endpoint.self, berth__endpoint__init)
        copy(endpoint.className, to: &c.pointee.class_name)
        copy(endpoint.instanceID, to: &c.pointee.instance_id)
        c.pointee.port = endpoint.port
        return c
    }

    /// A required-in-Swift endpoint: the default `Endpoint()` is left out of the encoding and decodes back as it.
    mutating func encodeUnlessDefault(_ endpoint: Endpoint) -> UnsafeMutablePointer<Berth__Endpoint>? {
        endpoint == Endpoint() ? nil : encode(endpoint)
    }

    mutating func encode(_ error: MeshError) -> UnsafeMutablePointer<Berth__Error> {
        let c = message(Berth__Error.self, berth__error__init)
        c.pointee.code = Berth__ErrorCode(rawValue: .init(truncatingIfNeeded: error.code.rawValue))
        copy(error.message, to: &c.pointee.message)
        copy(error.component, to: &c.pointee.component)
        return c
    }

    mutating func encode(_ ready: Ready) -> UnsafeMutablePointer<Berth__Ready> {
        let c = message(Berth__Ready.self, berth__ready__init)
        c.pointee.protocol_version = ready.protocolVersion
        copy(ready.className, to: &c.pointee.class_name)
        copy(ready.instanceID, to: &c.pointee.instance_id)
        (c.pointee.n_ports, c.pointee.ports) = encode(ready.ports)
        c.pointee.capacity = ready.capacity
        c.pointee.heartbeat_ms = ready.heartbeatMilliseconds
        copy(ready.endpoint, to: &c.pointee.endpoint)
        copy(ready.curvePublicKey, to: &c.pointee.curve_public_key)
        return c
    }

    mutating func encode(_ request: Request) -> UnsafeMutablePointer<Berth__Request> {
        let c = message(Berth__Request.self, berth__request__init)
        c.pointee.id = request.id
        let target = message(Berth__Target.self, berth__target__init)
        copy(request.target.className, to: &target.pointee.class_name)
        copy(request.target.instanceName ?? "", to: &target.pointee.instance_name)
        c.pointee.target = target
        c.pointee.port = request.port
        copy(request.method, to: &c.pointee.method)
        copy(request.path, to: &c.pointee.path)
        copy(request.query, to: &c.pointee.query)
        (c.pointee.n_headers, c.pointee.headers) = encode(request.headers)
        c.pointee.timeout_ms = request.timeoutMilliseconds
        copy(request.traceID, to: &c.pointee.trace_id)
        c.pointee.attempt = request.attempt
        c.pointee.source = encodeUnlessDefault(request.source)
        copy(request.parentSpanID, to: &c.pointee.parent_span_id)
        c.pointee.trace_flags = request.traceFlags
        copy(request.xRequestID, to: &c.pointee.x_request_id)
        c.pointee.body_streams = request.bodyStreams ? 1 : 0
        c.pointee.stream_window = request.streamWindow
        c.pointee.upgrade = request.upgrade ? 1 : 0
        return c
    }

    mutating func encode(_ response: Response) -> UnsafeMutablePointer<Berth__Response> {
        let c = message(Berth__Response.self, berth__response__init)
        c.pointee.id = response.id
        c.pointee.status = response.status
        (c.pointee.n_headers, c.pointee.headers) = encode(response.headers)
        if let error = response.error { c.pointee.error = encode(error) }
        if let servedBy = response.servedBy { c.pointee.served_by = encode(servedBy) }
        c.pointee.in_flight = response.inFlight
        c.pointee.body_streams = response.bodyStreams ? 1 : 0
        return c
    }

    mutating func encode(_ event: TrafficEvent) -> UnsafeMutablePointer<Berth__TrafficEvent> {
        let c = message(Berth__TrafficEvent.self, berth__traffic_event__init)
        c.pointee.time_us = event.timeMicroseconds
        c.pointee.request_id = event.requestID
        copy(event.traceID, to: &c.pointee.trace_id)
        c.pointee.source = encodeUnlessDefault(event.source)
        c.pointee.destination = encodeUnlessDefault(event.destination)
        copy(event.method, to: &c.pointee.method)
        copy(event.path, to: &c.pointee.path)
        c.pointee.status = event.status
        c.pointee.bytes_in = event.bytesIn
        c.pointee.bytes_out = event.bytesOut
        c.pointee.latency_us = event.latencyMicroseconds
        c.pointee.kind = Berth__TrafficKind(rawValue: .init(truncatingIfNeeded: event.kind.rawValue))
        if let error = event.error { c.pointee.error = encode(error) }
        copy(event.spanID, to: &c.pointee.span_id)
        copy(event.parentSpanID, to: &c.pointee.parent_span_id)
        copy(event.xRequestID, to: &c.pointee.x_request_id)
        c.pointee.in_progress = event.inProgress ? 1 : 0
        c.pointee.streamed = event.streamed ? 1 : 0
        c.pointee.messages_in = event.messagesIn
        c.pointee.messages_out = event.messagesOut
        return c
    }

    mutating func encode(_ event: LifecycleEvent) -> UnsafeMutablePointer<Berth__LifecycleEvent> {
        let c = message(Berth__LifecycleEvent.self, berth__lifecycle_event__init)
        c.pointee.time_us = event.timeMicroseconds
        c.pointee.container = encodeUnlessDefault(event.container)
        c.pointee.state = Berth__LifecycleState(rawValue: .init(truncatingIfNeeded: event.state.rawValue))
        c.pointee.exit_code = event.exitCode
        c.pointee.restarts = event.restarts
        c.pointee.pid = event.pid
        copy(event.message, to: &c.pointee.message)
        return c
    }

    mutating func encode(_ line: LogLine) -> UnsafeMutablePointer<Berth__LogLine> {
        let c = message(Berth__LogLine.self, berth__log_line__init)
        c.pointee.time_us = line.timeMicroseconds
        c.pointee.container = encodeUnlessDefault(line.container)
        c.pointee.stream = Berth__LogStream(rawValue: .init(truncatingIfNeeded: line.stream.rawValue))
        copy(line.line, to: &c.pointee.line)
        return c
    }
}

// MARK: - Decoding

extension WireError {
    fileprivate static func malformed(_ message: StaticString, _ count: Int) -> WireError {
        WireError(code: .malformed, message: "malformed \(message): protobuf-c could not unpack \(count) bytes")
    }

    fileprivate static func missing(_ field: String) -> WireError {
        WireError(code: .missingField, message: "\(field) is empty")
    }
}

/// A oneof member that protobuf-c reports as set; it is never NULL then, but a NULL must not crash either.
private func present<T>(_ pointer: UnsafeMutablePointer<T>?, _ field: StaticString) throws(WireError) -> UnsafePointer<T> {
    guard let pointer else { throw WireError(code: .malformed, message: "malformed \(field): set but absent") }
    return UnsafePointer(pointer)
}

/// A decoded string field; protobuf-c does not check UTF-8, so it is checked here.
private func string(_ pointer: UnsafePointer<CChar>?, _ field: @autoclosure () -> String) throws(WireError) -> String {
    guard let pointer else { return "" }
    guard let string = String(validatingCString: pointer) else {
        throw WireError(code: .invalidValue, message: "\(field()) is not valid UTF-8")
    }
    return string
}

/// A header value: UTF-8 with no NUL, as every Berth process sends them; anything else is refused, never changed.
private func headerValue(_ data: ProtobufCBinaryData, _ field: @autoclosure () -> String) throws(WireError) -> String {
    guard data.len > 0, let base = data.data else { return "" }
    let bytes = UnsafeBufferPointer(start: base, count: data.len)
    if bytes.contains(0) { throw WireError(code: .invalidValue, message: "\(field()) contains a NUL byte") }
    guard let value = String(validating: bytes, as: UTF8.self) else {
        throw WireError(code: .invalidValue, message: "\(field()) is not valid UTF-8")
    }
    return value
}

/// The start of an untrusted value, for an error message.
private func quoted(_ value: String) -> String {
    value.utf8.count <= 64 ? "\"\(value)\"" : "\"\(value.prefix(64))…\""
}

/// A repeated number field's values.
private func decodeScalars<T>(_ count: Int, _ values: UnsafeMutablePointer<T>?) -> [T] {
    guard count > 0, let values else { return [] }
    return Array(UnsafeBufferPointer(start: values, count: count))
}

private func decodeHeaders(
    _ count: Int,
    _ list: UnsafeMutablePointer<UnsafeMutablePointer<Berth__Header>?>?,
    _ message: StaticString
) throws(WireError) -> [Header] {
    guard count > 0, let list else { return [] }
    var headers: [Header] = []
    headers.reserveCapacity(count)
    for index in 0..<count {
        guard let c = list[index] else { continue }
        headers.append(
            Header(
                try string(c.pointee.name, "\(message).headers[\(index)].name"),
                try headerValue(c.pointee.value, "\(message).headers[\(index)].value")
            )
        )
    }
    return headers
}

extension Endpoint {
    /// An absent endpoint decodes as `Endpoint()`.
    fileprivate init(_ c: UnsafePointer<Berth__Endpoint>?, _ field: StaticString) throws(WireError) {
        guard let c else {
            self.init()
            return
        }
        self.init(
            className: try string(c.pointee.class_name, "\(field).class_name"),
            instanceID: try string(c.pointee.instance_id, "\(field).instance_id"),
            port: c.pointee.port
        )
    }
}

extension MeshError {
    /// An unknown error code decodes as `.internal`: the receiver must still answer with an error.
    fileprivate init(_ c: UnsafePointer<Berth__Error>, _ field: StaticString) throws(WireError) {
        self.init(
            code: ErrorCode(rawValue: .init(truncatingIfNeeded: c.pointee.code.rawValue)) ?? .internal,
            message: try string(c.pointee.message, "\(field).message"),
            component: try string(c.pointee.component, "\(field).component")
        )
    }
}

extension Ready {
    fileprivate init(_ c: UnsafePointer<Berth__Ready>) throws(WireError) {
        let version = c.pointee.protocol_version
        guard version == Ready.currentProtocolVersion else {
            throw WireError(
                code: .unsupportedVersion,
                message: "Ready.protocol_version \(version) is not supported (this build speaks \(Ready.currentProtocolVersion))"
            )
        }
        let className = try string(c.pointee.class_name, "Ready.class_name")
        guard !className.isEmpty else { throw .missing("Ready.class_name") }
        let instanceID = try string(c.pointee.instance_id, "Ready.instance_id")
        guard !instanceID.isEmpty else { throw .missing("Ready.instance_id") }
        guard c.pointee.capacity >= 1 else {
            throw WireError(code: .invalidValue, message: "Ready.capacity is 0 (must be at least 1)")
        }
        let ports = decodeScalars(c.pointee.n_ports, c.pointee.ports)
        let endpoint = try string(c.pointee.endpoint, "Ready.endpoint")
        guard !endpoint.isEmpty else { throw .missing("Ready.endpoint") }
        let curvePublicKey = try string(c.pointee.curve_public_key, "Ready.curve_public_key")
        guard curvePublicKey.isEmpty || (curvePublicKey.utf8.count == 40 && curvePublicKey.utf8.allSatisfy { (0x21...0x7d).contains($0) }) else {
            throw WireError(code: .invalidValue, message: "Ready.curve_public_key must be empty or 40 characters of Z85, not \(curvePublicKey.utf8.count) bytes")
        }
        self.init(
            protocolVersion: version,
            className: className,
            instanceID: instanceID,
            ports: ports,
            capacity: c.pointee.capacity,
            heartbeatMilliseconds: c.pointee.heartbeat_ms,
            endpoint: endpoint,
            curvePublicKey: curvePublicKey
        )
    }
}

extension Request {
    fileprivate init(_ c: UnsafePointer<Berth__Request>) throws(WireError) {
        guard let target = c.pointee.target else {
            throw WireError(code: .missingField, message: "Request has no target")
        }
        let className = try string(target.pointee.class_name, "Request.target.class_name")
        guard !className.isEmpty else { throw .missing("Request.target.class_name") }
        let instanceName = try string(target.pointee.instance_name, "Request.target.instance_name")
        let method = try string(c.pointee.method, "Request.method")
        guard !method.isEmpty else { throw .missing("Request.method") }
        let path = try string(c.pointee.path, "Request.path")
        guard !path.isEmpty else { throw .missing("Request.path") }
        guard path.utf8.first == UInt8(ascii: "/") else {
            throw WireError(code: .invalidValue, message: "Request.path \(quoted(path)) does not start with \"/\"")
        }
        self.init(
            id: c.pointee.id,
            target: Target(className: className, instanceName: instanceName.isEmpty ? nil : instanceName),
            port: c.pointee.port,
            method: method,
            path: path,
            query: try string(c.pointee.query, "Request.query"),
            headers: try decodeHeaders(c.pointee.n_headers, c.pointee.headers, "Request"),
            timeoutMilliseconds: c.pointee.timeout_ms,
            traceID: try string(c.pointee.trace_id, "Request.trace_id"),
            attempt: c.pointee.attempt,
            source: try Endpoint(c.pointee.source, "Request.source"),
            parentSpanID: try string(c.pointee.parent_span_id, "Request.parent_span_id"),
            traceFlags: c.pointee.trace_flags,
            xRequestID: try string(c.pointee.x_request_id, "Request.x_request_id")
        )
        bodyStreams = c.pointee.body_streams != 0
        streamWindow = c.pointee.stream_window
        upgrade = c.pointee.upgrade != 0
    }
}

extension Response {
    fileprivate init(_ c: UnsafePointer<Berth__Response>) throws(WireError) {
        let status = c.pointee.status
        // A response Berth made itself (error set) carries status 0: the edge alone maps errors to statuses.
        guard (100...599).contains(status) || (status == 0 && c.pointee.error != nil) else {
            throw WireError(code: .invalidValue, message: "Response.status \(status) is outside 100...599")
        }
        self.init(
            id: c.pointee.id,
            status: status,
            headers: try decodeHeaders(c.pointee.n_headers, c.pointee.headers, "Response"),
            error: try c.pointee.error.map { error throws(WireError) in try MeshError(error, "Response.error") },
            servedBy: try c.pointee.served_by.map { endpoint throws(WireError) in
                try Endpoint(endpoint, "Response.served_by")
            },
            inFlight: c.pointee.in_flight
        )
        bodyStreams = c.pointee.body_streams != 0
    }
}

extension TrafficEvent {
    fileprivate init(_ c: UnsafePointer<Berth__TrafficEvent>) throws(WireError) {
        self.init(
            timeMicroseconds: c.pointee.time_us,
            requestID: c.pointee.request_id,
            traceID: try string(c.pointee.trace_id, "TrafficEvent.trace_id"),
            source: try Endpoint(c.pointee.source, "TrafficEvent.source"),
            destination: try Endpoint(c.pointee.destination, "TrafficEvent.destination"),
            method: try string(c.pointee.method, "TrafficEvent.method"),
            path: try string(c.pointee.path, "TrafficEvent.path"),
            status: c.pointee.status,
            bytesIn: c.pointee.bytes_in,
            bytesOut: c.pointee.bytes_out,
            latencyMicroseconds: c.pointee.latency_us,
            kind: TrafficKind(rawValue: .init(truncatingIfNeeded: c.pointee.kind.rawValue)) ?? .unspecified,
            error: try c.pointee.error.map { error throws(WireError) in try MeshError(error, "TrafficEvent.error") },
            spanID: try string(c.pointee.span_id, "TrafficEvent.span_id"),
            parentSpanID: try string(c.pointee.parent_span_id, "TrafficEvent.parent_span_id"),
            xRequestID: try string(c.pointee.x_request_id, "TrafficEvent.x_request_id")
        )
        inProgress = c.pointee.in_progress != 0
        streamed = c.pointee.streamed != 0
        messagesIn = c.pointee.messages_in
        messagesOut = c.pointee.messages_out
    }
}

extension LifecycleEvent {
    fileprivate init(_ c: UnsafePointer<Berth__LifecycleEvent>) throws(WireError) {
        self.init(
            timeMicroseconds: c.pointee.time_us,
            container: try Endpoint(c.pointee.container, "LifecycleEvent.container"),
            state: LifecycleState(rawValue: .init(truncatingIfNeeded: c.pointee.state.rawValue)) ?? .unspecified,
            exitCode: c.pointee.exit_code,
            restarts: c.pointee.restarts,
            pid: c.pointee.pid,
            message: try string(c.pointee.message, "LifecycleEvent.message")
        )
    }
}

extension LogLine {
    fileprivate init(_ c: UnsafePointer<Berth__LogLine>) throws(WireError) {
        self.init(
            timeMicroseconds: c.pointee.time_us,
            container: try Endpoint(c.pointee.container, "LogLine.container"),
            stream: LogStream(rawValue: .init(truncatingIfNeeded: c.pointee.stream.rawValue)) ?? .stdout,
            line: try string(c.pointee.line, "LogLine.line")
        )
    }
}
