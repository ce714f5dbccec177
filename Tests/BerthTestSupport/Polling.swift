import BerthBus

extension Socket {
    /// The next whole message, waited for until one comes or `seconds` pass (nil then): for tests that hold a raw
    /// socket outside a bus loop.
    public func receive(within seconds: Double) throws -> [Frame]? {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1_000))
        while true {
            if let frames = try receive() { return frames }
            guard Socket.waitForInput([self], timeout: ContinuousClock.now.duration(to: deadline)) != nil else { return try receive() }
        }
    }
}
