import BerthWire
import DequeModule

/// Everything the edge decides about requests in the mesh, with no socket and no clock: which instance gets a
/// request, what waits in a class's queue, when a deadline has passed, when a link to a sidecar is dead, and what
/// is retried. `EdgeBus` feeds it what arrives and the time, and performs the actions it returns.
///
/// The failure rules, each a unit test (Tests/BerthEdgeTests/EdgeCoreTests.swift):
/// - No instance of the class: 503 no-instance (once a directory is known; before, requests wait for one).
/// - Every instance full: the request waits in its class's queue, up to `queueLimit`; past that, 503 saturated.
/// - A sidecar at its capacity answers saturated: the request goes to another instance, or waits.
/// - The app refused the connection (it never saw the request): tried once more on another instance, any method.
/// - The link to a sidecar dies with requests on it: idempotent ones (and any the sidecar never got) are tried once
///   more on another instance; the rest get 502 instance-lost at once.
/// - The deadline passes: 504.
/// - A streamed answer (`Response.body_streams`) keeps its request in flight on its instance until its last piece:
///   it has no deadline (the receiver's credit paces it), is never retried, and a lost link fails it
///   (`streamLost`: its client sees the body cut); a client that goes away cancels it (`cancelStream`).
/// - A request whose body streams in (`Request.body_streams`) sends its body as its sidecar grants credit. Until the
///   first grant nothing of it left the edge, so it is retried as any request; from then on it never is. Its deadline
///   counts again from each grant, so a long upload is paced by credit, not cut by its deadline.
/// - Outlier detection, as Envoy's: an instance with `ejectAfter` mesh-side failures in a row (the app refused or
///   broke the connection, did not answer in time, or the link was lost) is set aside for `baseEjection` times the
///   number of its ejections (at most `maxEjection`), while no more than `maxEjectedShare` of its class is set aside.
/// - A stalled instance (requests in flight and no answer for `stallAfter`) gets no unnamed request while another
///   instance can take it, so a hung app holds only the requests it already has.
/// - A slow instance, whose answers take `slowFactor` times its class's median and at least `slowFloor`, is set aside
///   as an outlier too (checked once a heartbeat interval, over classes of three or more).
struct EdgeCore<Payload> {
    enum Action {
        /// Open the link to a sidecar; `link` names it on the edge's request socket. `serverKey`: the sidecar's
        /// CURVE public key, empty in a mesh without CURVE.
        case connect(link: Int, endpoint: String, serverKey: String)
        case disconnect(link: Int, endpoint: String)
        /// Send `request` on `link`, with the body `payload` holds; keep a copy of it when `keepBody`, for a retry.
        case send(link: Int, Request, Payload, keepBody: Bool)
        case heartbeat(link: Int)
        /// The response just received on a link is the answer: hand it to whoever waits for `payload`.
        case deliver(Payload, Request)
        /// The mesh's own answer.
        case fail(Payload, Request, MeshError)
        /// Ask router `router` for its whole directory.
        case askDirectory(router: Int)
        /// Outlier detection set `instance` aside for `duration`, or picks it again (`duration` nil).
        case ejected(Ready, duration: Duration?, reason: String)
        /// Tell the sidecar on `link` that the streamed exchange `id` is over: its client went away.
        case cancelStream(link: Int, id: UInt64)
        /// A streamed answer was cut: its link was lost, or the edge stops.
        case streamLost(Payload, Request, MeshError)
    }

    struct Settings {
        var heartbeatInterval: Duration = .seconds(1)
        var liveness = 3
        /// Requests that may wait per class when every instance is full.
        var queueLimit = 1_024
        /// How long requests wait for a first directory before they fail: no router was reached.
        var firstDirectoryWait: Duration = .seconds(3)
        /// A link unused this long is closed.
        var idleLink: Duration = .seconds(60)
        /// Mesh-side failures in a row that set an instance aside.
        var ejectAfter = 5
        var baseEjection: Duration = .seconds(30)
        var maxEjection: Duration = .seconds(300)
        /// The share of a class that may be set aside at once (rounded down: a lone instance never is).
        var maxEjectedShare = 0.5
        /// An instance with requests in flight that answered nothing for this long counts as stalled.
        var stallAfter: Duration = .seconds(1)
        /// An instance whose typical answer takes this many times its class's median, and at least `slowFloor`, is slow.
        var slowFactor = 5.0
        var slowFloor: Duration = .milliseconds(100)
    }

