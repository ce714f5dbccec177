import BerthCompose
import Testing

/// A broken compose file and what its error must say.
struct Broken: Sendable, CustomTestStringConvertible {
    var testDescription: String
    var yaml: String
    var code: ComposeError.Code
    var key: String
    var line: Int
    var column: Int? = nil
    var message: String
}

/// A valid container block to build broken files around.
let containerA = """
    containers:
      ContainerA:
        command: [./a]
        port: 8080
    """

let brokenFiles: [Broken] = [
    Broken(testDescription: "bad YAML syntax", yaml: "containers:\n  a: [1, 2\n  b: 3\n", code: .syntax, key: "", line: 3,
           message: "invalid YAML"),
    Broken(testDescription: "tab indentation", yaml: "containers:\n\ta: 1\n", code: .syntax, key: "", line: 2, message: "invalid YAML"),
    Broken(testDescription: "top level a list", yaml: "- a\n- b\n", code: .wrongType, key: "", line: 1,
           message: "the top level must be a mapping"),
    Broken(testDescription: "empty file", yaml: "", code: .missingKey, key: "containers", line: 1, message: "the file is empty"),
    Broken(testDescription: "unknown top-level key", yaml: "name: x\nservices: {}\n" + containerA, code: .unknownKey, key: "services",
           line: 2, column: 1, message: "unknown key 'services'; allowed keys are 'name', 'hosts', 'security', 'router', 'edge', 'dashboard', 'containers'"),
    Broken(testDescription: "a host not in hosts", yaml: "hosts: { h1: 10.0.0.1 }\nrouter: { host: h9 }\n" + containerA,
           code: .undefinedReference, key: "router.host", line: 2, message: "no host 'h9' in 'hosts' (defined: 'h1')"),
    Broken(testDescription: "a container's host not in hosts", yaml: "hosts: { h1: 10.0.0.1 }\ncontainers:\n  a: { command: [./a], port: 80, hosts: [h1, h2] }\n",
           code: .undefinedReference, key: "containers.a.hosts[1]", line: 3, message: "no host 'h2' in 'hosts'"),
    Broken(testDescription: "host without hosts", yaml: "edge: { host: h1 }\n" + containerA,
           code: .undefinedReference, key: "edge.host", line: 1, message: "'h1' names a host, but the file has no 'hosts:' map"),
    Broken(testDescription: "two hosts on one address", yaml: "hosts: { h1: 10.0.0.1, h2: 10.0.0.1 }\n" + containerA,
           code: .duplicate, key: "hosts.h2", line: 1, message: "address 10.0.0.1 is given twice"),
    Broken(testDescription: "a host on no address", yaml: "hosts: { h1: 0.0.0.0 }\n" + containerA,
           code: .invalidValue, key: "hosts.h1", line: 1, message: "'0.0.0.0' is no one host's address"),
    Broken(testDescription: "security without keys", yaml: "security: { key: k }\n" + containerA,
           code: .unknownKey, key: "security.key", line: 1, message: "did you mean 'keys'?"),
    Broken(testDescription: "misspelt container key", yaml: "containers:\n  ContainerA:\n    comand: [./a]\n    port: 8080\n",
           code: .unknownKey, key: "containers.ContainerA.comand", line: 3, column: 5,
           message: "unknown key 'comand'; did you mean 'command'?"),
    Broken(testDescription: "misspelt router key", yaml: "router: { frontend: tcp://a:1, heartbeet: 1s }\n" + containerA,
           code: .unknownKey, key: "router.heartbeet", line: 1, message: "did you mean 'heartbeat'?"),
    Broken(testDescription: "misspelt route key", yaml: "edge:\n  routes:\n    - { path: /a/, contianer: ContainerA }\n" + containerA,
           code: .unknownKey, key: "edge.routes[0].contianer", line: 3, message: "did you mean 'container'?"),
    Broken(testDescription: "port out of range", yaml: "containers:\n  ContainerA:\n    command: [./a]\n    port: 70000\n",
           code: .invalidValue, key: "containers.ContainerA.port", line: 4, column: 11, message: "70000 is out of range 1...65535"),
    Broken(testDescription: "port zero", yaml: "containers:\n  a: { command: [./a], port: 0 }\n",
           code: .invalidValue, key: "containers.a.port", line: 2, message: "0 is out of range 1...65535"),
    Broken(testDescription: "port a string", yaml: "containers:\n  a: { command: [./a], port: http }\n",
           code: .wrongType, key: "containers.a.port", line: 2, message: "expected an integer, got 'http'"),
    Broken(testDescription: "port quoted", yaml: "containers:\n  a: { command: [./a], port: \"80\" }\n",
           code: .wrongType, key: "containers.a.port", line: 2, message: "expected an integer, got '80'"),
    Broken(testDescription: "extra port out of range", yaml: "containers:\n  a: { command: [./a], port: 80, ports: [81, 65536] }\n",
           code: .invalidValue, key: "containers.a.ports[1]", line: 2, message: "65536 is out of range 1...65535"),
    Broken(testDescription: "extra port repeated", yaml: "containers:\n  a:\n    command: [./a]\n    port: 80\n    ports: [80]\n",
           code: .duplicate, key: "containers.a.ports[0]", line: 5, message: "port 80 is given twice; the first is on line 4"),
    Broken(testDescription: "instances zero", yaml: "containers:\n  a:\n    command: [./a]\n    port: 80\n    instances: 0\n",
           code: .invalidValue, key: "containers.a.instances", line: 5, message: "instances must be at least 1"),
    Broken(testDescription: "instances negative", yaml: "containers:\n  a: { command: [./a], port: 80, instances: -2 }\n",
           code: .invalidValue, key: "containers.a.instances", line: 2, message: "-2 is too small"),
    Broken(testDescription: "instances a list", yaml: "containers:\n  a: { command: [./a], port: 80, instances: [3] }\n",
           code: .wrongType, key: "containers.a.instances", line: 2, message: "expected an integer, got a list"),
    Broken(testDescription: "missing command", yaml: "containers:\n  web:\n    port: 80\n",
           code: .missingKey, key: "containers.web.command", line: 2, column: 3, message: "missing; give the app's executable"),
    Broken(testDescription: "empty command list", yaml: "containers:\n  web:\n    command: []\n    port: 80\n",
           code: .invalidValue, key: "containers.web.command", line: 3, message: "the command is empty"),
    Broken(testDescription: "empty command string", yaml: "containers:\n  web:\n    command: \"  \"\n    port: 80\n",
           code: .invalidValue, key: "containers.web.command", line: 3, message: "the command is empty"),
    Broken(testDescription: "command a mapping", yaml: "containers:\n  web:\n    command: { run: x }\n    port: 80\n",
           code: .wrongType, key: "containers.web.command", line: 3, message: "expected a list of strings, got a mapping"),
    Broken(testDescription: "missing port", yaml: "name: m\ncontainers:\n  web:\n    command: [./web]\n",
           code: .missingKey, key: "containers.web.port", line: 3, column: 3, message: "missing; give the port the app listens on"),
    Broken(testDescription: "container without settings", yaml: "containers:\n  web:\n",
           code: .missingKey, key: "containers.web", line: 2, message: "has no settings"),
    Broken(testDescription: "no containers key", yaml: "name: m\n",
           code: .missingKey, key: "containers", line: 1, message: "missing; a compose file defines at least one container"),
    Broken(testDescription: "empty containers", yaml: "name: m\ncontainers: {}\n",
           code: .missingKey, key: "containers", line: 2, message: "no containers"),
    Broken(testDescription: "containers a list", yaml: "containers:\n  - web\n",
           code: .wrongType, key: "containers", line: 2, message: "expected a mapping, got a list"),
    Broken(testDescription: "duplicate container names",
           yaml: "containers:\n  ContainerA:\n    command: [./a]\n    port: 8080\n  ContainerA:\n    command: [./b]\n    port: 8081\n",
           code: .duplicate, key: "containers.ContainerA", line: 5, column: 3, message: "'ContainerA' is given twice; the first is on line 2"),
    Broken(testDescription: "duplicate key in a container", yaml: "containers:\n  a:\n    command: [./a]\n    port: 1\n    port: 2\n",
           code: .duplicate, key: "containers.a.port", line: 5, message: "'port' is given twice"),
    Broken(testDescription: "container name with a space", yaml: "containers:\n  Container A: { command: [./a], port: 1 }\n",
           code: .invalidValue, key: "containers.Container A", line: 2, message: "not a usable container name"),
    Broken(testDescription: "container name with a dot", yaml: "containers:\n  a.b: { command: [./a], port: 1 }\n",
           code: .invalidValue, key: "containers.a.b", line: 2, message: "not a usable container name"),
    Broken(testDescription: "route path without slash", yaml: "edge:\n  routes:\n    - { path: a/, container: ContainerA }\n" + containerA,
           code: .invalidValue, key: "edge.routes[0].path", line: 3, column: 15, message: "'a/' does not start with '/'"),
    Broken(testDescription: "route path missing", yaml: "edge:\n  routes:\n    - container: ContainerA\n" + containerA,
           code: .missingKey, key: "edge.routes[0].path", line: 3, message: "missing; a route needs the path prefix"),
    Broken(testDescription: "route to an undefined container",
           yaml: "edge:\n  routes:\n    - { path: /a/, container: ContainerA }\n    - { path: /b/, container: ContainerB }\n" + containerA,
           code: .undefinedReference, key: "edge.routes[1].container", line: 4, column: 31,
           message: "no container 'ContainerB' in 'containers' (defined: 'ContainerA')"),
    Broken(testDescription: "duplicate route paths",
           yaml: "edge:\n  routes:\n    - { path: /a/, container: ContainerA }\n    - { path: /a/, container: ContainerA }\n" + containerA,
           code: .duplicate, key: "edge.routes[1].path", line: 4, message: "route path '/a/' is given twice; the first is on line 3"),
    Broken(testDescription: "routes a mapping", yaml: "edge:\n  routes: { /a/: ContainerA }\n" + containerA,
           code: .wrongType, key: "edge.routes", line: 2, message: "expected a list, got a mapping"),
    Broken(testDescription: "route instance not an identifier",
           yaml: "edge:\n  routes:\n    - { path: /a/, container: ContainerA, instance: a@b }\n" + containerA,
           code: .invalidValue, key: "edge.routes[0].instance", line: 3, message: "not a usable instance name"),
    Broken(testDescription: "edge listen without port", yaml: "edge:\n  listen: localhost\n" + containerA,
           code: .invalidValue, key: "edge.listen", line: 2, column: 11, message: "'localhost' is not HOST:PORT"),
    Broken(testDescription: "edge listen without host", yaml: "edge:\n  listen: \":8787\"\n" + containerA,
           code: .invalidValue, key: "edge.listen", line: 2, message: "is not HOST:PORT"),
    Broken(testDescription: "edge listen port out of range", yaml: "edge:\n  listen: 127.0.0.1:99999\n" + containerA,
           code: .invalidValue, key: "edge.listen", line: 2, message: "port 99999 is out of range 1...65535"),
    Broken(testDescription: "edge a string", yaml: "edge: 127.0.0.1:8787\n" + containerA,
           code: .wrongType, key: "edge", line: 1, message: "expected a mapping, got '127.0.0.1:8787'"),
    Broken(testDescription: "bad duration", yaml: "containers:\n  a:\n    command: [./a]\n    port: 1\n    sleep_after: 10 minutes\n",
           code: .invalidValue, key: "containers.a.sleep_after", line: 5, column: 18, message: "'10 minutes' is not a duration"),
    Broken(testDescription: "negative duration", yaml: "edge:\n  timeout: -5s\n" + containerA,
           code: .invalidValue, key: "edge.timeout", line: 2, message: "'-5s' is not a duration"),
    Broken(testDescription: "no router replicas", yaml: "router: { replicas: 0 }\n" + containerA,
           code: .invalidValue, key: "router.replicas", line: 1, message: "0 is out of range 1...9"),
    Broken(testDescription: "zero heartbeat", yaml: "router: { heartbeat: 0s }\n" + containerA,
           code: .invalidValue, key: "router.heartbeat", line: 1, message: "must be longer than zero"),
    Broken(testDescription: "bad readiness duration", yaml: "containers:\n  a:\n    command: [./a]\n    port: 1\n    readiness: { path: /h, interval: soon }\n",
           code: .invalidValue, key: "containers.a.readiness.interval", line: 5, message: "'soon' is not a duration"),
    Broken(testDescription: "readiness path without slash", yaml: "containers:\n  a: { command: [./a], port: 1, readiness: { path: health } }\n",
           code: .invalidValue, key: "containers.a.readiness.path", line: 2, message: "'health' does not start with '/'"),
    Broken(testDescription: "backoff max below initial", yaml: "containers:\n  a:\n    command: [./a]\n    port: 1\n    restart_backoff: { initial: 5s, max: 1s }\n",
           code: .invalidValue, key: "containers.a.restart_backoff.max", line: 5, message: "'max' (1s) is shorter than 'initial' (5s)"),
    Broken(testDescription: "bad restart", yaml: "containers:\n  a:\n    command: [./a]\n    port: 1\n    restart: sometimes\n",
           code: .invalidValue, key: "containers.a.restart", line: 5, column: 14,
           message: "'sometimes' is not a restart policy; use always, on-failure or no"),
    Broken(testDescription: "restart true", yaml: "containers:\n  a: { command: [./a], port: 1, restart: yes }\n",
           code: .invalidValue, key: "containers.a.restart", line: 2, message: "'yes' is not a restart policy"),
    Broken(testDescription: "bad signal", yaml: "containers:\n  a:\n    command: [./a]\n    port: 1\n    stop_signal: SIGSTOPPLEASE\n",
           code: .invalidValue, key: "containers.a.stop_signal", line: 5, message: "'SIGSTOPPLEASE' is not a signal"),
    Broken(testDescription: "signal number out of range", yaml: "containers:\n  a: { command: [./a], port: 1, stop_signal: 99 }\n",
           code: .invalidValue, key: "containers.a.stop_signal", line: 2, message: "'99' is not a signal"),
    Broken(testDescription: "environment a list", yaml: "containers:\n  a:\n    command: [./a]\n    port: 1\n    environment: [A=1]\n",
           code: .wrongType, key: "containers.a.environment", line: 5, message: "expected a mapping, got a list"),
    Broken(testDescription: "environment value null", yaml: "containers:\n  a:\n    command: [./a]\n    port: 1\n    environment:\n      A:\n",
           code: .missingKey, key: "containers.a.environment.A", line: 6, message: "no value"),
    Broken(testDescription: "environment value a mapping", yaml: "containers:\n  a:\n    command: [./a]\n    port: 1\n    environment:\n      A: { b: c }\n",
           code: .wrongType, key: "containers.a.environment.A", line: 6, message: "expected a string, number or bool, got a mapping"),
    Broken(testDescription: "environment name invalid", yaml: "containers:\n  a:\n    command: [./a]\n    port: 1\n    environment: { 1A: x }\n",
           code: .invalidValue, key: "containers.a.environment.1A", line: 5, message: "not a usable variable name"),
    Broken(testDescription: "capacity zero", yaml: "containers:\n  a: { command: [./a], port: 1, capacity: 0 }\n",
           code: .invalidValue, key: "containers.a.capacity", line: 2, message: "capacity must be at least 1"),
    Broken(testDescription: "bad router endpoint", yaml: "router:\n  frontend: 127.0.0.1:7700\n" + containerA,
           code: .invalidValue, key: "router.frontend", line: 2, message: "not a ZeroMQ endpoint"),
    Broken(testDescription: "router endpoints that collide", yaml: "router:\n  backend: tcp://127.0.0.1:7700\n" + containerA,
           code: .duplicate, key: "router.backend", line: 2, message: "is also the router's 'frontend' endpoint"),
    Broken(testDescription: "mesh name invalid", yaml: "name: my mesh\n" + containerA,
           code: .invalidValue, key: "name", line: 1, message: "not a usable mesh name"),
    Broken(testDescription: "egress to an unknown container", yaml: "containers:\n  a: { command: [./a], port: 1, egress: [a, b] }\n",
           code: .undefinedReference, key: "containers.a.egress[1]", line: 2, message: "no container 'b' in 'containers' to allow calls to (defined: 'a')"),
    Broken(testDescription: "egress not a list", yaml: "containers:\n  a: { command: [./a], port: 1, egress: a }\n",
           code: .wrongType, key: "containers.a.egress", line: 2, message: "expected a list"),
    Broken(testDescription: "egress names a container twice", yaml: "containers:\n  a: { command: [./a], port: 1, egress: [a, a] }\n",
           code: .duplicate, key: "containers.a.egress[1]", line: 2, message: "container 'a'"),
    Broken(testDescription: "egress name invalid", yaml: "containers:\n  a: { command: [./a], port: 1, egress: [\"b c\"] }\n",
           code: .invalidValue, key: "containers.a.egress[0]", line: 2, message: "'b c' is not a container name"),
    Broken(testDescription: "internet not a bool", yaml: "containers:\n  a: { command: [./a], port: 1, internet: sometimes }\n",
           code: .wrongType, key: "containers.a.internet", line: 2, message: "expected true or false, got"),
]

