// `tessera bench train SHARDS`: W2 (model M1 on W1 shards, batch 64, Adam, all modalities, no dropout) end to end:
// Tessera's training throughput and peak RSS beside PyTorch running the same model on the same shards with the
// same threads (plain, and tuned: jemalloc and fused Adam), and beside the GEMM-only limit at W2's shapes.
import Foundation
import TesseraBLAS
import TesseraCore
import TesseraEngine

public struct TrainBench {
    public var shards: String
    public var threads = 2
    public var steps = 30
    public var runPeers = true
    /// Rounds of all trainers, one after the other; each trainer's best round is reported (this VM's speed
    /// moves 15-25% within minutes, so one round compares different machines).
    public var rounds = 3

    public init(shards: String) { self.shards = shards }

    struct Run {
        var samplesPerSecond: Double; var peakRSS: Int; var sgemmShare: Double?; var detail: String
        /// Milliseconds per steady step in each phase (Tessera only).
        var phases: [(String, Double)] = []
        /// GFLOP of matrix products per step (Tessera only).
        var gflopPerStep: Double?
    }

    /// `tessera train` in a child process (its own peak memory), steady state after the warm-up steps.
    func tessera(_ modelFile: String) throws -> Run {
        let out = NSTemporaryDirectory() + "tessera-bench-train-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let json = try child(CommandLine.arguments[0], ["train", shards, "--out", out, "--overwrite", "--model", modelFile,
                                                        "--steps", "\(steps + 5)", "--batch-size", "64", "--threads", "\(threads)",
                                                        "--shuffle", "none", "--no-eval", "--no-pictures", "--checkpoint-every", "0",
                                                        "--quiet", "--json"])
        let seconds = json["steady_seconds"]?.doubleValue ?? 0, sgemm = json["steady_sgemm_seconds"]?.doubleValue ?? 0
        let steps = Double(max(json["steady_steps"]?.intValue ?? 1, 1))
        let phases = (json["phase_seconds"]?.objectValue.map { object in object.keys.map { ($0, (object[$0]?.doubleValue ?? 0) / steps * 1e3) } }) ?? []
        return Run(samplesPerSecond: json["steady_samples_per_second"]?.doubleValue ?? 0, peakRSS: json["peak_rss_bytes"]?.intValue ?? 0,
                   sgemmShare: seconds > 0 ? sgemm / seconds : nil,
                   detail: "\(json["parameters"]?.intValue ?? 0) parameters, \(fixed(json["sgemm_gflop"]?.doubleValue ?? 0, 1)) GFLOP in sgemm",
                   phases: phases,
                   gflopPerStep: (json["sgemm_gflop"]?.doubleValue).map { $0 / Double(max(json["steps"]?.intValue ?? 1, 1)) })
    }

    func child(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> JSONValue {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable).resolvingSymlinksInPath()
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe(), errors = Pipe()
        process.standardOutput = pipe
        process.standardError = errors
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        // The whole output is one JSON value (a model file), or its last line is (a summary after progress lines).
        let text = String(decoding: data, as: UTF8.self)
        let parsed = (try? JSONValue.parse(text)) ?? text.split(separator: "\n").last.flatMap { try? JSONValue.parse(String($0)) }
        guard process.terminationStatus == 0, let json = parsed else {
            throw TesseraError(path: shards, stage: .config, code: "bench.train",
                               "\(URL(fileURLWithPath: executable).lastPathComponent) \(arguments.prefix(2).joined(separator: " ")) failed (status \(process.terminationStatus)): \(message.suffix(400))")
        }
        return json
    }

    /// PyTorch on the same model file and shards (tools/bench/pytorch_train.py).
    func pytorch(_ modelFile: String, tuned: Bool) throws -> Run? {
        guard let peer = PythonPeer.locate() else { return nil }
        var environment: [String: String] = [:]
        var arguments = [modelFile, shards, "--threads", "\(threads)", "--steps", "\(steps)"]
        if tuned {
            arguments.append("--fused")
            for candidate in ["/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2"] where FileManager.default.fileExists(atPath: candidate) {
                environment["LD_PRELOAD"] = candidate
                // PyTorch's own performance guide's settings. jemalloc's default (returning freed pages
                // after 10 s of decay) measured slower than glibc here: 190 against 287 samples/s.
                environment["MALLOC_CONF"] = "background_thread:true,metadata_thp:auto,dirty_decay_ms:-1,muzzy_decay_ms:-1"
            }
        }
        let json = try peer.run("pytorch_train.py", arguments, environment: environment)
        let allocator = json["allocator"]?.stringValue ?? "glibc"
        return Run(samplesPerSecond: json["samples_per_second"]?.doubleValue ?? 0, peakRSS: json["peak_rss_bytes"]?.intValue ?? 0, sgemmShare: nil,
                   detail: "torch \(json["torch"]?.stringValue ?? "?"), \(allocator) malloc\(tuned ? " (no decay)" : ""), \(tuned ? "fused" : "default") Adam")
    }

    public func run(log: (String) -> Void) throws -> [String] {
        let load = BackgroundLoad()
        // The model file both sides build: M1 sized for these shards.
        let modelFile = NSTemporaryDirectory() + "tessera-bench-m1-\(getpid()).json"
        defer { try? FileManager.default.removeItem(atPath: modelFile) }
        let printed = try child(CommandLine.arguments[0], ["train", shards, "--print-model", "m1"])
        try DurableFile.write(printed.prettySerialized(), to: modelFile)

        var best: Run?
        var bestPeers: [String: Run] = [:]
        var roundRatios: [String] = []
        let rounds = max(self.rounds, 1)
        for round in 1...rounds {
            log("round \(round) of \(rounds): tessera train, M1, \(steps) steps after 5 warm-up steps")
            let run = try tessera(modelFile)
            if run.samplesPerSecond > best?.samplesPerSecond ?? -1 { best = run }
            var ratios: [String] = []
            if runPeers {
                for (name, tuned) in [("PyTorch", false), ("PyTorch tuned", true)] {
                    log(tuned ? "PyTorch tuned (jemalloc without decay, fused Adam)" : "PyTorch, the same model and shards")
                    guard let peer = try pytorch(modelFile, tuned: tuned) else { continue }
                    if peer.samplesPerSecond > bestPeers[name]?.samplesPerSecond ?? -1 { bestPeers[name] = peer }
                    ratios.append("\(name) \(formatRatio(run.samplesPerSecond / max(peer.samplesPerSecond, 1e-9)))")
                }
            }
            roundRatios.append("\(formatRate(run.samplesPerSecond, "samples/s"))" + (ratios.isEmpty ? "" : " (" + ratios.joined(separator: ", ") + ")"))
            log("round \(round): Tessera \(roundRatios[roundRatios.count - 1])")
        }
        guard let ours = best else { return [] }
        let peers = ["PyTorch", "PyTorch tuned"].compactMap { name in bestPeers[name].map { (name, $0) } }
        log("sgemm alone on W2's GEMM shapes (every product of a step as the workload writes it)")
        var engine = EngineBench()
        engine.threads = threads
        let (gemmSeconds, w2Gflop) = engine.w2GemmSeconds()

        var lines = ["tessera bench train: W2 (M1 on \(shards), batch 64, Adam lr 1e-3, no dropout), \(threads) threads (OpenBLAS kernels: \(BLAS.coreName)); \(machineDescription())"]
        var rows: [[String]] = [["Tessera", formatRate(ours.samplesPerSecond, "samples/s"), "\(ours.peakRSS >> 20) MiB", "1.00x", ours.detail]]
        for (name, run) in peers {
            rows.append([name, formatRate(run.samplesPerSecond, "samples/s"), "\(run.peakRSS >> 20) MiB",
                         formatRatio(ours.samplesPerSecond / max(run.samplesPerSecond, 1e-9)), run.detail])
        }
        let ceiling = 64 / gemmSeconds
        rows.append(["sgemm alone, W2 shapes", formatRate(ceiling, "samples/s"), "", formatRatio(ours.samplesPerSecond / ceiling), "every GEMM of a W2 step as written, OpenBLAS, same threads"])
        lines += alignedTable(header: ["trainer", "steady throughput", "peak RSS", "Tessera vs this", "notes"], rows: rows)
        lines.append("best of \(rounds) rounds each; the rounds, Tessera and its ratios: " + roundRatios.joined(separator: "; "))
        if !ours.phases.isEmpty {
            lines.append("Tessera's steady step (its best round), ms: " + ours.phases.map { "\($0.0) \(fixed($0.1, 1))" }.joined(separator: ", "))
        }
        if let share = ours.sgemmShare {
            lines.append("Tessera's time in sgemm (its best round): \(fixed(share * 100, 1))% of the steady steps (the rest: im2col/col2im, element-wise passes, losses, Adam, loader)")
        }
        if let gflop = ours.gflopPerStep {
            lines.append("matrix products per step: Tessera \(fixed(gflop, 2)) GFLOP, W2 as written \(fixed(w2Gflop, 2)) GFLOP "
                         + "(Tessera computes text logits only where the loss reads them, the non-pad positions; PyTorch computes all 32)")
        }
        if let tuned = peers.first(where: { $0.0 == "PyTorch tuned" })?.1 {
            lines.append("goal >= 1.5x tuned PyTorch: \(ours.samplesPerSecond >= 1.5 * tuned.samplesPerSecond ? "met" : "not met") (\(formatRatio(ours.samplesPerSecond / tuned.samplesPerSecond)))")
        }
        let others = load.otherCores()
        if others > 0.3 { lines.append(String(format: "warning: other processes kept %.1f cores busy during this run; figures are disturbed", others)) }
        return lines
    }
}
