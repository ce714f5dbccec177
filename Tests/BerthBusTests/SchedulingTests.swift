@testable import BerthBus
import Testing

/// Setting how libzmq's I/O threads are scheduled. That the kernel applies it is checked on real executables
/// (`IOSchedulingTests` in the integration tests), where no other test's threads get in the way.
struct SchedulingTests {
    @Test func settingItAfterTheFirstSocketIsAnErrorThatSaysSo() throws {
        let context = Context()
        let socket = try Socket(.dealer, context: context)
        _ = socket
        #expect(throws: BusError.self) { try context.setIOThreadScheduling(.batch) }
        do {
            try context.setIOThreadScheduling(.batch)
        } catch {
            #expect(error.code == .alreadyStarted)
            #expect(error.message.contains("before"))
        }
    }

    @Test func settingItBeforeTheFirstSocketIsAccepted() throws {
        let context = Context()
        try context.setIOThreadScheduling(.batch)
        try context.setIOThreadScheduling(.normal)
        _ = try Socket(.dealer, context: context)
    }
}
