import ArgumentParser

struct Tap: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the mesh's traffic as it happens.")

    func run() async throws {
        throw ValidationError("berth tap is being written")
    }
}
