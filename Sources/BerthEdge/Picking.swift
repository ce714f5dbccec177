/// The picking rule: which instance of a class gets a request.
///
/// - A request with a name goes to the instance whose id is that name when it is live, and otherwise to the
///   instance that rendezvous hashing picks among the live ones: every edge sends the same name to the same
///   instance, and when one leaves only the names it held move.
/// - A request without a name goes to the less loaded of two instances drawn without replacement (power of two
///   choices, as Envoy's least-request balancer): one whose turn it is, against one drawn at random. Equally loaded
///   instances take turns. Constant time however many instances a class has; all are looked at only when both
///   choices are full.
enum Picking {
    /// The index in `instanceIDs` that `name` maps to.
    static func index(forName name: String, among instanceIDs: [String]) -> Int? {
        if let exact = instanceIDs.firstIndex(of: name) { return exact }
        var best: Int?
        var bestScore: UInt64 = 0
        for (index, id) in instanceIDs.enumerated() {
            let score = rendezvousScore(name: name, instance: id)
            if best == nil || score > bestScore || (score == bestScore && id < instanceIDs[best!]) {
                best = index
                bestScore = score
            }
        }
        return best
    }

    /// The index of the candidate to pick among `count`, or nil when none has room.
    static func leastLoaded(
        count: Int, rotation: Int, random: Int, load: (Int) -> Int, hasRoom: (Int) -> Bool
    ) -> Int? {
        guard count > 0 else { return nil }
        let turn = rotation % count
        var other = turn
        if count > 1 {
            other = random % (count - 1)
            if other >= turn { other += 1 }
        }
        let (first, second) = load(other) < load(turn) ? (other, turn) : (turn, other)
        if hasRoom(first) { return first }
        if hasRoom(second) { return second }
        var best: Int?
        for offset in 0..<count {
            let index = (rotation &+ offset) % count
            guard hasRoom(index) else { continue }
            if let current = best, load(current) <= load(index) { continue }
            best = index
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