    /// A live instance as this edge sees it. A class, so that a pick reads its load without copying its description.
    final class Member {
        var ready: Ready
        /// `class/instance`.
        let key: String
        let link: Int
        /// Requests this edge has on it.
        var inFlight = 0
        /// Of those, the ones whose answer streams: they answered, so they tell nothing of a stall.
        var streams = 0
        /// What the sidecar last said it works on (all edges' requests).
        var reported = 0
        /// The directory lists it; once not, it takes nothing new and goes when its requests are answered.
        var listed = true
        /// The sidecar said it is leaving.
        var leaving = false
        var connected = false
        /// When the sidecar was last heard on its link; nil: never, so nothing sent was delivered.
        var lastHeard: ContinuousClock.Instant?
        /// When something was last sent that wants an answer: liveness counts from here while requests wait.
        var waitingSince: ContinuousClock.Instant?
        var lastUsed: ContinuousClock.Instant
        /// Its link was lost though the directory still lists it: not picked before this, when its routers will have
        /// dropped it if it is dead.
        var quarantinedUntil: ContinuousClock.Instant?
        /// Mesh-side failures in a row, and how often outlier detection set it aside.
        var failuresInARow = 0
        var ejections = 0
        var ejectedUntil: ContinuousClock.Instant?
        /// Since when it has requests in flight, and when it last answered one: together they tell a stall.
        var busySince: ContinuousClock.Instant?
        var lastAnswer: ContinuousClock.Instant?
        /// How long its answers take, as an exponentially weighted average (a tenth for each new one), and over how many.
        var latency: Duration = .zero
        var answers = 0

        init(ready: Ready, key: String, link: Int, lastUsed: ContinuousClock.Instant) {
            self.ready = ready
            self.key = key
            self.link = link
            self.lastUsed = lastUsed
        }

        var instanceID: String { ready.instanceID }
        var capacity: Int { Int(ready.capacity) }
        var load: Int { max(inFlight, reported) }
        var hasRoom: Bool { inFlight < capacity && reported < capacity }
        var pickable: Bool { listed && !leaving }

        /// Set aside at `now`: its link was lost, or outlier detection ejected it.
        func setAside(at now: ContinuousClock.Instant) -> Bool {
            if let until = quarantinedUntil, until > now { return true }
            if let until = ejectedUntil, until > now { return true }
            return false
        }

        /// Requests in flight, and no answer to any for `limit`.
        func stalled(at now: ContinuousClock.Instant, after limit: Duration) -> Bool {
            guard inFlight - streams >= 2, let since = busySince else { return false }
            return max(since, lastAnswer ?? since).duration(to: now) > limit
        }
        var name: String { "\(ready.className)/\(ready.instanceID)" }
    }

    /// A request in the mesh. A class, so that each step of it updates it in place.
    private final class Pending {
        var request: Request
        let payload: Payload
        var deadline: ContinuousClock.Instant
        /// The time to answer it was given, for a deadline counted again while its body streams in.
        let timeout: Duration
        /// The link of the member it is on; nil while it waits in its class's queue.
        var on: Int?
        /// Links of instances that refused it or lost it: not picked again.
        var avoid: [Int] = []
        /// When it was last sent.
        var sentAt: ContinuousClock.Instant?
        /// Its answer's head came and its body streams: done at its last piece.
        var streaming = false
        /// Its body streams in and some of it has left: it can no longer go to another instance.
        var bodyStarted = false

        init(request: Request, payload: Payload, deadline: ContinuousClock.Instant, now: ContinuousClock.Instant) {
            self.request = request
            self.payload = payload
            self.deadline = deadline
            timeout = now.duration(to: deadline)
        }
    }

