import BerthDashboard
import BerthTap
import Foundation
import BerthTestSupport
import Testing

/// Chromium, when it is installed (`apt-get install -y chromium`).
let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
    .first { FileManager.default.isExecutableFile(atPath: $0) }

/// The page in a real browser.
@Suite(.timeLimit(.minutes(2)), .enabled(if: chromium != nil, "chromium is not installed"))
struct BrowserTests {
    /// Loads the page headless while traffic flows, checks what it drew, and takes a screenshot. With
    /// `BERTH_DASHBOARD_SCREENSHOT=PATH` the screenshot is also copied to PATH.
    @Test func thePageShowsTheContainersAndTheNetworkLog() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("berth-dashboard-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let screenshot = folder.appendingPathComponent("dashboard.png")

        try await Publisher.with { publisher in
            try await withDashboard(eventsOut: await publisher.endpoint(), configure: { $0.statsInterval = .seconds(1) }) { port in
                await publisher.waitForSubscriptions()
                let start = UInt64(Date().timeIntervalSince1970 * 1_000_000) - 60_000_000
                var published = demoLifecycle()
                publisher.publish(published)
                for index in 0..<180 {
                    let traffic = demoTraffic(index, startingAt: start)
                    publisher.publish(traffic)
                    published += traffic
                }
                let total = UInt64(published.count)
                try await eventually { try await stats(port).events == total }

                let url = "http://127.0.0.1:\(port)/"
                // Headless Chromium takes the DOM or the screenshot as soon as the page has loaded; the page comes with
                // the counters and the recent traffic, so both are drawn by then.
                let dom = try await withTrafficFlowing(publisher, from: 180, startingAt: start) {
                    let shot = try await run(["--screenshot=\(screenshot.path)", url], folder: folder)
                    #expect(shot.status == 0, "chromium failed: \(shot.output)")
                    return try await run(["--dump-dom", url], folder: folder)
                }
                #expect(dom.status == 0)
                // One card per container, the edge first, each with its counters and state.
                for name in ["a-0", "a-1", "a-2", "b-0", "b-1", "b-2"] {
                    #expect(dom.output.contains("<span class=\"inst\">\(name)</span>"))
                }
                #expect(dom.output.contains("<span class=\"state healthy\">healthy</span>"))
                #expect(dom.output.contains("<span class=\"state edge\">edge</span>"))
                #expect(dom.output.contains(">Bytes Out<"))
                // The network log: rows for the traffic, at most 200.
                let rows = dom.output.components(separatedBy: "<tr class=\"").count - 1
                #expect(rows == 200, "\(rows) rows in the network log")
                #expect(dom.output.contains("/get-payload"))
                #expect(dom.output.contains(":3000"))
            }
        }

        let png = try Data(contentsOf: screenshot)
        #expect(png.count > 20_000)
        #expect(png.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
        if let copy = ProcessInfo.processInfo.environment["BERTH_DASHBOARD_SCREENSHOT"] {
            try? FileManager.default.removeItem(atPath: copy)
            try FileManager.default.copyItem(at: screenshot, to: URL(fileURLWithPath: copy))
        }
    }

    /// Keeps publishing a /send exchange every 100 ms while `body` runs.
    private func withTrafficFlowing<Result: Sendable>(
        _ publisher: Publisher, from first: Int, startingAt start: UInt64, _ body: () async throws -> Result
    ) async throws -> Result {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                var index = first
                while !Task.isCancelled {
                    publisher.publish(demoTraffic(index, startingAt: start))
                    index += 1
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            defer { group.cancelAll() }
            return try await body()
        }
    }

    /// Runs headless Chromium on the page; its exit status and standard output.
    private func run(_ arguments: [String], folder: URL) async throws -> (status: Int32, output: String) {
        let process = Process()
        // With the event stream open, virtual time never advances, so --virtual-time-budget would wait for ever: the
        // page is taken when it has loaded (--timeout is a bound). timeout(1) guards against a hang all the same.
        process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        process.arguments = [
            "60", chromium!,
            "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", "--no-first-run",
            "--user-data-dir=\(folder.appendingPathComponent("profile").path)",
            "--window-size=1280,900", "--timeout=4000",
        ] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Read on another thread while Chromium writes, so that a full pipe cannot stall it.
        let data = try await Task.detached { try output.fileHandleForReading.readToEnd() ?? Data() }.value
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
