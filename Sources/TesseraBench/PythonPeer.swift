// Running the Python peers (tools/bench/*.py) and reading the JSON they print.
import Foundation
import TesseraCore

/// Finds and runs peer scripts.
public struct PythonPeer {
    /// The folder holding the peer scripts.
    public let toolsFolder: String

    /// Looks for `tools/bench` under the current directory, then beside the executable's package.
    public static func locate() -> PythonPeer? {
        var candidates = [FileManager.default.currentDirectoryPath + "/tools/bench"]
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        candidates.append(executable.deletingLastPathComponent().appendingPathComponent("../../tools/bench").standardized.path)
        return candidates.first { FileManager.default.fileExists(atPath: $0 + "/pillow_images.py") }.map(PythonPeer.init)
    }

    /// Runs `python3 SCRIPT ARGS...` and parses the last line of its output as JSON.
    public func run(_ script: String, _ arguments: [String], environment: [String: String] = [:]) throws -> JSONValue {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", toolsFolder + "/" + script] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let last = String(decoding: data, as: UTF8.self).split(separator: "\n").last else {
            let said = String(decoding: errors, as: UTF8.self).split(separator: "\n").suffix(3).joined(separator: " | ")
            throw TesseraError(path: script, stage: .config, code: "bench.peer",
                               "peer failed (status \(process.terminationStatus)): \(said) (install peers with tools/install-deps --tools)")
        }
        return try JSONValue.parse(String(last))
    }
}