    let settings: Settings
    private var started: ContinuousClock.Instant
    private(set) var directory = MeshDirectory()
    /// Members by link: every request looks them up, by number rather than by name.
    private var members: [Int: Member] = [:]
    /// The link of each `class/instance`.
    private var links: [String: Int] = [:]
    /// Every member's link by class, pickable or not.
    private var byClass: [String: Set<Int>] = [:]
    /// Pickable members of each class, as links in the order of their keys: the candidates of a pick.
    private var classes: [String: [Int]] = [:]
    private var nextLink = 1
    private var pending: [UInt64: Pending] = [:]
    private var queues: [String: Deque<UInt64>] = [:]
    /// Requests in all queues: most answers find none waiting, and need not look up their class's queue.
    private var queuedCount = 0
    private var rotation = 0
    private var randomState: UInt64
    private var nextHeartbeat: ContinuousClock.Instant
    private var nextSweep: ContinuousClock.Instant

    init(settings: Settings, now: ContinuousClock.Instant, seed: UInt64 = UInt64.random(in: 1...UInt64.max)) {
        self.settings = settings
        started = now
        randomState = seed | 1
        nextHeartbeat = now + settings.heartbeatInterval
        nextSweep = now
    }

    var pendingCount: Int { pending.count }
    func queued(_ className: String) -> Int { queues[className]?.count ?? 0 }
    func member(_ key: String) -> Member? { links[key].flatMap { members[$0] } }
    func key(ofLink link: Int) -> String? { members[link]?.key }

    // MARK: The directory

    mutating func directory(_ snapshot: Directory, from router: Int, now: ContinuousClock.Instant) -> [Action] {
        directory.snapshot(snapshot, from: router)
        return reconcile(now: now)
    }

    mutating func update(_ update: DirectoryUpdate, from router: Int, now: ContinuousClock.Instant) -> [Action] {
        switch directory.update(update, from: router) {
        case .applied: return reconcile(MeshDirectory.key(update.instance), now: now)
        case .gap: return [.askDirectory(router: router)]
        case .ignored: return []
        }
    }

    /// The router went quiet; its view counts only while no other router answers.
    mutating func routerLost(_ router: Int, now: ContinuousClock.Instant) -> [Action] {
        directory.routerLost(router)
        return reconcile(now: now)
    }

    mutating func routerAnswers(_ router: Int, now: ContinuousClock.Instant) -> [Action] {
        guard let view = directory.views[router], !view.alive else { return [] }
        directory.routerAnswers(router)
        return reconcile(now: now)
    }

    /// Brings `members` in line with the whole directory, then serves what waited for it.
    private mutating func reconcile(now: ContinuousClock.Instant) -> [Action] {
        var actions: [Action] = []
        let live = directory.live()
        for (key, ready) in live { actions += place(key, ready, now: now) }
        for (link, member) in members where live[member.key] == nil && member.listed { actions += unlist(link) }
        rebuildClasses()
        for className in Set(queues.keys) { actions += drainQueue(className, now: now) }
        return actions
    }

    /// The same for one instance, after one update: the cost of an update does not grow with the directory.
    private mutating func reconcile(_ key: String, now: ContinuousClock.Instant) -> [Action] {
        var actions: [Action] = []
        if let ready = directory.live(key) {
            actions += place(key, ready, now: now)
            rebuildClasses(ready.className)
            return actions + drainQueue(ready.className, now: now)
        }
        guard let link = links[key], let member = members[link] else { return [] }
        actions += unlist(link)
        rebuildClasses(member.ready.className)
        return actions
    }

    /// Lists `key` as `ready` says.
    private mutating func place(_ key: String, _ ready: Ready, now: ContinuousClock.Instant) -> [Action] {
        guard let link = links[key] else {
            add(key, ready, now: now)
            return []
        }
        if members[link]!.ready.endpoint != ready.endpoint {
            // The sidecar restarted on a new endpoint: what was on the old one is lost with it.
            let actions = lose(link, reason: "restarted", now: now)
            if links[key] == nil { add(key, ready, now: now) }
            return actions
        }
        members[link]!.ready = ready
        members[link]!.listed = true
        return []
    }

    /// The directory no longer lists it: nothing new goes to it, and it goes once its requests are answered.
    private mutating func unlist(_ link: Int) -> [Action] {
        members[link]!.listed = false
        return members[link]!.inFlight == 0 ? forget(link) : []
    }

    @discardableResult
    private mutating func add(_ key: String, _ ready: Ready, now: ContinuousClock.Instant) -> Int {
        let link = nextLink
        nextLink += 1
        members[link] = Member(ready: ready, key: key, link: link, lastUsed: now)
        links[key] = link
        byClass[ready.className, default: []].insert(link)
        return link
    }

