import Yams

// Each section of a compose file read from its YAML node, with every value checked where it is read.

extension RouterSpec {
    init(reading located: Located) throws(ComposeError) {
        self.init()
        let fields = try MappingReader(located, allowed: ["frontend", "backend", "events_in", "events_out", "heartbeat", "replicas", "host"])
        var seen: [String: String] = [:]
        for (name, path) in [("frontend", \Self.frontend), ("backend", \.backend), ("events_in", \.eventsIn), ("events_out", \.eventsOut)] {
            if let value = fields[name] { self[keyPath: path] = try value.endpoint() }
            let endpoint = self[keyPath: path]
            if let other = seen[endpoint] {
                throw (fields[name] ?? located).error(.duplicate, "'\(endpoint)' is also the router's \(other); each endpoint needs its own address")
            }
            seen[endpoint] = "'\(name)' endpoint"
        }
        if let value = fields["heartbeat"] { heartbeat = try value.duration() }
        if let value = fields["replicas"] { replicas = try value.int(in: RouterSpec.replicaRange, what: "replicas") }
        placement = try fields["host"]?.text(expecting: "a host name from 'hosts'")
    }
}

extension EdgeSpec {
    /// The edge, and the nodes naming each route's container, to be checked once the containers are known.
    static func read(_ located: Located) throws(ComposeError) -> (EdgeSpec, routeTargets: [Located]) {
        var edge = EdgeSpec()
        let fields = try MappingReader(located, allowed: ["listen", "routes", "command", "timeout", "host"])
        edge.placement = try fields["host"]?.text(expecting: "a host name from 'hosts'")
        if let listen = fields["listen"] {
            (edge.host, edge.port) = try listen.hostAndPort()
        }
        var targets: [Located] = []
        var firsts: [String: Located] = [:]
        for element in try fields["routes"]?.sequence() ?? [] {
            let (route, target, pathNode) = try RouteSpec.read(element)
            if let first = firsts[route.prefix] {
                throw pathNode.error(.duplicate, givenTwice("route path '\(route.prefix)'", first: first))
            }
            firsts[route.prefix] = pathNode
            edge.routes.append(route)
            targets.append(target)
        }
        edge.command = try fields["command"]?.command()
        if let timeout = fields["timeout"] { edge.timeout = try timeout.duration() }
        return (edge, targets)
    }
}

extension DashboardSpec {
    init(reading located: Located) throws(ComposeError) {
        self.init()
        let fields = try MappingReader(located, allowed: ["listen", "host"])
        if let listen = fields["listen"] { (host, port) = try listen.hostAndPort() }
        placement = try fields["host"]?.text(expecting: "a host name from 'hosts'")
    }
}

extension RouteSpec {
    static func read(_ located: Located) throws(ComposeError) -> (RouteSpec, container: Located, path: Located) {
        let fields = try MappingReader(located, allowed: ["path", "container", "instance"])
        let pathNode = try fields.required("path", "a route needs the path prefix it serves, like /a/")
        let prefix = try pathNode.text()
        guard prefix.hasPrefix("/") else {
            throw pathNode.error(.invalidValue, "'\(prefix)' does not start with '/'")
        }
        guard !prefix.contains("="), !prefix.contains(where: \.isWhitespace) else {
            throw pathNode.error(.invalidValue, "'\(prefix)' may not contain '=' or spaces")
        }
        let containerNode = try fields.required("container", "a route needs the container that serves it")
        let container = try containerNode.text()
        var instance: String?
        if let instanceNode = fields["instance"] {
            let name = try instanceNode.text()
            guard isIdentifier(name) else {
                throw instanceNode.error(.invalidValue, "'\(name)' is not a usable instance name; use letters, digits, '-' and '_'")
            }
            instance = name
        }
        return (RouteSpec(prefix: prefix, container: container, instance: instance), containerNode, pathNode)
    }
}

