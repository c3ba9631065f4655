// How the CLI reports: errors as one line on stderr with exit status 1, output through `Console`.
import ArgumentParser
import TesseraCore
#if canImport(Glibc)
import Glibc
#endif

/// Writes lines to the standard streams (stderr unbuffered, so progress and errors appear at once).
enum Console {
    /// Prints a line to standard output.
    static func out(_ line: String) {
        print(line)
    }

    /// Prints a line to standard error.
    static func err(_ line: String) {
        var text = line
        text += "\n"
        text.withUTF8 { buffer in _ = write(2, buffer.baseAddress, buffer.count) }
    }

    /// Whether standard error is a terminal (progress bars only there).
    static var stderrIsTerminal: Bool { isatty(2) != 0 }
}

/// Runs a command body; a `TesseraError` (or any other error) becomes one line on stderr and exit 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let exit as ExitCode {
        throw exit
    } catch let error as TesseraError {
        Console.err("tessera: \(error.description)")
        throw ExitCode(1)
    } catch {
        Console.err("tessera: \(error)")
        throw ExitCode(1)
    }
}

/// Formats rows as an aligned plain-text table.
func formatTable(header: [String], rows: [[String]], rightAligned: Set<Int> = []) -> [String] {
    var widths = header.map(\.count)
    for row in rows {
        for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
    }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, cell in
            let pad = String(repeating: " ", count: widths[i] - cell.count)
            return rightAligned.contains(i) ? pad + cell : cell + pad
        }.joined(separator: "  ").trimmingTrailingSpaces()
    }
    return [line(header)] + rows.map(line)
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var copy = self
        while copy.last == " " { copy.removeLast() }
        return copy
    }
}

/// `1234567` as `1,234,567`.
func groupedDigits(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var out = ""
    for (i, ch) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
        out.append(ch)
    }
    return value < 0 ? "-" + out : out
}