    private mutating func forget(_ link: Int) -> [Action] {
        guard let member = members.removeValue(forKey: link) else { return [] }
        if links[member.key] == link { links[member.key] = nil }
        byClass[member.ready.className]?.remove(link)
        return member.connected ? [.disconnect(link: link, endpoint: member.ready.endpoint)] : []
    }

    private mutating func rebuildClasses() {
        classes = [:]
        for className in byClass.keys { rebuildClasses(className) }
    }

    /// The candidates of one class, from its own members only.
    private mutating func rebuildClasses(_ className: String) {
        let pickable = (byClass[className] ?? []).compactMap { members[$0] }.filter(\.pickable)
        classes[className] = pickable.isEmpty ? nil : pickable.sorted { $0.key < $1.key }.map(\.link)
    }

    // MARK: Requests

    /// A new request: sent to an instance, queued, or failed at once.
    mutating func submit(_ request: Request, payload: Payload, deadline: ContinuousClock.Instant, now: ContinuousClock.Instant) -> [Action] {
        pending[request.id] = Pending(request: request, payload: payload, deadline: deadline, now: now)
        return dispatch(request.id, now: now)
    }

    /// The client went away: the request ends as such (its answer, if it comes, is dropped); a streamed answer's
    /// sidecar is told to stop.
    mutating func cancel(_ id: UInt64) -> [Action] {
        guard let entry = pending[id] else { return [] }
        if entry.streaming, let link = entry.on {
            pending[id] = nil
            members[link]?.streams -= 1
            return [.cancelStream(link: link, id: id)] + release(from: link)
        }
        if entry.bodyStarted, let link = entry.on {
            // Its sidecar waits for the rest of the body: told to stop.
            return [.cancelStream(link: link, id: id)] + fail(id, .internal, "the client went away", component: "edge")
        }
        if entry.on == nil { unqueue(id, entry.request.target.className) }
        return fail(id, .internal, "the client went away", component: "edge")
    }

    /// The edge starts following the routers only now (an egress listener does at its app's first call): the wait
    /// for a first directory starts again.
    mutating func beginFollowing(now: ContinuousClock.Instant) {
        started = now
    }

    private mutating func dispatch(_ id: UInt64, now: ContinuousClock.Instant) -> [Action] {
        guard let entry = pending[id] else { return [] }
        let className = entry.request.target.className
        guard directory.known else {
            if started.duration(to: now) < settings.firstDirectoryWait { return enqueue(id, className) }
            return fail(id, .routerUnreachable, "no router has answered yet, so the edge knows no instance of \(className)", component: "edge")
        }
        let keys = classes[className] ?? []
        func usable(_ link: Int) -> Bool {
            !members[link]!.setAside(at: now) && !entry.avoid.contains(link)
        }
        let stallAfter = settings.stallAfter
        let chosen: Int?
        if let name = entry.request.target.instanceName {
            // A name sticks to its instance: when that one is full, the request waits for it.
            let candidates = keys.filter(usable)
            guard !candidates.isEmpty else { return failUnplaced(id, className, classSize: keys.count) }
            let index = Picking.index(forName: name, among: candidates.map { members[$0]!.instanceID })!
            chosen = members[candidates[index]]!.hasRoom ? candidates[index] : nil
        } else {
            guard !keys.isEmpty else { return failUnplaced(id, className, classSize: 0) }
            let rotation = nextRotation(), random = nextRandom()
            // A stalled instance takes a request only when no other can.
            let index = Picking.leastLoaded(
                count: keys.count, rotation: rotation, random: random, load: { members[keys[$0]]!.load },
                hasRoom: { usable(keys[$0]) && members[keys[$0]]!.hasRoom && !members[keys[$0]]!.stalled(at: now, after: stallAfter) }
            ) ?? Picking.leastLoaded(
                count: keys.count, rotation: rotation, random: random, load: { members[keys[$0]]!.load },
                hasRoom: { usable(keys[$0]) && members[keys[$0]]!.hasRoom }
            )
            if index == nil && !keys.contains(where: usable) { return failUnplaced(id, className, classSize: keys.count) }
            chosen = index.map { keys[$0] }
        }
        guard let chosen else { return enqueue(id, className) }
        return hand(id, to: chosen, now: now)
    }

