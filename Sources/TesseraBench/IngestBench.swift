// `tessera bench ingest DIR`: the whole ingest job (folder in, fsync'd shards and manifest out) beside the
// Python peer pipeline and beside the ceiling set by the C libraries' own calls on the same files.
import Foundation
import TesseraAudio
import TesseraCore
import TesseraImage

public struct IngestBench {
    public var folder: String
    public var tokenizer: String
    /// A larger corpus (e.g. W1 x 10) for the peak-memory comparison.
    public var largeFolder: String?
    public var runPeers = true
    /// Rounds of (ceiling, tessera) measurements; each figure is the best of its rounds.
    public var repeats = 5

    public init(folder: String, tokenizer: String) {
        self.folder = folder
        self.tokenizer = tokenizer
    }

    struct Run { var seconds: Double; var samples: Int; var rss: Int }

    /// Runs `tessera ingest` in a child process (so its peak memory is its own) and reads its JSON summary.
    func tesseraIngest(_ input: String, jobs: Int) throws -> Run {
        let out = NSTemporaryDirectory() + "tessera-bench-ingest-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        process.arguments = ["ingest", input, "--out", out, "--tokenizer", tokenizer, "--jobs", "\(jobs)", "--overwrite", "--json"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let json = try? JSONValue.parse(Array(data)) else {
            throw TesseraError(path: input, stage: .config, code: "bench.ingest", "tessera ingest failed (status \(process.terminationStatus))")
        }
        return Run(seconds: json["seconds"]?.doubleValue ?? 0, samples: json["samples_found"]?.intValue ?? 0, rss: json["peak_rss_bytes"]?.intValue ?? 0)
    }

    /// The C libraries' own calls for every W1 file, on `threads` threads: libjpeg's full-size decode, a
    /// full PNG decode (the fastest path Tessera has: libdeflate and its own unfiltering, else libpng),
    /// libsndfile decode, soxr HQ resampling of the whole (mono) clip to 16 kHz, the FFTW transforms of a
    /// log-mel. Returns samples per second (one pass after a warm-up one, the files read into memory first).
    func ceiling(threads: Int) throws -> (rate: Double, samples: Int) {
        let names = try FilePath.listDirectory(folder).sorted().filter { ["jpg", "png", "wav"].contains(FilePath.pathExtension($0)) }
        let samples = Set(names.map { String($0.dropLast(FilePath.pathExtension($0).count + 1)) }).count
        let files = try names.map { (FilePath.pathExtension($0), try FilePath.readAll(FilePath.join(folder, $0))) }
        let result = measureThroughput(count: files.count, threads: threads, minSeconds: 0, maxPasses: 1) { index in
            let (ext, bytes) = files[index]
            bytes.withUnsafeBytes { raw in
                switch ext {
                case "jpg": _ = JPEGBaseline.plainDecode(raw)
                case "png": _ = JPEGBaseline.plainPNGDecode(raw)
                default:
                    if let (mono, rate) = AudioBaselines.decodeMono(raw) {
                        _ = AudioBaselines.resample(mono, from: rate, to: 16_000)
                        AudioBaselines.transforms(count: 65, size: 512)
                    }
                }
            }
        }
        return (Double(samples) / result.seconds, samples)
    }

    public func run(log: (String) -> Void) throws -> [String] {
        let load = BackgroundLoad()
        // Rounds alternate the ceiling and tessera, best of each kept, so a drift in the shared machine's
        // speed during the run reaches both sides of each ratio.
        var ceilingRate: [Int: Double] = [:]
        var ceilingSamples = 0
        var tessera: [Int: Run] = [:]
        for round in 1...repeats {
            for jobs in [1, 2] {
                log("round \(round) of \(repeats): the C libraries' own calls (ceiling) on \(jobs) thread(s), then tessera ingest --jobs \(jobs)")
                let measured = try ceiling(threads: jobs)
                ceilingSamples = measured.samples
                ceilingRate[jobs] = max(ceilingRate[jobs] ?? 0, measured.rate)
                let run = try tesseraIngest(folder, jobs: jobs)
                let rate = Double(run.samples) / run.seconds
                log("  ceiling \(formatRate(measured.rate, "samples/s")), tessera \(formatRate(rate, "samples/s")) (\(formatRatio(rate / measured.rate)) within the round)")
                if let best = tessera[jobs], best.seconds <= run.seconds { continue }
                tessera[jobs] = run
            }
        }
        let ceiling1 = ceilingRate[1] ?? 0, ceiling2 = ceilingRate[2] ?? 0
        var peer: (rate: Double, rss: Int)?
        if runPeers {
            guard let python = PythonPeer.locate() else {
                throw TesseraError(stage: .config, code: "bench.peer", "tools/bench not found: run from the repository folder")
            }
            log("measuring the Python peer (2 processes)")
            let out = NSTemporaryDirectory() + "tessera-bench-peer-\(getpid())"
            defer { try? FileManager.default.removeItem(atPath: out) }
            let result = try python.run("python_ingest.py", [folder, "--tokenizer", tokenizer, "--out", out, "--processes", "2"])
            peer = (result["samples_per_second"]?.doubleValue ?? 0, result["peak_rss_bytes"]?.intValue ?? 0)
        }
        var large: Run?
        if let largeFolder {
            log("measuring tessera ingest --jobs 2 on \(largeFolder) (memory)")
            large = try tesseraIngest(largeFolder, jobs: 2)
        }
        let background = load.otherCores()
        func rate(_ run: Run?) -> Double { run.map { Double($0.samples) / $0.seconds } ?? 0 }
        let mb = { (bytes: Int) in "\(fixed(Double(bytes) / 1_048_576, 1)) MiB" }
        var lines = ["tessera bench ingest \(folder): \(ceilingSamples) samples, folder in, fsync'd shards and manifest out"]
        lines.append("machine: \(machineDescription()); other processes used \(fixed(background, 2)) cores during the run\(background > 0.1 ? " (CONTAMINATED)" : "")")
        var rows: [[String]] = []
        for jobs in [1, 2] {
            let r = rate(tessera[jobs])
            var cells = ["tessera ingest --jobs \(jobs)", formatRate(r, "samples/s"), mb(tessera[jobs]?.rss ?? 0)]
            cells.append("\(formatRatio(r / (jobs == 1 ? ceiling1 : ceiling2))) ceiling")
            if jobs == 2, let peer { cells.append("\(formatRatio(r / peer.rate)) Python") }
            rows.append(cells)
        }
        rows.append(["ceiling: C libraries' own calls, 1 thread", formatRate(ceiling1, "samples/s"), "", "", ""])
        rows.append(["ceiling: C libraries' own calls, 2 threads", formatRate(ceiling2, "samples/s"), "", "", ""])
        if let peer { rows.append(["Python peer, 2 processes [peer]", formatRate(peer.rate, "samples/s"), mb(peer.rss) + " (largest process)", "", ""]) }
        lines += alignedTable(header: ["measurement", "throughput", "peak RSS", "vs ceiling", "vs peer"], rows: rows)
        if let large, let base = tessera[2] {
            lines.append("peak RSS: \(mb(base.rss)) for \(base.samples) samples, \(mb(large.rss)) for \(large.samples) samples (\(largeFolder ?? "")): "
                         + "\(formatRatio(Double(large.rss) / Double(max(base.rss, 1)))); \(formatRate(rate(large), "samples/s")) there")
        }
        return lines
    }
}
