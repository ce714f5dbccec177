import BerthWire

/// What the routers say is live, merged: the edge's copy of the directory.
///
/// Each router's view is kept apart, as the zguide's Clone pattern keeps a snapshot and the numbered updates after
/// it: an update whose epoch or sequence is not the next one means an update was missed, and the router is asked
/// for its whole directory again. An instance is live when a router that answers lists it; when no router answers,
/// the last views are all there is, and the edge keeps serving on them.
struct MeshDirectory {
    struct View {
        var epoch: UInt64
        var sequence: UInt64
        var instances: [String: Ready]
        /// The router answers; a view of a router that went quiet counts only while none answers.
        var alive: Bool
        /// An update was missed: the view is stale until the next snapshot.
        var resyncing: Bool
    }

    enum Outcome: Equatable {
        case applied
        /// An update was missed: ask this router for its whole directory.
        case gap
        /// Stale or repeated: nothing changes.
        case ignored
    }

    private(set) var views: [Int: View] = [:]
    /// Whether any router ever sent a directory: before that, the edge knows nothing and requests wait.
    var known: Bool { !views.isEmpty }

    mutating func snapshot(_ directory: Directory, from router: Int) {
        var instances: [String: Ready] = [:]
        for ready in directory.instances { instances[Self.key(ready)] = ready }
        views[router] = View(epoch: directory.epoch, sequence: directory.sequence, instances: instances, alive: true, resyncing: false)
    }

    mutating func update(_ update: DirectoryUpdate, from router: Int) -> Outcome {
        guard var view = views[router] else { return .gap }
        view.alive = true
        defer { views[router] = view }
        if view.resyncing { return .ignored }
        guard update.epoch == view.epoch, update.sequence == view.sequence + 1 else {
            if update.epoch == view.epoch && update.sequence <= view.sequence { return .ignored }
            view.resyncing = true
            return .gap
        }
        view.sequence = update.sequence
        let key = Self.key(update.instance)
        if update.removed { view.instances[key] = nil } else { view.instances[key] = update.instance }
        return .applied
    }

    /// The router went quiet (or restarted without our noticing): its view stays, but counts only while none answers.
    mutating func routerLost(_ router: Int) {
        views[router]?.alive = false
    }

    mutating func routerAnswers(_ router: Int) {
        views[router]?.alive = true
    }

    /// Every live instance, by `class/instance`: from the routers that answer, or from all views when none does.
    /// Where views disagree about an instance, the router listed first wins.
    func live() -> [String: Ready] {
        let answering = views.filter { $0.value.alive }
        let chosen = answering.isEmpty ? views : answering
        var merged: [String: Ready] = [:]
        for router in chosen.keys.sorted(by: >) {
            for (key, ready) in chosen[router]!.instances { merged[key] = ready }
        }
        return merged
    }

    /// One instance as `live()` would give it, without merging the whole directory.
    func live(_ key: String) -> Ready? {
        let answering = views.contains { $0.value.alive }
        for router in views.keys.sorted() where views[router]!.alive || !answering {
            if let ready = views[router]!.instances[key] { return ready }
        }
        return nil
    }

    static func key(_ ready: Ready) -> String { ready.className + "/" + ready.instanceID }
}