    /// No instance may take the request: none is live, or each refused or lost it already.
    private mutating func failUnplaced(_ id: UInt64, _ className: String, classSize: Int) -> [Action] {
        if classSize > 0 {
            return fail(id, .saturated, "every live instance of \(className) refused the request, was lost with it, or is set aside", component: "edge")
        }
        return fail(id, .noInstance, "no live instance of container class \(className)", component: "edge")
    }

    private mutating func enqueue(_ id: UInt64, _ className: String) -> [Action] {
        let waiting = queues[className]?.count ?? 0
        guard waiting < settings.queueLimit else {
            let count = classes[className]?.count ?? 0
            return fail(id, .saturated, "all \(count) instances of \(className) are at capacity and \(waiting) requests wait", component: "edge")
        }
        queues[className, default: []].append(id)
        queuedCount += 1
        return []
    }

    private mutating func unqueue(_ id: UInt64, _ className: String) {
        guard let index = queues[className]?.firstIndex(of: id) else { return }
        queues[className]!.remove(at: index)
        queuedCount -= 1
    }

    private mutating func hand(_ id: UInt64, to link: Int, now: ContinuousClock.Instant) -> [Action] {
        var actions: [Action] = []
        let member = members[link]!
        if !member.connected {
            member.connected = true
            actions.append(.connect(link: link, endpoint: member.ready.endpoint, serverKey: member.ready.curvePublicKey))
        }
        let entry = pending[id]!
        entry.on = link
        entry.sentAt = now
        entry.request.timeoutMilliseconds = UInt32(clamping: max(1, now.duration(to: entry.deadline).milliseconds))
        if member.inFlight == 0 { member.busySince = now }
        member.inFlight += 1
        member.lastUsed = now
        if member.waitingSince == nil { member.waitingSince = now }
        actions.append(.send(link: link, entry.request, entry.payload, keepBody: entry.request.attempt == 0))
        return actions
    }

    /// Takes a request off its member; a member the directory no longer lists goes with its last request.
    private mutating func release(from link: Int) -> [Action] {
        guard let member = members[link] else { return [] }
        member.inFlight -= 1
        guard member.inFlight == 0 else { return [] }
        member.waitingSince = nil
        member.busySince = nil
        return member.listed ? [] : forget(link)
    }

    /// A response on `link`: the answer, or a refusal that sends the request elsewhere.
    mutating func response(_ response: Response, onLink link: Int, now: ContinuousClock.Instant) -> [Action] {
        guard let member = members[link] else { return [] }
        heard(link, load: Int(response.inFlight), now: now)
        guard let entry = pending[response.id], entry.on == link else { return [] }
        member.lastAnswer = now
        if let sentAt = entry.sentAt {
            let took = sentAt.duration(to: now)
            member.latency = member.answers == 0 ? took : (member.latency * 9 + took) / 10
            member.answers += 1
        }
        let streams = response.bodyStreams && response.error == nil
        var actions = streams ? [] : release(from: link)
        let className = entry.request.target.className
        if let error = response.error {
            switch error.code {
            case .appUnreachable, .appFailed, .deadlineExceeded: actions += failed(link, "\(error.code.name): \(error.message)", now: now)
            default: break
            }
        } else {
            member.failuresInARow = 0
        }
        switch response.error?.code {
        case .saturated? where response.error?.component == "sidecar":
            // The sidecar is full (other edges fill it too), as its load now says: the app never saw this one, which
            // goes to another instance or waits for room.
            actions += retry(response.id, avoiding: nil, countAsAttempt: false, now: now)
        case .appUnreachable? where entry.request.attempt == 0 && !entry.bodyStarted && hasAlternative(to: link, for: entry, now: now):
            // The app refused the connection: it never saw the request, so any method may go elsewhere.
            actions += retry(response.id, avoiding: link, countAsAttempt: true, now: now)
        default:
            if streams {
                entry.streaming = true
                member.streams += 1
            } else {
                pending[response.id] = nil
            }
            actions.append(.deliver(entry.payload, entry.request))
        }
        return queuedCount == 0 ? actions : actions + drainQueue(className, now: now)
    }

