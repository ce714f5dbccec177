/// The `--stats` table, as plain text with aligned columns.
///
/// ```
/// CONTAINER       SENT  RECEIVED  BYTES OUT  BYTES IN  ERRORS      P50      P99
/// ContainerA/a-0     0       120    1.2 MiB   3.4 KiB       2  0.84 ms  3.10 ms
/// edge/main        120         0    3.4 KiB   1.2 MiB       2  1.20 ms  5.00 ms
///
/// CALLER             CALLED          CALLS  ERRORS
/// ContainerA/a-0  →  ContainerB/b-0     40       0
/// ```
public enum StatsTable {
    /// ANSI: clear the screen and move to the top left, to redraw a table in place on a terminal.
    public static let clearScreen = "\u{1B}[H\u{1B}[2J"

    /// The table, one line per row after the header, each line ending in a newline.
    public static func render(_ stats: TrafficStats) -> String {
        let header = ["CONTAINER", "SENT", "RECEIVED", "BYTES OUT", "BYTES IN", "ERRORS", "P50", "P99"]
        var lines = [header]
        for row in stats.rows {
            lines.append([
                row.name.description,
                "\(row.sent)",
                "\(row.received)",
                Units.bytes(row.bytesOut),
                Units.bytes(row.bytesIn),
                "\(row.errors)",
                row.latency.percentile(0.5).map { Units.latency(microseconds: $0) } ?? "-",
                row.latency.percentile(0.99).map { Units.latency(microseconds: $0) } ?? "-",
            ])
        }
        var text = aligned(lines, leftColumns: 1)
        // Container-to-container calls (through the caller's sidecar), one line per pair.
        let calls = stats.callRows
        if !calls.isEmpty {
            var callLines = [["CALLER", "", "CALLED", "CALLS", "ERRORS"]]
            for row in calls {
                callLines.append([row.call.from.description, "→", row.call.to.description, "\(row.count)", "\(row.errors)"])
            }
            text += "\n" + aligned(callLines, leftColumns: 3)
        }
        return text
    }

    /// Lines of cells as text: the names in the first `leftColumns` read left to right, numbers line up on their
    /// last digit.
    private static func aligned(_ lines: [[String]], leftColumns: Int) -> String {
        var widths = Array(repeating: 0, count: lines[0].count)
        for line in lines {
            for (column, cell) in line.enumerated() { widths[column] = max(widths[column], cell.count) }
        }
        var text = ""
        for line in lines {
            var cells: [String] = []
            for (column, cell) in line.enumerated() {
                let padding = String(repeating: " ", count: widths[column] - cell.count)
                cells.append(column < leftColumns ? cell + padding : padding + cell)
            }
            text += cells.joined(separator: "  ") + "\n"
        }
        return text
    }
}
