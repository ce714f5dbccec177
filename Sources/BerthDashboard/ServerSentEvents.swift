import NIOCore

/// Messages in the `text/event-stream` format (the HTML standard's server-sent events), ready to write.
enum ServerSentEvents {
    /// A message of type `event` (`addEventListener(event, …)` in the browser). With an `id`, a browser that
    /// reconnects says the last one it got in its `Last-Event-ID` header.
    static func message(event: String? = nil, id: UInt64? = nil, data: String) -> ByteBuffer {
        var text = ""
        text.reserveCapacity(data.utf8.count + 32)
        if let event { text += "event: \(event)\n" }
        if let id { text += "id: \(id)\n" }
        for line in data.split(separator: "\n", omittingEmptySubsequences: false) {
            text += "data: "
            text += line
            text += "\n"
        }
        text += "\n"
        return ByteBuffer(string: text)
    }

    /// A comment line, which clients ignore: keeps idle connections (and proxies) from timing out.
    static let keepAlive = ByteBuffer(string: ": keep-alive\n\n")

    /// How long a browser waits before reconnecting after the stream ends.
    static func retry(milliseconds: Int) -> ByteBuffer {
        ByteBuffer(string: "retry: \(milliseconds)\n\n")
    }
}