extension ContainerSpec {
    static let keys = [
        "command", "port", "ports", "instances", "environment", "working_dir", "sleep_after", "readiness", "restart",
        "restart_backoff", "stop_signal", "stop_grace_period", "start_timeout", "capacity", "hosts",
        "egress", "internet",
    ]

    /// - Parameter anchor: the node of the container's name, where errors about missing keys point.
    init(reading located: Located, name: String, anchor: Located) throws(ComposeError) {
        guard !located.isNull else {
            throw anchor.error(.missingKey, "container '\(name)' has no settings; give at least 'command' and 'port'")
        }
        let fields = try MappingReader(located, anchor: anchor, allowed: Self.keys)
        let command = try fields.required("command", "give the app's executable and arguments, like [\"python3\", \"app.py\"]").command()
        let portNode = try fields.required("port", "give the port the app listens on")
        self.init(name: name, command: command, port: try portNode.port())

        var firsts: [Int: Located] = [port: portNode]
        for element in try fields["ports"]?.sequence() ?? [] {
            let extra = try element.port()
            if let first = firsts[extra] {
                throw element.error(.duplicate, givenTwice("port \(extra)", first: first))
            }
            firsts[extra] = element
            ports.append(extra)
        }
        if let value = fields["instances"] { instances = try value.int(in: 1...Int.max, what: "instances") }
        if let value = fields["environment"] { environment = try value.environment() }
        if let value = fields["working_dir"] {
            let directory = try value.text()
            guard !directory.isEmpty else { throw value.error(.invalidValue, "the directory is empty") }
            workingDir = directory
        }
        if let value = fields["sleep_after"] { sleepAfter = try value.duration() }
        if let value = fields["readiness"] { readiness = try ReadinessSpec(reading: value) }
        if let value = fields["restart"] { restart = try value.restartPolicy() }
        if let value = fields["restart_backoff"] { restartBackoff = try BackoffSpec(reading: value) }
        if let value = fields["stop_signal"] { stopSignal = try value.signal() }
        if let value = fields["stop_grace_period"] { stopGracePeriod = try value.duration(allowingZero: true) }
        if let value = fields["start_timeout"] { startTimeout = try value.duration() }
        if let value = fields["capacity"] { capacity = try value.int(in: 1...Int.max, what: "capacity") }
        for element in try fields["hosts"]?.sequence() ?? [] {
            placement.append(try element.text(expecting: "a host name from 'hosts'"))
        }
        if let value = fields["egress"] { egress = try Self.egressList(value).map { $0.name } }
        if let value = fields["internet"] { internet = try value.bool() }
    }

    /// `egress: [ContainerB, ContainerC]`: container names, each once, with the node of each for later checks.
    static func egressList(_ located: Located) throws(ComposeError) -> [(name: String, node: Located)] {
        var names: [(name: String, node: Located)] = []
        for element in try located.sequence() {
            let name = try element.text(expecting: "a container name")
            guard isIdentifier(name) else {
                throw element.error(.invalidValue, "'\(name)' is not a container name; use letters, digits, '-' and '_'")
            }
            if let first = names.first(where: { $0.name == name }) {
                throw element.error(.duplicate, givenTwice("container '\(name)'", first: first.node))
            }
            names.append((name, element))
        }
        return names
    }

    /// Every name in the `egress:` lists of `containersNode` must be a container of the file.
    static func checkEgress(_ containersNode: Located, defined: [ContainerSpec]) throws(ComposeError) {
        for (_, key, value) in try containersNode.entries() where !value.isNull {
            let fields = try MappingReader(value, anchor: key, allowed: keys)
            guard let egress = fields["egress"] else { continue }
            for (name, node) in try egressList(egress) where !defined.contains(where: { $0.name == name }) {
                let names = defined.map { "'\($0.name)'" }.joined(separator: ", ")
                throw node.error(.undefinedReference, "no container '\(name)' in 'containers' to allow calls to (defined: \(names))")
            }
        }
    }
}

