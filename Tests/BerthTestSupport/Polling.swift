import BerthBus
import Glibc

extension Socket {
    /// The next whole message, polled for until one comes or `seconds` pass (nil then): for tests that hold a raw
    /// socket outside a bus loop.
    public func receive(within seconds: Double) throws -> [Frame]? {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1_000))
        while ContinuousClock.now < deadline {
            if let frames = try receive() { return frames }
            usleep(5_000)
        }
        return nil
    }
}
