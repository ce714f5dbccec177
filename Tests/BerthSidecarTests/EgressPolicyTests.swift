import Testing

@testable import BerthSidecar

/// Where an app's call through its egress listener goes, and every rule that refuses one.
@Suite struct EgressPolicyTests {
    let onlyB = EgressPolicy(caller: "ContainerA/a-0", allowed: ["ContainerB"], meshClasses: ["ContainerA", "ContainerB", "ContainerC"])

    @Test func thePathNamesTheClassAndTheRestIsWhatTheAppSees() {
        #expect(onlyB.decide(authority: nil, path: "/ContainerB/receive") == .mesh(className: "ContainerB", port: nil, path: "/receive"))
        #expect(onlyB.decide(authority: nil, path: "/ContainerB") == .mesh(className: "ContainerB", port: nil, path: "/"))
        #expect(onlyB.decide(authority: nil, path: "/ContainerB/") == .mesh(className: "ContainerB", port: nil, path: "/"))
    }

    @Test func aClassOutsideTheListIsDeniedNamingTheRule() {
        #expect(onlyB.decide(authority: nil, path: "/ContainerC/x") == .denied("ContainerA/a-0's egress: [ContainerB] does not list ContainerC"))
        #expect(onlyB.decide(authority: "ContainerC", path: "/x") == .denied("ContainerA/a-0's egress: [ContainerB] does not list ContainerC"))
        let none = EgressPolicy(caller: "A/a", allowed: [])
        #expect(none.decide(authority: nil, path: "/B/x") == .denied("A/a's egress: [] does not list B"))
    }

    @Test func withoutAListEveryClassIsAllowed() {
        let open = EgressPolicy(caller: "A/a")
        #expect(open.decide(authority: nil, path: "/Anything/x") == .mesh(className: "Anything", port: nil, path: "/x"))
    }

    @Test func aPathWithoutAClassOrWithAnUnknownOneIsABadRequest() {
        guard case .invalid = onlyB.decide(authority: nil, path: "/") else { Issue.record("/ names no class"); return }
        guard case .invalid(let message) = onlyB.decide(authority: nil, path: "/ContainerZ/x") else { Issue.record("unknown class"); return }
        #expect(message.contains("ContainerZ is not a class of this mesh"))
    }

    @Test func aProxyRequestToAClassGoesIntoTheMeshOnTheNamedPort() {
        #expect(onlyB.decide(authority: "ContainerB", path: "/receive") == .mesh(className: "ContainerB", port: nil, path: "/receive"))
        #expect(onlyB.decide(authority: "ContainerB:3001", path: "/") == .mesh(className: "ContainerB", port: 3001, path: "/"))
    }

    @Test func theInternetIsDeniedUnlessAllowed() {
        #expect(onlyB.decide(authority: "example.com", path: "/") == .denied("ContainerA/a-0 has internet: false, so it may not call example.com:80, which is outside the mesh"))
        var open = onlyB
        open.internet = true
        #expect(open.decide(authority: "example.com:8080", path: "/a") == .internet(host: "example.com", port: 8080, path: "/a"))
        #expect(open.decide(authority: "127.0.0.1:9", path: "/") == .internet(host: "127.0.0.1", port: 9, path: "/"))
        #expect(open.decide(authority: "[::1]:9", path: "/") == .internet(host: "[::1]", port: 9, path: "/"))
    }

    @Test func withoutTheMeshsClassesAHostThatCouldBeOnTheInternetIsTheInternet() {
        let unknown = EgressPolicy(caller: "A/a", internet: true)
        #expect(unknown.decide(authority: "ContainerB", path: "/") == .mesh(className: "ContainerB", port: nil, path: "/"))
        for host in ["example.com", "localhost", "10.0.0.1", "[::1]"] {
            guard case .internet = unknown.decide(authority: host, path: "/") else { Issue.record("\(host) is outside the mesh"); continue }
        }
    }

    @Test func aMalformedAuthorityIsABadRequest() {
        for authority in ["host:0", "host:99999", "host:x", ":80", "user@host"] {
            guard case .invalid = onlyB.decide(authority: authority, path: "/") else { Issue.record("\(authority)"); continue }
        }
    }
}