extension HostSpec {
    /// `hosts: { h1: 10.77.0.1, h2: 10.77.0.2 }`, in file order.
    static func read(_ located: Located) throws(ComposeError) -> [HostSpec] {
        var hosts: [HostSpec] = []
        var firsts: [String: Located] = [:]
        for (name, key, value) in try located.entries() {
            guard isIdentifier(name) else {
                throw key.error(.invalidValue, "'\(name)' is not a usable host name; use letters, digits, '-' and '_'")
            }
            let address = try value.text(expecting: "the host's address, like 10.77.0.1")
            guard !address.isEmpty, !address.contains(where: { $0.isWhitespace || $0 == "/" || $0 == "[" }) else {
                throw value.error(.invalidValue, "'\(address)' is not an address; give the IP address or name the other hosts reach this one on")
            }
            guard address != "0.0.0.0", address != "::" else {
                throw value.error(.invalidValue, "'\(address)' is no one host's address; give the address the other hosts reach this one on")
            }
            if let first = firsts[address] {
                throw value.error(.duplicate, givenTwice("address \(address)", first: first))
            }
            firsts[address] = value
            hosts.append(HostSpec(name: name, address: address))
        }
        guard !hosts.isEmpty else { throw located.error(.missingKey, "no hosts; name at least one, like h1: 10.77.0.1") }
        return hosts
    }
}

extension SecuritySpec {
    init(reading located: Located) throws(ComposeError) {
        let fields = try MappingReader(located, allowed: ["keys"])
        let keysNode = try fields.required("keys", "give the folder of the mesh's CURVE keys, like keys/")
        var folder = try keysNode.text(expecting: "a folder")
        guard !folder.isEmpty else { throw keysNode.error(.invalidValue, "the folder is empty") }
        while folder.count > 1, folder.hasSuffix("/") { folder.removeLast() }
        self.init(keys: folder)
    }
}

extension ReadinessSpec {
    /// A mapping `{ path, interval, timeout }`, or just the path.
    init(reading located: Located) throws(ComposeError) {
        if case .scalar = located.node {
            self.init(path: try located.text())
            try Self.check(path, at: located)
            return
        }
        let fields = try MappingReader(located, allowed: ["path", "interval", "timeout"])
        let pathNode = try fields.required("path", "give the HTTP path that answers when the app is ready, like /health")
        self.init(path: try pathNode.text())
        try Self.check(path, at: pathNode)
        if let value = fields["interval"] { interval = try value.duration() }
        if let value = fields["timeout"] { timeout = try value.duration() }
    }

    private static func check(_ path: String, at located: Located) throws(ComposeError) {
        guard path.hasPrefix("/") else { throw located.error(.invalidValue, "'\(path)' does not start with '/'") }
    }
}

extension BackoffSpec {
    init(reading located: Located) throws(ComposeError) {
        self.init()
        let fields = try MappingReader(located, allowed: ["initial", "max"])
        if let value = fields["initial"] { initial = try value.duration() }
        if let value = fields["max"] { max = try value.duration() }
        guard max >= initial else {
            throw (fields["max"] ?? fields["initial"] ?? located).error(.invalidValue, "'max' (\(DurationParser.format(max))) is shorter than 'initial' (\(DurationParser.format(initial)))")
        }
    }
}

extension Located {
    /// A ZeroMQ endpoint such as `tcp://127.0.0.1:7700` or `ipc:///tmp/berth.sock`.
    func endpoint() throws(ComposeError) -> String {
        let written = try text(expecting: "a ZeroMQ endpoint")
        guard let separator = written.firstRange(of: "://"), separator.lowerBound != written.startIndex,
              separator.upperBound != written.endIndex, !written.contains(where: \.isWhitespace)
        else {
            throw error(.invalidValue, "'\(written)' is not a ZeroMQ endpoint; expected something like tcp://127.0.0.1:7700")
        }
        return written
    }