    /// A piece of a streamed answer on `link`: whose it is (nil: none this edge waits for), and, after the last piece,
    /// what its instance's freed room lets go.
    mutating func streamPiece(_ id: UInt64, final: Bool, onLink link: Int, now: ContinuousClock.Instant) -> (Payload?, [Action]) {
        guard let entry = pending[id], entry.on == link, entry.streaming, let member = members[link] else { return (nil, []) }
        member.lastHeard = now
        if member.waitingSince != nil { member.waitingSince = now }
        guard final else { return (entry.payload, []) }
        pending[id] = nil
        member.streams -= 1
        let actions = release(from: link)
        return (entry.payload, queuedCount == 0 ? actions : actions + drainQueue(entry.request.target.className, now: now))
    }

    /// The link a streamed exchange's credit goes on.
    func streamLink(_ id: UInt64) -> Int? {
        guard let entry = pending[id], entry.streaming else { return nil }
        return entry.on
    }

    /// The link the pieces of a request body that streams in go on, and whose request it is.
    func uploadTarget(_ id: UInt64) -> (Int, Payload)? {
        guard let entry = pending[id], entry.request.bodyStreams, let link = entry.on else { return nil }
        return (link, entry.payload)
    }

    /// The sidecar on `link` granted credit for the body of `id`: whose request it is (nil: none this edge sends).
    /// From now on the request is not retried, and its deadline counts again.
    mutating func uploadCredit(_ id: UInt64, onLink link: Int, now: ContinuousClock.Instant) -> Payload? {
        guard let entry = pending[id], entry.on == link, entry.request.bodyStreams, let member = members[link] else { return nil }
        member.lastHeard = now
        if member.waitingSince != nil { member.waitingSince = now }
        entry.bodyStarted = true
        entry.deadline = max(entry.deadline, now + entry.timeout)
        return entry.payload
    }

    /// A heartbeat answered on `link`, with the sidecar's load.
    mutating func heartbeat(inFlight: UInt32, onLink link: Int, now: ContinuousClock.Instant) -> [Action] {
        guard members[link] != nil else { return [] }
        let before = members[link]!.hasRoom
        heard(link, load: Int(inFlight), now: now)
        return !before && members[link]!.hasRoom ? drainQueue(members[link]!.ready.className, now: now) : []
    }

    private mutating func heard(_ link: Int, load: Int, now: ContinuousClock.Instant) {
        let member = members[link]!
        member.lastHeard = now
        member.reported = load
        if member.waitingSince != nil { member.waitingSince = now }
    }

    /// The sidecar on `link` is leaving: nothing new goes to it; what it has is answered.
    mutating func leaving(onLink link: Int, now: ContinuousClock.Instant) -> [Action] {
        guard members[link] != nil else { return [] }
        members[link]!.leaving = true
        rebuildClasses(members[link]!.ready.className)
        return []
    }

    /// The link to a sidecar broke (its process died, or it stopped answering): what it held is retried or failed.
    mutating func linkLost(_ link: Int, reason: String, now: ContinuousClock.Instant) -> [Action] {
        lose(link, reason: reason, now: now)
    }

    private mutating func lose(_ link: Int, reason: String, now: ContinuousClock.Instant) -> [Action] {
        guard members[link] != nil else { return [] }
        var actions = failed(link, "its link \(reason)", now: now)
        let member = members[link]!
        let delivered = member.lastHeard != nil
        // Rare enough to look through every request for the ones on this link.
        for id in pending.keys.sorted() where pending[id]!.on == link {
            let entry = pending[id]!
            members[link]!.inFlight -= 1
            if entry.streaming {
                pending[id] = nil
                actions.append(.streamLost(entry.payload, entry.request, MeshError(
                    code: .instanceLost, message: "\(member.name) \(reason) while it streamed the answer", component: "edge"
                )))
                continue
            }
            // A request on a link never heard from never reached the app: any method may go elsewhere.
            if entry.request.attempt == 0 && !entry.bodyStarted && (entry.request.isIdempotent || !delivered) {
                actions += retry(id, avoiding: link, countAsAttempt: true, now: now)
            } else {
                pending[id]!.on = nil
                actions += fail(id, .instanceLost, "\(member.name) \(reason) while it handled the request", component: "edge")
            }
        }
        actions += forget(link)
        // The directory still lists it until its routers notice: set aside till then, with a new link if picked again.
        if let ready = directory.live(member.key) {
            let again = add(member.key, ready, now: now)
            members[again]!.quarantinedUntil = now + settings.heartbeatInterval * settings.liveness
            members[again]!.failuresInARow = member.failuresInARow
            members[again]!.ejections = member.ejections
            members[again]!.ejectedUntil = member.ejectedUntil
        }
        rebuildClasses(member.ready.className)
        return actions + drainQueue(member.ready.className, now: now)
    }

