@_exported import BerthSpec
import Foundation
import Yams

/// A compose file: a whole mesh in one YAML file — its router, its edge and its containers.
///
/// ```yaml
/// name: port-forwarding
/// router: { frontend: tcp://127.0.0.1:7700, heartbeat: 1s }
/// edge:
///   listen: 127.0.0.1:8787
///   routes:
///     - { path: /a/, container: ContainerA }
/// containers:
///   ContainerA:
///     command: [".build/debug/demo-container-a"]
///     port: 8080
///     instances: 3
/// ```
///
/// Reading a file only parses and validates it; nothing is started. Every problem is a ``ComposeError`` naming the
/// file, line, column and key. Relative paths in `command` and `working_dir` (containers and edge) are relative to
/// the directory `berth up` runs in — for this repo's demo, the repo root — not to the compose file.
public struct ComposeFile: Sendable, Equatable {
    /// The mesh's name (`name:`, or the file's name without its extension).
    public var name: String
    /// The compose file's path, as given.
    public var path: String
    /// The folder of the file (`.` for a bare file name), for tools that resolve relative paths against the file.
    public var directory: String
    /// The router's endpoints.
    public var router: RouterSpec
    /// The HTTP edge.
    public var edge: EdgeSpec
    /// The containers, in file order.
    public var containers: [ContainerSpec]
    /// The live dashboard `berth up` serves beside the mesh, if the file asks for one.
    public var dashboard: DashboardSpec?
    /// The machines of a multi-host mesh, in file order; empty: everything runs on this machine.
    public var hosts: [HostSpec] = []
    /// CURVE on every bus socket, with the keys of this folder; nil: no security (anyone reaching a port is trusted).
    public var security: SecuritySpec?

    public init(name: String, path: String, router: RouterSpec = RouterSpec(), edge: EdgeSpec = EdgeSpec(), containers: [ContainerSpec]) {
        self.name = name
        self.path = path
        self.directory = Self.directory(of: path)
        self.router = router
        self.edge = edge
        self.containers = containers
    }

    /// The container called `name`, if the file defines one.
    public func container(named name: String) -> ContainerSpec? {
        containers.first { $0.name == name }
    }

