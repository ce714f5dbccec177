import Glibc

/// Why a server could not listen.
package struct ListenError: Error, Sendable, CustomStringConvertible {
    package var description: String

    package init(description: String) { self.description = description }
}

/// A non-blocking TCP socket listening on a host and port, for a loop that polls it.
package struct ListeningSocket: Sendable {
    package let fd: Int32
    /// The address it listens on, as `host:port` (the port the kernel chose when asked for 0).
    package let address: String

    package init(host: String, port: Int, backlog: Int32 = 511) throws(ListenError) {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var found: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &found)
        guard status == 0, let first = found else {
            throw ListenError(description: "cannot listen on \(host):\(port): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(found) }
        var why = "no address"
        var info: UnsafeMutablePointer<addrinfo>? = first
        while let candidate = info {
            info = candidate.pointee.ai_next
            let fd = socket(candidate.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else {
                why = String(cString: strerror(errno))
                continue
            }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            guard bind(fd, candidate.pointee.ai_addr, candidate.pointee.ai_addrlen) == 0, listen(fd, backlog) == 0 else {
                why = String(cString: strerror(errno))
                close(fd)
                continue
            }
            self.fd = fd
            address = Self.localAddress(fd) ?? "\(host):\(port)"
            return
        }
        throw ListenError(description: "cannot listen on \(host):\(port): \(why)")
    }

    /// A socket someone else made and set listening (in another network namespace, say); it is this value's now.
    package init(adopting fd: Int32) {
        self.fd = fd
        address = Self.localAddress(fd) ?? "127.0.0.1:0"
    }

    private static func localAddress(_ fd: Int32) -> String? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let got = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard got == 0 else { return nil }
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var service = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let named = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, length, &host, socklen_t(host.count), &service, socklen_t(service.count), NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard named == 0 else { return nil }
        func text(_ characters: [CChar]) -> String {
            String(decoding: characters.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        let hostText = text(host)
        return (hostText.contains(":") ? "[\(hostText)]" : hostText) + ":" + text(service)
    }
}
