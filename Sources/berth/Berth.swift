import ArgumentParser
import BerthCommandLine

@main
struct Berth: BerthExecutable {
    static let configuration = CommandConfiguration(
        commandName: "berth",
        abstract: "Run and watch a Berth mesh.",
        subcommands: [Up.self, Down.self, Ps.self, Logs.self, Tap.self, Dashboard.self, Keygen.self]
    )
}
