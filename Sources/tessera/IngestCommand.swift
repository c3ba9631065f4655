// `tessera ingest`: raw media folders (or a CSV/JSONL list) into verified, pre-batched safetensors shards.
import ArgumentParser
import Foundation
import TesseraCore
import TesseraIngest

extension OnError: ExpressibleByArgument {}

struct IngestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Turn media folders into shards: OUT/<split>/shard-NNNNNN.safetensors, OUT/manifest.json, OUT/errors.jsonl."
    )

    @Argument(help: "Input folders, walked recursively; files sharing a path minus extension form one sample.")
    var inputs: [String] = []

    @Option(name: .long, help: "Output folder.")
    var out: String

    @Option(name: .long, help: "A CSV or JSONL list of samples (key, image, audio, text, split, label) instead of folders.")
    var manifest: String?

    @Flag(name: .long, help: "Allow manifest paths outside the manifest's folder.")
    var allowOutsidePaths = false

    @Flag(name: .long, help: "Label each sample by its parent folder's name (ids by sorted name), not by its .cls file.")
    var labelFromFolder = false

    @Option(name: .long, help: "Modalities to keep, e.g. image,text (default: every one found).")
    var modalities: String?

    @Option(name: .long, help: "Modalities a sample must have, e.g. image (others become zeros with mask 0).")
    var require: String?

    @Option(name: .long, help: "Fraction of samples in the val split, by a stable hash of the key (0).")
    var valFraction: Double = 0

    @Option(name: .long, help: "Fraction of samples in the test split (0).")
    var testFraction: Double = 0

    @Option(name: .long, help: "Seed of the order inside each split and of random crops (0).")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Samples per shard (256).")
    var shardSize: Int = 256

    @Option(name: .long, help: "Decoding threads (default: the core count). The output is the same for any value.")
    var jobs: Int?

    @Option(name: .long, help: "skip (leave failed samples out; default) or drop-modality (keep them without the failed file).")
    var onError: OnError = .skip

    @Option(name: .long, help: "Stop when more samples than this fail: a count, or a fraction below 1 (e.g. 0.05).")
    var maxErrors: Double?

    @Flag(name: .long, help: "Continue an interrupted ingest into OUT (the result equals an uninterrupted run).")
    var resume = false

    @Flag(name: .long, help: "Replace what a previous ingest wrote to OUT.")
    var overwrite = false

    @Flag(name: .long, help: "No progress output.")
    var quiet = false

    @Flag(name: .long, help: "Print the final summary as JSON.")
    var json = false

    @OptionGroup(title: "Image options")
    var image: ImageOptions

    @OptionGroup(title: "Audio options")
    var audio: AudioOptions

    @OptionGroup(title: "Text options")
    var text: TextOptions

    func run() throws {
        try reportingErrors {
            var config = IngestConfig()
            config.inputs = inputs
            config.manifestFile = manifest
            config.allowOutsidePaths = allowOutsidePaths
            config.labelFromFolder = labelFromFolder
            config.modalities = try modalities.map(parseModalities)
            config.require = try require.map(parseModalities) ?? []
            config.valFraction = valFraction
            config.testFraction = testFraction
            config.seed = seed
            config.shardSize = shardSize
            config.onError = onError
            config.maxErrors = maxErrors
            config.image = try image.config()
            config.imageStatisticsNormalization = image.mean == nil && image.std == nil
            config.audio = try audio.config()
            config.text = try text.config()
            if resume && overwrite {
                throw TesseraError(stage: .config, code: "config.ingest", "--resume and --overwrite exclude each other")
            }
            if let jobs, !(1...256).contains(jobs) {
                throw TesseraError(stage: .config, code: "config.ingest", "--jobs must be 1...256")
            }
            let runner = IngestRunner(config: config, output: out)
            runner.jobs = jobs ?? ProcessInfo.processInfo.activeProcessorCount
            runner.resume = resume
            runner.overwrite = overwrite
            let reporter = ProgressReporter(quiet: quiet || json)
            runner.progress = { reporter.update($0) }
            runner.log = { message in if !(quiet || json) { Console.err("ingest: \(message)") } }
            let summary = try runner.run()
            reporter.finish()
            if json {
                Console.out(summary.json.prettySerialized())
            } else if !quiet {
                if summary.alreadyComplete {
                    Console.out("\(out): already complete (\(summary.samplesWritten) samples); nothing to do")
                } else {
                    let splits = summary.splits.map { "\($0.name) \($0.samples)" }.joined(separator: ", ")
                    Console.out("\(out): \(summary.samplesWritten) of \(summary.samplesFound) samples in \(summary.shards) shards (\(splits)), "
                                + "\(groupedDigits(summary.bytes)) bytes, \(fixed(summary.seconds, 1)) s = \(fixed(Double(summary.samplesFound) / max(summary.seconds, 1e-9), 0)) samples/s")
                    if summary.samplesFailed > 0 || summary.errorLines > 0 {
                        Console.out("\(summary.samplesFailed) samples failed (\(summary.errorLines) error lines): see \(FilePath.join(out, "errors.jsonl"))")
                    }
                }
            }
            // A dataset of nothing is written (its errors.jsonl says why), but a script must not go on as if it had data.
            if summary.samplesWritten == 0 && summary.samplesFound > 0 {
                throw TesseraError(path: out, stage: .decode, code: "ingest.no-samples",
                                   "none of the \(summary.samplesFound) samples could be ingested; see \(FilePath.join(out, "errors.jsonl"))")
            }
        }
    }
}

func parseModalities(_ text: String) throws -> [Modality] {
    let names = text.split(separator: ",").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
    guard !names.isEmpty else { throw TesseraError(stage: .config, code: "config.ingest", "name at least one modality: image, audio, text") }
    return try names.map { name in
        guard let modality = Modality(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
            throw TesseraError(stage: .config, code: "config.ingest", "unknown modality \"\(name)\": use image, audio, text")
        }
        return modality
    }
}

/// A progress bar on a terminal, a log line every few seconds otherwise.
final class ProgressReporter: @unchecked Sendable {
    private let quiet: Bool
    private let terminal = Console.stderrIsTerminal
    private var last = 0.0
    private var drew = false

    init(quiet: Bool) { self.quiet = quiet }

    func update(_ p: IngestProgress) {
        guard !quiet else { return }
        let interval = terminal ? 0.1 : 5.0
        guard p.elapsed - last >= interval || p.done == p.total else { return }
        last = p.elapsed
        let rate = p.elapsed > 0 ? Double(p.done) / p.elapsed : 0
        let eta = rate > 0 ? Double(p.total - p.done) / rate : 0
        let fraction = p.total > 0 ? Double(p.done) / Double(p.total) : 1
        let stats = "\(p.done)/\(p.total) samples, \(fixed(rate, 0))/s, \(p.failed) failed, ETA \(fixed(eta, 0)) s"
        if terminal {
            let width = 30
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            FileHandle.standardError.write(Data("\r[\(bar)] \(stats)   ".utf8))
            drew = true
        } else {
            Console.err("ingest: \(stats)")
        }
    }

    func finish() {
        if drew { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