@Suite struct ValidationTests {
    @Test(arguments: brokenFiles)
    func brokenFileIsRejected(_ broken: Broken) {
        let error = parseError(broken.yaml)
        #expect(error?.file == "bad.yaml")
        #expect(error?.code == broken.code)
        #expect(error?.key == broken.key)
        #expect(error?.line == broken.line)
        if let column = broken.column { #expect(error?.column == column) }
        #expect(error?.message.contains(broken.message) == true, "message: \(error?.message ?? "no error")")
    }

    @Test func anErrorReadsLikeACompilerDiagnostic() {
        let error = parseError("name: demo\ncontainers:\n  ContainerA:\n    command: [./a]\n    port: 70000\n", path: "demo.yaml")
        #expect(error?.description == "demo.yaml:5:11: containers.ContainerA.port: 70000 is out of range 1...65535")
    }

    @Test func anUnknownKeyListsTheAllowedOnes() {
        let error = parseError("containers:\n  a: { command: [./a], port: 1, replicas: 3 }\n")
        #expect(error?.message == """
            unknown key 'replicas'; allowed keys are 'command', 'port', 'ports', 'instances', 'environment', \
            'working_dir', 'sleep_after', 'readiness', 'restart', 'restart_backoff', 'stop_signal', \
            'stop_grace_period', 'start_timeout', 'capacity', 'hosts', 'egress', 'internet'
            """)
    }

    @Test func theFirstProblemInTheFileIsTheOneReported() {
        let error = parseError("containers:\n  a: { command: [./a], port: 0 }\n  b: { command: [./b], port: -1 }\n")
        #expect(error?.key == "containers.a.port")
    }

    func parseError(_ yaml: String, path: String = "bad.yaml") -> ComposeError? {
        do {
            _ = try ComposeFile.parse(yaml: yaml, path: path)
            return nil
        } catch {
            return error
        }
    }
}