    /// `HOST:PORT`, the host possibly in brackets (`[::1]:8787`).
    func hostAndPort() throws(ComposeError) -> (String, Int) {
        let written = try text(expecting: "HOST:PORT")
        guard let colon = written.lastIndex(of: ":") else {
            throw error(.invalidValue, "'\(written)' is not HOST:PORT; expected something like 127.0.0.1:8787")
        }
        var host = String(written[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, !host.contains(where: \.isWhitespace), let port = Int(written[written.index(after: colon)...]) else {
            throw error(.invalidValue, "'\(written)' is not HOST:PORT; expected something like 127.0.0.1:8787")
        }
        guard (1...65535).contains(port) else {
            throw error(.invalidValue, "port \(port) is out of range 1...65535")
        }
        return (host, port)
    }

    /// A mapping of variable names to strings, numbers or bools, all kept as written.
    func environment() throws(ComposeError) -> [EnvironmentVariable] {
        var variables: [EnvironmentVariable] = []
        for (name, key, value) in try entries() {
            guard isIdentifier(name), !name.contains("-"), name.first?.isNumber == false else {
                throw key.error(.invalidValue, "'\(name)' is not a usable variable name; use letters, digits and '_', not starting with a digit")
            }
            guard !value.isNull else {
                throw value.error(.missingKey, "no value; write '' for an empty string")
            }
            variables.append(EnvironmentVariable(name: name, value: try value.text(expecting: "a string, number or bool")))
        }
        return variables
    }

    /// `always`, `on-failure` or `no`; YAML reads a bare `no` (or `false`, `off`) as a bool, which means `no` too.
    func restartPolicy() throws(ComposeError) -> RestartPolicy {
        let written = try text(expecting: "always, on-failure or no")
        if let policy = RestartPolicy(rawValue: written) { return policy }
        if has(tag: .bool), node.bool == false { return .no }
        throw error(.invalidValue, "'\(written)' is not a restart policy; use always, on-failure or no")
    }

    func signal() throws(ComposeError) -> Int32 {
        let written = try text(expecting: "a signal name or number")
        guard let signal = SignalParser.parse(written) else {
            let names = SignalParser.names.map { "SIG\($0)" }.joined(separator: ", ")
            throw error(.invalidValue, "'\(written)' is not a signal; use one of \(names) (with or without SIG), or a number 1...64")
        }
        return signal
    }
}

extension ComposeError {
    /// An error from Yams, placed at the line and column Yams reports.
    init(yamlError: any Error, yaml: String, file: String) {
        let located: (message: String, mark: (line: Int, column: Int)?)
        switch yamlError as? YamlError {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let while_ = context.map { " (\($0.text) at line \($0.mark.line), column \($0.mark.column))" } ?? ""
            located = ("invalid YAML: \(problem)\(while_)", (mark.line, mark.column))
        case .reader(let problem, let offset, _, _):
            located = ("invalid YAML: \(problem)", offset.map { Self.mark(atCharacterOffset: $0, in: yaml) })
        default:
            // Later Yams versions add cases (such as duplicate keys); they still carry a Mark somewhere inside.
            let duplicates = Self.first([String].self, in: yamlError)
            let message = duplicates.map { "invalid YAML: the key '\($0.joined(separator: "', '"))' is given twice in one mapping" }
                ?? "invalid YAML: \(String(describing: yamlError).split(separator: "\n").first ?? "")"
            located = (message, Self.first(Mark.self, in: yamlError).map { ($0.line, $0.column) })
        }
        self.init(code: .syntax, file: file, line: located.mark?.line, column: located.mark?.column, key: "", message: located.message)
    }

    private static func mark(atCharacterOffset offset: Int, in text: String) -> (line: Int, column: Int) {
        var line = 1, column = 1
        for character in text.prefix(offset) {
            if character == "\n" { line += 1; column = 1 } else { column += 1 }
        }
        return (line, column)
    }

    private static func first<T>(_ type: T.Type, in value: Any, depth: Int = 0) -> T? {
        if let found = value as? T { return found }
        guard depth < 4 else { return nil }
        for child in Mirror(reflecting: value).children {
            if let found = first(type, in: child.value, depth: depth + 1) { return found }
        }
        return nil
    }
}
