// `tessera bench text`: tokens/s on one thread beside Hugging Face `tokenizers` on the same lines.
import Foundation
import TesseraCore
import TesseraText

/// The text benchmark of issue #5.
public struct TextBench {
    /// tokenizer.json files to measure.
    public var tokenizers: [String]
    /// A JSON array of strings, repeated until the text is at least `targetBytes`.
    public var samples: String
    public var targetBytes = 10 << 20
    public var minSeconds = 2.0
    public var runPeers = true

    public init(tokenizers: [String], samples: String) {
        self.tokenizers = tokenizers
        self.samples = samples
    }

    public func run(log: (String) -> Void) throws -> [String] {
        let json = try JSONValue.parse(try FilePath.readAll(samples))
        let base = (json.arrayValue ?? []).compactMap(\.stringValue)
        guard !base.isEmpty else { throw TesseraError(path: samples, stage: .config, code: "bench.empty", "no strings in this JSON array") }
        var lines: [String] = []
        var bytes = 0
        while bytes < targetBytes {
            for line in base {
                lines.append(line)
                bytes += line.utf8.count
            }
        }
        let linesPath = NSTemporaryDirectory() + "tessera-bench-text-\(getpid()).json"
        try DurableFile.write(JSONValue.array(lines.map { .string($0) }).serialized(), to: linesPath)
        defer { try? FilePath.removeFile(linesPath) }
        let load = BackgroundLoad()
        var rows: [[String]] = []
        for path in tokenizers {
            let tokenizer = try Tokenizer(path: path)
            log("measuring \(FilePath.split(path).name)")
            // Strings are converted to scalars inside encode, as the peer receives Python strings.
            var tokens = 0
            let start = monotonicSeconds()
            var best = Double.infinity, total = 0.0, passes = 0
            _ = lines.reduce(0) { $0 + tokenizer.encode($1).count }  // warm-up (and caches, as the peer's)
            while total < minSeconds || passes < 2 {
                let t0 = monotonicSeconds()
                tokens = lines.reduce(0) { $0 + tokenizer.encode($1).count }
                let t = monotonicSeconds() - t0
                best = min(best, t)
                total += t
                passes += 1
            }
            _ = start
            let rate = Double(tokens) / best
            var row = [FilePath.split(path).name, "\(tokens)", formatRate(rate / 1e6, "M tok/s")]
            if runPeers {
                guard let peer = PythonPeer.locate() else {
                    throw TesseraError(stage: .config, code: "bench.peer", "tools/bench not found: run from the repository folder")
                }
                log("measuring tokenizers (peer) on \(FilePath.split(path).name)")
                let result = try peer.run("hf_tokenizers.py", ["--tokenizer", path, "--lines", linesPath, "--min-seconds", "\(minSeconds)"],
                                          environment: ["RAYON_NUM_THREADS": "1"])
                let peerTokens = result["tokens"]?.intValue ?? -1
                let loop = result["encode_per_second"]?.doubleValue ?? 0
                let batch = result["encode_batch_per_second"]?.doubleValue ?? 0
                row += [formatRate(loop / 1e6, "M tok/s"), formatRate(batch / 1e6, "M tok/s"),
                        formatRatio(rate / loop), formatRatio(rate / batch), peerTokens == tokens ? "same" : "DIFFERENT (\(peerTokens))"]
            }
            rows.append(row)
        }
        let background = load.otherCores()
        var out = ["tessera bench text: \(lines.count) lines, \(fixed(Double(bytes) / 1e6, 1)) MB (\(FilePath.split(samples).name) repeated), one thread"]
        out.append("machine: \(machineDescription()); other processes used \(fixed(background, 2)) cores during the run\(background > 0.1 ? " (CONTAMINATED)" : "")")
        var header = ["tokenizer", "tokens", "tessera"]
        if runPeers { header += ["tokenizers encode", "tokenizers encode_batch", "vs encode", "vs encode_batch", "token count"] }
        out += alignedTable(header: header, rows: rows)
        return out
    }
}