    // MARK: Outlier detection

    /// A mesh-side failure of `key`'s instance: the `ejectAfter`th in a row sets it aside, if its class can spare it.
    private mutating func failed(_ link: Int, _ reason: String, now: ContinuousClock.Instant) -> [Action] {
        guard let member = members[link] else { return [] }
        member.failuresInARow += 1
        guard member.failuresInARow >= settings.ejectAfter else { return [] }
        return eject(member, "\(settings.ejectAfter) failures in a row, the last: \(reason)", now: now)
    }

    /// Sets `member` aside, for longer each time, if its class can spare it.
    private mutating func eject(_ member: Member, _ reason: String, now: ContinuousClock.Instant) -> [Action] {
        guard !member.setAside(at: now) else { return [] }
        let peers = classes[member.ready.className] ?? []
        let ejected = peers.filter { members[$0]?.ejectedUntil.map { $0 > now } ?? false }.count
        guard ejected + 1 <= Int(Double(peers.count) * settings.maxEjectedShare) else { return [] }
        member.ejections += 1
        member.failuresInARow = 0
        let duration = min(settings.baseEjection * member.ejections, settings.maxEjection)
        member.ejectedUntil = now + duration
        return [.ejected(member.ready, duration: duration, reason: reason)]
    }

    /// Instances far slower than their class's median, among those with ten answers or more, are set aside.
    private mutating func ejectSlow(now: ContinuousClock.Instant) -> [Action] {
        var actions: [Action] = []
        for (className, links) in classes where links.count >= 3 {
            let measured = links.compactMap { members[$0] }.filter { $0.answers >= 10 && !$0.setAside(at: now) }
            guard measured.count >= 3 else { continue }
            let median = measured.map(\.latency).sorted()[measured.count / 2]
            let limit = max(median * settings.slowFactor, settings.slowFloor)
            for member in measured where member.latency > limit {
                actions += eject(member, "its answers take \(member.latency) against \(median) for \(className)'s median", now: now)
                member.answers = 0
            }
        }
        return actions
    }

    /// Instances whose ejection is over are picked again.
    private mutating func returnEjected(now: ContinuousClock.Instant) -> [Action] {
        var actions: [Action] = []
        for (link, member) in members {
            guard let until = member.ejectedUntil, until <= now else { continue }
            members[link]!.ejectedUntil = nil
            actions.append(.ejected(member.ready, duration: nil, reason: "its ejection is over"))
        }
        return actions
    }

    /// Whether another instance could take `entry` instead of `key`'s.
    private func hasAlternative(to link: Int, for entry: Pending, now: ContinuousClock.Instant) -> Bool {
        (classes[entry.request.target.className] ?? []).contains { other in
            other != link && !entry.avoid.contains(other) && members[other]?.setAside(at: now) == false
        }
    }

    private mutating func retry(_ id: UInt64, avoiding link: Int?, countAsAttempt: Bool, now: ContinuousClock.Instant) -> [Action] {
        guard let entry = pending[id] else { return [] }
        entry.on = nil
        if let link { entry.avoid.append(link) }
        if countAsAttempt { entry.request.attempt += 1 }
        pending[id] = entry
        return dispatch(id, now: now)
    }

    private mutating func fail(_ id: UInt64, _ code: ErrorCode, _ message: String, component: String) -> [Action] {
        guard let entry = pending.removeValue(forKey: id) else { return [] }
        var actions: [Action] = []
        if let link = entry.on {
            if entry.streaming { members[link]?.streams -= 1 }
            actions += release(from: link)
        }
        let error = MeshError(code: code, message: message, component: component)
        actions.append(entry.streaming ? .streamLost(entry.payload, entry.request, error) : .fail(entry.payload, entry.request, error))
        return actions
    }

