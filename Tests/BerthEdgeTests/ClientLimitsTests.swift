import Testing

@testable import BerthEdge

/// The rules that bound what clients cost the edge, without a socket.
struct ClientLimitsTests {
    @Test(arguments: [
        (256, 192, 173), // the edge: a reserve of 64
        (1_024, 896, 807), // an eighth kept for the bus
        (20_000, 17_500, 15_750),
        (70, 16, 15), // never fewer than 16 connections
    ])
    func acceptingPausesBelowTheDescriptorLimitAndResumesLower(descriptors: Int, pauseAt: Int, resumeBelow: Int) {
        let limit = ConnectionLimit(descriptors: descriptors)
        #expect(limit.pauseAt == pauseAt)
        #expect(limit.resumeBelow == resumeBelow)
    }

    @Test func bodiesAreCountedAcrossHoldersAndAGrowthPastTheLimitIsRefused() {
        var memory = BodyMemory(limit: 1_000)
        // Each step: a holder goes from one count to another, and whether that was let through.
        let steps: [(from: Int, to: Int, allowed: Bool, held: Int)] = [
            (0, 600, true, 600),
            (0, 400, true, 1_000),
            (0, 1, false, 1_000), // a third holder would pass the limit
            (400, 401, false, 1_000), // so would a holder that grows; a refusal counts nothing
            (600, 0, true, 400), // a holder that goes gives its bytes back
            (0, 600, true, 1_000),
            (600, 600, true, 1_000),
        ]
        for step in steps {
            let allowed = memory.recount(from: step.from, to: step.to)
            #expect(allowed == step.allowed, "\(step)")
            #expect(memory.held == step.held, "\(step)")
        }
    }
}
