import Dispatch
import Synchronization

/// One long-lived thread that does every fork.
///
/// Linux sends a child its parent-death signal when the *thread* that forked it ends, not the process. Swift's
/// concurrency threads can come and go, so children are forked from this thread, which lives as long as the process.
final class Spawner: Sendable {
    static let shared = Spawner()

    private struct Job: @unchecked Sendable {
        let work: () -> Void
    }

    private let jobs = Mutex<[Job]>([])
    private let available = DispatchSemaphore(value: 0)

    private init() {
        // A block that never returns keeps its thread for the life of the process.
        DispatchQueue(label: "berth-spawner").async { [self] in
            while true {
                available.wait()
                let job = jobs.withLock { $0.removeFirst() }
                job.work()
            }
        }
    }

    /// Runs `work` on the spawner thread and waits for its result.
    func run<R: Sendable>(_ work: @escaping @Sendable () -> R) -> R {
        let result = Mutex<R?>(nil)
        let done = DispatchSemaphore(value: 0)
        jobs.withLock {
            $0.append(Job {
                let value = work()
                result.withLock { $0 = value }
                done.signal()
            })
        }
        available.signal()
        done.wait()
        return result.withLock { $0! }
    }
}