    /// Reads and validates the compose file at `path`.
    public static func load(path: String) throws(ComposeError) -> ComposeFile {
        let yaml: String
        do {
            yaml = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            var isDirectory: ObjCBool = false
            let reason =
                !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) ? "no such file"
                : isDirectory.boolValue ? "it is a directory"
                : "it is not readable UTF-8 text"
            throw ComposeError(code: .unreadable, file: path, line: nil, column: nil, key: "", message: "cannot read the compose file: \(reason)")
        }
        return try parse(yaml: yaml, path: path)
    }

    /// Parses and validates `yaml`, the text of the compose file at `path` (used in errors and for ``directory``).
    public static func parse(yaml: String, path: String) throws(ComposeError) -> ComposeFile {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw ComposeError(yamlError: error, yaml: yaml, file: path)
        }
        guard let root else {
            throw ComposeError(code: .missingKey, file: path, line: 1, column: 1, key: "containers",
                               message: "the file is empty; a compose file is a mapping that defines at least 'containers'")
        }
        let document = Located(node: root, key: "", file: path)
        guard case .mapping = root else {
            throw document.error(.wrongType, "the top level must be a mapping of 'name', 'router', 'edge', 'dashboard' and 'containers', got \(document.shown)")
        }
        // `x-` keys are free for the user's own anchors, as in docker compose.
        let top = try MappingReader(
            document, allowed: ["name", "hosts", "security", "router", "edge", "dashboard", "containers"], ignoringPrefix: "x-"
        )

        let name = try top["name"]?.text() ?? Self.stem(of: path)
        guard isIdentifier(name) else {
            let message = "'\(name)' is not a usable mesh name; use letters, digits, '-' and '_'"
            throw top["name"]?.error(.invalidValue, message)
                ?? ComposeError(code: .missingKey, file: path, line: 1, column: 1, key: "name", message: "missing, and \(message)")
        }
        let router = try top["router"].map { located throws(ComposeError) in try RouterSpec(reading: located) } ?? RouterSpec()
        let (edge, routeTargets) = try top["edge"].map { located throws(ComposeError) in try EdgeSpec.read(located) } ?? (EdgeSpec(), [])
        let dashboard = try top["dashboard"].map { located throws(ComposeError) in try DashboardSpec(reading: located) }

        let containersNode = try top.required("containers", "a compose file defines at least one container")
        var containers: [ContainerSpec] = []
        for (containerName, key, value) in try containersNode.entries() {
            guard isIdentifier(containerName) else {
                throw key.error(.invalidValue, "'\(containerName)' is not a usable container name; use letters, digits, '-' and '_'")
            }
            containers.append(try ContainerSpec(reading: value, name: containerName, anchor: key))
        }
        guard !containers.isEmpty else {
            throw containersNode.error(.missingKey, "no containers; define at least one")
        }

        try ContainerSpec.checkEgress(containersNode, defined: containers)
        for target in routeTargets {
            let container = try target.text()
            guard containers.contains(where: { $0.name == container }) else {
                let defined = containers.map { "'\($0.name)'" }.joined(separator: ", ")
                throw target.error(.undefinedReference, "no container '\(container)' in 'containers' (defined: \(defined))")
            }
        }
        var file = ComposeFile(name: name, path: path, router: router, edge: edge, containers: containers)
        file.dashboard = dashboard
        file.security = try top["security"].map { located throws(ComposeError) in try SecuritySpec(reading: located) }
        if let hostsNode = top["hosts"] { file.hosts = try HostSpec.read(hostsNode) }
        try file.checkPlacement(top)
        return file
    }

    /// The host called `name`.
    public func host(named name: String) -> HostSpec? { hosts.first { $0.name == name } }

    /// Every `host:` and `hosts:` names a host of `hosts:`, and none is given without it. Unplaced services go to the
    /// first host (routers, edge, dashboard) or to every host in turn (containers).
    private mutating func checkPlacement(_ top: MappingReader) throws(ComposeError) {
        func check(_ name: String?, _ section: String, _ path: [String]) throws(ComposeError) {
            guard let name else { return }
            var node = top[section]
            for key in path { node = node.flatMap { located in (try? located.entries())?.first { $0.name == key }?.value } }
            if let elements = try? node?.sequence() { node = elements.first { (try? $0.text()) == name } ?? node }
            let at = node ?? top[section]
            guard !hosts.isEmpty else {
                throw (at ?? top.located).error(.undefinedReference, "'\(name)' names a host, but the file has no 'hosts:' map; add one, like hosts: { \(name): 10.77.0.1 }")
            }
            guard host(named: name) != nil else {
                let defined = hosts.map { "'\($0.name)'" }.joined(separator: ", ")
                throw (at ?? top.located).error(.undefinedReference, "no host '\(name)' in 'hosts' (defined: \(defined))")
            }
        }
        try check(router.placement, "router", ["host"])
        try check(edge.placement, "edge", ["host"])
        try check(dashboard?.placement, "dashboard", ["host"])
        for index in containers.indices {
            for name in containers[index].placement { try check(name, "containers", [containers[index].name, "hosts"]) }
        }
        guard let first = hosts.first else { return }
        if router.placement == nil { router.placement = first.name }
        if edge.placement == nil { edge.placement = first.name }
        if dashboard != nil, dashboard?.placement == nil { dashboard?.placement = first.name }
        for index in containers.indices where containers[index].placement.isEmpty {
            containers[index].placement = hosts.map(\.name)
        }
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// `Compose/demo.yaml` → `demo`.
    static func stem(of path: String) -> String {
        let file = path.split(separator: "/").last.map(String.init) ?? path
        guard let dot = file.lastIndex(of: "."), dot != file.startIndex else { return file }
        return String(file[..<dot])
    }
}
