import BerthCompose
import Glibc

/// Which host of a multi-host compose file this machine is: the one whose address is on one of its interfaces.
public enum HostDetection {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The host this machine runs; nil for a file without `hosts:`. `named` (from `--host`) wins when given.
    public static func localHost(in compose: ComposeFile, named: String? = nil) throws(Failure) -> String? {
        guard !compose.hosts.isEmpty else {
            if let named { throw Failure(description: "--host \(named): \(compose.path) has no 'hosts:' map, so everything runs on this machine") }
            return nil
        }
        let names = compose.hosts.map(\.name).joined(separator: ", ")
        if let named {
            guard compose.host(named: named) != nil else { throw Failure(description: "--host \(named): no such host in \(compose.path) (hosts: \(names))") }
            return named
        }
        let mine = localAddresses()
        let matches = compose.hosts.filter { mine.contains($0.address) }
        switch matches.count {
        case 1:
            return matches[0].name
        case 0:
            let listed = compose.hosts.map { "\($0.name) \($0.address)" }.joined(separator: ", ")
            throw Failure(description: "this machine has none of the addresses in \(compose.path)'s hosts (\(listed)); its own are \(mine.sorted().joined(separator: ", ")). Give --host NAME")
        default:
            throw Failure(description: "this machine has the addresses of several hosts (\(matches.map(\.name).joined(separator: ", "))); give --host NAME")
        }
    }

    /// The IPv4 and IPv6 addresses of this machine's interfaces (of its network namespace).
    public static func localAddresses() -> Set<String> {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return [] }
        defer { freeifaddrs(list) }
        var addresses: Set<String> = []
        var entry = list
        while let current = entry {
            defer { entry = current.pointee.ifa_next }
            guard let address = current.pointee.ifa_addr else { continue }
            let family = Int32(address.pointee.sa_family)
            guard family == AF_INET || family == AF_INET6 else { continue }
            var text = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            let length = socklen_t(family == AF_INET ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size)
            if getnameinfo(address, length, &text, socklen_t(text.count), nil, 0, NI_NUMERICHOST) == 0 {
                addresses.insert(String(cString: text).split(separator: "%").first.map(String.init) ?? "")
            }
        }
        return addresses
    }
}