    /// Serves what waits in a class's queue, in order: a request without a name that finds no room stops the ones
    /// behind it; a named one waits for its own instance and lets the others pass.
    private mutating func drainQueue(_ className: String, now: ContinuousClock.Instant) -> [Action] {
        guard var queue = queues[className], !queue.isEmpty else { return [] }
        var actions: [Action] = []
        queuedCount -= queue.count
        queues[className] = []
        var kept: Deque<UInt64> = []
        var blocked = false
        while let id = queue.popFirst() {
            guard let entry = pending[id] else { continue }
            let unnamed = entry.request.target.instanceName == nil
            if blocked && unnamed {
                kept.append(id)
                continue
            }
            actions += dispatch(id, now: now)
            if let last = queues[className]?.last, last == id {
                kept.append(queues[className]!.removeLast())
                queuedCount -= 1
                if unnamed { blocked = true }
            }
        }
        queuedCount += kept.count
        queues[className] = kept + (queues[className] ?? [])
        return actions
    }

    // MARK: Time

    /// Deadlines, link liveness, heartbeats and idle links. Returns when to look again.
    mutating func tick(now: ContinuousClock.Instant) -> (actions: [Action], next: ContinuousClock.Instant) {
        var actions: [Action] = []
        if now >= nextSweep {
            nextSweep = now + Self.sweepInterval
            actions += expire(now: now)
            if !directory.known && started.duration(to: now) >= settings.firstDirectoryWait {
                for className in Set(queues.keys) { actions += drainQueue(className, now: now) }
            }
        }
        if now >= nextHeartbeat {
            nextHeartbeat = now + settings.heartbeatInterval
            actions += checkLinks(now: now)
            actions += returnEjected(now: now)
            actions += ejectSlow(now: now)
        }
        return (actions, min(nextSweep, nextHeartbeat))
    }

    /// How often deadlines are looked at: a 504 comes at most this late.
    static var sweepInterval: Duration { .milliseconds(20) }

    private mutating func expire(now: ContinuousClock.Instant) -> [Action] {
        var actions: [Action] = []
        for (id, entry) in pending where entry.deadline <= now && !entry.streaming {
            let message: String
            if let link = entry.on, let member = members[link] {
                message = "\(member.name) did not answer before the deadline"
                actions += failed(link, message, now: now)
            } else {
                unqueue(id, entry.request.target.className)
                message = "no instance of \(entry.request.target.className) became free before the deadline"
            }
            actions += fail(id, .deadlineExceeded, message, component: "edge")
        }
        return actions
    }

    /// Once a heartbeat interval: links silent too long are lost, idle ones closed, the rest heartbeated.
    private mutating func checkLinks(now: ContinuousClock.Instant) -> [Action] {
        var actions: [Action] = []
        let deadAfter = settings.heartbeatInterval * settings.liveness
        for (link, member) in members where member.connected {
            if let since = member.waitingSince, since.duration(to: now) > deadAfter {
                actions += lose(link, reason: "stopped answering on its link", now: now)
            } else if member.inFlight == 0 && member.lastUsed.duration(to: now) > settings.idleLink {
                members[link]!.connected = false
                members[link]!.lastHeard = nil
                members[link]!.waitingSince = nil
                actions.append(.disconnect(link: link, endpoint: member.ready.endpoint))
            } else {
                actions.append(.heartbeat(link: link))
                if member.waitingSince == nil { members[link]!.waitingSince = now }
            }
        }
        return actions
    }

    /// The edge is stopping: every request still in the mesh gets its answer now.
    mutating func abandonAll(_ message: String) -> [Action] {
        var actions: [Action] = []
        for id in pending.keys.sorted() { actions += fail(id, .internal, message, component: "edge") }
        queues.removeAll()
        queuedCount = 0
        return actions
    }

    // MARK: Randomness without a system call

    private mutating func nextRotation() -> Int {
        rotation &+= 1
        return rotation & Int.max
    }

    /// xorshift64*.
    private mutating func nextRandom() -> Int {
        randomState ^= randomState >> 12
        randomState ^= randomState << 25
        randomState ^= randomState >> 27
        return Int(truncatingIfNeeded: (randomState &* 0x2545_F491_4F6C_DD1D) >> 1)
    }
}
