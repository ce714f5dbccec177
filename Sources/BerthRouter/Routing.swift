import BerthWire

/// The routing rule: which live instance of a class gets a request.
///
/// - A request with a name goes to the instance whose id is that name when it is live, and otherwise to the
///   instance that rendezvous hashing picks among the live ones: the same name keeps landing on the same
///   instance while it stays, and when one leaves only the names it held move.
/// - A request without a name goes to the less loaded of two instances that have capacity (power of two
///   choices), equally loaded instances taking turns.
enum Routing {
    static func instance(forName name: String, among instances: [Instance]) -> Instance? {
        if let exact = instances.first(where: { $0.id == name }) { return exact }
        var best: Instance?
        var bestScore: UInt64 = 0
        for instance in instances {
            let score = rendezvousScore(name: name, instance: instance.id)
            if best == nil || score > bestScore || (score == bestScore && instance.id < best!.id) {
                best = instance
                bestScore = score
            }
        }
        return best
    }

    /// Power of two choices, as Envoy's least-request balancer: the instance whose turn it is (`rotation`) against
    /// one picked at `random`; the one with fewer requests in flight wins, the one in turn on a tie, so equally
    /// loaded instances take turns. Constant time however many instances a class has; all of them are looked at
    /// only when both choices are at capacity.
    static func leastLoaded(among instances: [Instance], rotation: Int, random: Int) -> Instance? {
        let count = instances.count
        guard count > 0 else { return nil }
        let turn = instances[rotation % count]
        let other = instances[random % count]
        let (first, second) = other.inFlight.count < turn.inFlight.count ? (other, turn) : (turn, other)
        if first.hasCapacity { return first }
        if second.hasCapacity { return second }
        var best: Instance?
        for offset in 0..<count {
            let instance = instances[(rotation &+ offset) % count]
            guard instance.hasCapacity else { continue }
            if let current = best, current.inFlight.count <= instance.inFlight.count { continue }
            best = instance
        }
        return best
    }

    /// FNV-1a over "instance\0name", then the splitmix64 finaliser so that similar ids spread well.
    static func rendezvousScore(name: String, instance: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in instance.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        hash = (hash ^ 0) &* 0x100_0000_01b3
        for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        hash = (hash ^ (hash >> 30)) &* 0xbf58_476d_1ce4_e5b9
        hash = (hash ^ (hash >> 27)) &* 0x94d0_49bb_1331_11eb
        return hash ^ (hash >> 31)
    }
}
