import ArgumentParser
import BerthBus

/// The command of one of Berth's own executables. Its `main` sets the process-wide settings first, before any other
/// thread runs, then parses and runs the command as usual. Process-wide settings belong to an executable, never to
/// a library: a user's own Worker executable links Berth's libraries and keeps its malloc as it is, unless its
/// command adopts this protocol too.
public protocol BerthExecutable: AsyncParsableCommand {}

extension BerthExecutable {
    /// On the main actor, so that it runs on the main thread before any other thread starts: glibc fixes its
    /// number of heaps when a second thread first allocates.
    @MainActor public static func main() async {
        MemoryPolicy.apply()
        await main(nil)
    }
}
