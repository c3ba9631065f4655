// The ingest job: discover, plan, decode on every core, write verified shards durably, journal each shard
// so that `--resume` after any interruption produces the bytes of an uninterrupted run, then write
// errors.jsonl and, last, manifest.json.
import Foundation
import TesseraCore
import TesseraImage
import TesseraShards

/// Progress of a run, reported after every sample.
public struct IngestProgress: Sendable {
    public var done: Int
    public var total: Int
    public var failed: Int
    public var elapsed: Double
}

/// What a finished run reports.
public struct IngestSummary: Sendable {
    public var samplesFound: Int
    public var samplesWritten: Int
    public var samplesFailed: Int
    public var errorLines: Int
    public var shards: Int
    public var bytes: Int
    public var seconds: Double
    public var splits: [(name: String, samples: Int)]
    public var output: String
    public var alreadyComplete: Bool
    /// Peak resident memory of the process at the end of the run.
    public var peakResidentBytes = TesseraCore.peakResidentBytes()

    public var json: JSONValue {
        .object(JSONObject([
            ("output", .string(output)), ("samples_found", .int(samplesFound)), ("samples_written", .int(samplesWritten)),
            ("samples_failed", .int(samplesFailed)), ("error_lines", .int(errorLines)), ("shards", .int(shards)), ("bytes", .int(bytes)),
            ("seconds", .double(seconds)), ("samples_per_second", .double(seconds > 0 ? Double(samplesFound) / seconds : 0)),
            ("splits", .object(JSONObject(splits.map { ($0.name, JSONValue.int($0.samples)) }))),
            ("errors_file", .string(FilePath.join(output, "errors.jsonl"))), ("already_complete", .bool(alreadyComplete)),
            ("peak_rss_bytes", .int(peakResidentBytes)),
        ]))
    }
}

public final class IngestRunner {
    public let config: IngestConfig
    public let output: String
    public var jobs = 2
    public var resume = false
    public var overwrite = false
    public var progress: (IngestProgress) -> Void = { _ in }
    public var log: (String) -> Void = { _ in }
    /// Tests: the run stops with an error once it has written this many shards, as if killed there.
    var stopAfterShards: Int?

    static let journalFolder = ".ingest"

    public init(config: IngestConfig, output: String) {
        self.config = config
        self.output = output
    }

    public func run() throws -> IngestSummary {
        let start = monotonicSeconds()
        try config.validate()
        let configJSON = try config.json
        log("finding samples")
        // A dataset (or an interrupted ingest) this command writes again is not walked as input when it lies
        // among the inputs; a folder of the user's files there is, and is then refused by name.
        let isDataset = FilePath.exists(FilePath.join(output, "manifest.json")) || FilePath.isDirectory(FilePath.join(output, IngestRunner.journalFolder))
        let ownOutput = isDataset ? [output] : []
        var discovery = try config.manifestFile.map {
            try SampleDiscovery.read(manifest: $0, allowOutside: config.allowOutsidePaths, labelFromFolder: config.labelFromFolder)
        } ?? SampleDiscovery.walk(config.inputs, labelFromFolder: config.labelFromFolder, excluding: ownOutput)
        let found = Set(discovery.samples.flatMap(\.modalities))
        let modalities = (config.modalities ?? Modality.allCases.filter { found.contains($0) }).sorted()
        guard !modalities.isEmpty else {
            throw TesseraError(stage: .config, code: "ingest.nothing", "no image, audio or text files found in the inputs")
        }
        try checkOutputHoldsNoInput(discovery.samples)
        let hasLabels = discovery.samples.contains { $0.label != nil }
        let plans = IngestPlanner.plan(discovery.samples, config: config)
        let digest = IngestPlanner.digest(config: configJSON, plans: plans, walkErrors: discovery.errors)
        let samplesFound = discovery.samples.count + Set(discovery.errors.map(\.key)).subtracting(discovery.samples.map(\.key)).count
        // The plans hold every sample now; a second list, and the walk's garbage, would grow memory with the corpus.
        discovery.samples = []
        returnFreeMemory()

        let lock = try FolderLock(folder: output)
        defer { withExtendedLifetime(lock) {} }
        if let done = try prepareOutput(digest: digest, configJSON: configJSON) {
            return IngestSummary(samplesFound: samplesFound, samplesWritten: done.sampleCount, samplesFailed: samplesFound - done.sampleCount,
                                 errorLines: 0, shards: done.splits.reduce(0) { $0 + $1.shards.count },
                                 bytes: done.splits.flatMap(\.shards).reduce(0) { $0 + $1.bytes }, seconds: monotonicSeconds() - start,
                                 splits: done.splits.map { ($0.name, $0.samples) }, output: output, alreadyComplete: true)
        }

        let decoder = try SampleDecoder(config: config, modalities: modalities, hasLabels: hasLabels)
        let schema = makeSchema(modalities: modalities, hasLabels: hasLabels, decoder: decoder, labelNames: discovery.labelNames)
        let window = try decodingWindow(schema: schema)
        var failedKeys = Set(discovery.errors.map(\.key))
        let total = plans.reduce(0) { $0 + $1.samples.count }
        var done = 0
        let errorBudget = config.maxErrors.map { $0 < 1 ? $0 * Double(samplesFound) : $0 }
        if let errorBudget, Double(failedKeys.count) > errorBudget {
            throw maxErrorsExceeded(failedKeys.count, discovery.errors)
        }
        var shardsWritten = 0
        var statistics = StatisticsAccumulator()
        statistics.reserve(total, audio: modalities.contains(.audio), text: modalities.contains(.text))
        var splitInfos: [SplitInfo] = []
        var decodeErrors: [IngestErrorRecord] = []
        for plan in plans {
            let resumeState = try loadJournals(split: plan.name, samples: plan.samples, mergingInto: &statistics)
            var shards = resumeState.shards
            var cursor = resumeState.cursor
            decodeErrors += resumeState.errors
            for e in resumeState.errors { failedKeys.insert(e.key) }
            done += cursor
            if cursor > 0 { log("\(plan.name): resuming after \(shards.count) shards (\(cursor) samples)") }
            var batch = ShardBatch(schema: schema, capacity: config.shardSize)
            var shardStatistics = StatisticsAccumulator()
            var shardErrors: [IngestErrorRecord] = []
            var shardStart = cursor
            let ordered = OrderedDecoder(inputs: plan.samples[cursor...], jobs: jobs, window: window) { decoder.decode($0) }
            func flush(end: Int) throws {
                let info = try writeShard(batch, split: plan.name, index: shards.count)
                try writeJournal(split: plan.name, index: shards.count, shard: info, cursorStart: shardStart, cursorEnd: end,
                                 errors: shardErrors, statistics: shardStatistics)
                shards.append(info)
                statistics.merge(shardStatistics)
                decodeErrors += shardErrors
                batch.reset()
                shardStatistics = StatisticsAccumulator()
                shardErrors = []
                shardStart = end
                shardsWritten += 1
                if let stop = stopAfterShards, shardsWritten >= stop {
                    throw TesseraError(stage: .write, code: "ingest.test-stop", "stopped after \(stop) shards (test)")
                }
            }
            try ordered.run { offset, sample in
                let index = cursor + offset
                if !sample.errors.isEmpty {
                    shardErrors += sample.errors
                    failedKeys.insert(sample.key)
                    if let errorBudget, Double(failedKeys.count) > errorBudget {
                        try? writeErrors(discovery.errors + decodeErrors + shardErrors)
                        throw maxErrorsExceeded(failedKeys.count, sample.errors)
                    }
                }
                if let tensors = sample.tensors {
                    // A sample kept without a failed modality still counts as written.
                    if !sample.errors.isEmpty { failedKeys.remove(sample.key) }
                    try batch.append(key: sample.key, tensors: tensors)
                    shardStatistics.add(sample)
                    if batch.isFull { try flush(end: index + 1) }
                }
                done += 1
                progress(IngestProgress(done: done, total: total, failed: failedKeys.count, elapsed: monotonicSeconds() - start))
            }
            cursor = plan.samples.count
            if batch.count > 0 {
                try flush(end: cursor)
            } else {
                statistics.merge(shardStatistics)
                decodeErrors += shardErrors
            }
            if !shards.isEmpty { splitInfos.append(SplitInfo(name: plan.name, shards: shards)) }
        }
        let allErrors = discovery.errors + decodeErrors
        try writeErrors(allErrors)
        let manifest = makeManifest(schema: schema, splits: splitInfos, statistics: statistics, errors: allErrors, discovery: discovery,
                                    configJSON: configJSON, modalities: modalities, samplesFound: samplesFound)
        try DurableFile.write(manifest.serialized(), to: FilePath.join(output, "manifest.json"))
        try removeJournals()
        let written = splitInfos.reduce(0) { $0 + $1.samples }
        return IngestSummary(samplesFound: samplesFound, samplesWritten: written, samplesFailed: samplesFound - written,
                             errorLines: allErrors.count, shards: splitInfos.reduce(0) { $0 + $1.shards.count },
                             bytes: splitInfos.flatMap(\.shards).reduce(0) { $0 + $1.bytes }, seconds: monotonicSeconds() - start,
                             splits: splitInfos.map { ($0.name, $0.samples) }, output: output, alreadyComplete: false)
    }

    private func maxErrorsExceeded(_ count: Int, _ latest: [IngestErrorRecord]) -> TesseraError {
        let example = latest.first.map { ": latest \($0.path.isEmpty ? $0.key : $0.path): \($0.message)" } ?? ""
        return TesseraError(path: output, stage: .decode, code: "ingest.max-errors",
                            "stopped: \(count) samples failed, over --max-errors\(example); see \(FilePath.join(output, "errors.jsonl"))")
    }

    // MARK: - output folder

    /// Makes sure the output folder may be written. Returns the finished manifest when `--resume` finds the
    /// job already complete.
    private func prepareOutput(digest: String, configJSON: JSONValue) throws -> DatasetManifest? {
        let statePath = FilePath.join(FilePath.join(output, IngestRunner.journalFolder), "state.json")
        let entries = FilePath.isDirectory(output) ? try FilePath.listDirectory(output) : []
        if !entries.isEmpty {
            if resume {
                if FilePath.exists(statePath) {
                    let state = try JSONValue.parse(try FilePath.readAll(statePath))
                    guard state["digest"]?.stringValue == digest else {
                        throw TesseraError(path: output, stage: .config, code: "ingest.resume-mismatch",
                                           "the inputs or options differ from the interrupted run's; use --overwrite to start again")
                    }
                    try removeTemporaryFiles()
                    return nil
                }
                if FilePath.exists(FilePath.join(output, "manifest.json")) {
                    let manifest = try DatasetManifest.load(folder: output)
                    guard manifest.config == configJSON else {
                        throw TesseraError(path: output, stage: .config, code: "ingest.resume-mismatch",
                                           "holds a finished dataset made with other options; use --overwrite to replace it")
                    }
                    return manifest
                }
                throw TesseraError(path: output, stage: .config, code: "ingest.not-resumable", "is not empty and holds no interrupted ingest to resume")
            }
            guard overwrite else {
                throw TesseraError(path: output, stage: .config, code: "ingest.output-not-empty",
                                   "is not empty: --resume continues an interrupted ingest, --overwrite replaces it")
            }
            for name in ["manifest.json", "errors.jsonl", IngestRunner.journalFolder] + IngestPlanner.splitNames {
                try removeTree(FilePath.join(output, name))
            }
        }
        try FilePath.createDirectories(FilePath.join(output, IngestRunner.journalFolder))
        let state = JSONValue.object(JSONObject([("digest", .string(digest)), ("tool", .string(Tessera.version))]))
        try DurableFile.write(state.serialized(), to: statePath)
        return nil
    }

    private func removeTree(_ path: String) throws {
        guard FilePath.exists(path) else { return }
        try FileManager.default.removeItem(atPath: path)
    }

    /// Temporary files of an interrupted write (`.NAME.tmp-PID-N`) are never part of the output.
    private func removeTemporaryFiles() throws {
        for folder in [output, FilePath.join(output, IngestRunner.journalFolder)] + IngestPlanner.splitNames.map({ FilePath.join(output, $0) })
        where FilePath.isDirectory(folder) {
            for name in try FilePath.listDirectory(folder) where name.hasPrefix(".") && name.contains(DurableFileWriter.temporaryMarker) {
                try FilePath.removeFile(FilePath.join(folder, name))
            }
        }
    }

    private func removeJournals() throws {
        try removeTree(FilePath.join(output, IngestRunner.journalFolder))
        try FilePath.syncDirectory(output)
    }

    // MARK: - shards and journals

    private func writeShard(_ batch: ShardBatch, split: String, index: Int) throws -> ShardInfo {
        try batch.write(folder: output, split: split, index: index)
    }

    private func journalPath(split: String, index: Int) -> String {
        let digits = String(index)
        return FilePath.join(FilePath.join(output, IngestRunner.journalFolder), "\(split)-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits + ".json")
    }

    private func writeJournal(split: String, index: Int, shard: ShardInfo, cursorStart: Int, cursorEnd: Int,
                              errors: [IngestErrorRecord], statistics: StatisticsAccumulator) throws {
        let entry = JSONObject([
            ("shard", .object(JSONObject([("file", .string(shard.file)), ("samples", .int(shard.samples)), ("bytes", .int(shard.bytes)),
                                          ("sha256", .string(shard.sha256))]))),
            ("cursor_start", .int(cursorStart)), ("cursor_end", .int(cursorEnd)),
            ("errors", .array(errors.map(\.json))), ("statistics", statistics.json),
        ])
        try DurableFile.write(JSONValue.object(entry).serialized(), to: journalPath(split: split, index: index))
    }

    /// The shards an interrupted run finished for `split`: each journal whose shard file is intact, in order.
    /// Anything after the first gap (a shard without journal, a journal without intact shard) is removed.
    /// Their statistics are merged into `statistics` one shard at a time, in the order an uninterrupted run
    /// merges them (a split's statistics summed first and then added would round differently).
    private func loadJournals(split: String, samples: [SampleSource], mergingInto statistics: inout StatisticsAccumulator) throws
        -> (shards: [ShardInfo], cursor: Int, errors: [IngestErrorRecord]) {
        var shards: [ShardInfo] = []
        var cursor = 0
        var errors: [IngestErrorRecord] = []
        guard resume else { return (shards, cursor, errors) }
        var index = 0
        while true {
            let path = journalPath(split: split, index: index)
            guard FilePath.exists(path), let json = try? JSONValue.parse(try FilePath.readAll(path)),
                  let file = json["shard"]?["file"]?.stringValue, let count = json["shard"]?["samples"]?.intValue,
                  let bytes = json["shard"]?["bytes"]?.intValue, let sha = json["shard"]?["sha256"]?.stringValue,
                  let start = json["cursor_start"]?.intValue, let end = json["cursor_end"]?.intValue, start == cursor, end <= samples.count,
                  let stats = json["statistics"].flatMap(StatisticsAccumulator.init(json:)),
                  SystemCall.fileSize(FilePath.join(output, file)) == bytes,
                  (try? SHA256Digest.hex(ofFile: FilePath.join(output, file))) == sha
            else { break }
            shards.append(ShardInfo(file: file, samples: count, bytes: bytes, sha256: sha))
            statistics.merge(stats)
            errors += (json["errors"]?.arrayValue ?? []).compactMap(IngestErrorRecord.init(json:))
            cursor = end
            index += 1
        }
        // Everything from `index` on is rewritten.
        var stale = index
        while FilePath.exists(journalPath(split: split, index: stale)) || FilePath.exists(FilePath.join(output, ShardNaming.file(split: split, index: stale))) {
            try FilePath.removeFile(journalPath(split: split, index: stale))
            try FilePath.removeFile(FilePath.join(output, ShardNaming.file(split: split, index: stale)))
            stale += 1
        }
        return (shards, cursor, errors)
    }

    private func writeErrors(_ errors: [IngestErrorRecord]) throws {
        let text = errors.map { $0.json.serialized() + "\n" }.joined()
        try DurableFile.write(text, to: FilePath.join(output, "errors.jsonl"))
    }

    // MARK: - schema and manifest

    /// The output folder must not be, or hold, a folder of inputs: `--overwrite` removes its split folders
    /// (a `train/` of the user's own files), and shards written among the inputs mix with them.
    private func checkOutputHoldsNoInput(_ samples: [SampleSource]) throws {
        guard let out = FilePath.realPath(output) else { return }  // not there yet: it holds nothing
        let inside = out == "/" ? "/" : out + "/"
        var seen = Set<String>()
        for sample in samples {
            for modality in sample.modalities {
                guard let path = sample.path(modality) else { continue }
                let folder = FilePath.split(path).folder
                guard seen.insert(folder).inserted, let real = FilePath.realPath(folder) else { continue }
                if real == out || real.hasPrefix(inside) {
                    throw TesseraError(path: output, stage: .config, code: "ingest.output-holds-inputs",
                                       "the output folder holds input files (\(path)): --overwrite would delete them and the shards "
                                       + "would sit among them; choose an --out outside the inputs")
                }
            }
        }
    }

    /// How many decoded samples may wait for the writer: 64 or 32 per worker, which absorbs the fsync of a
    /// shard without idling the workers, fewer (at least two per worker) when samples are so large that they
    /// and the shard batch would not fit in half this machine's memory. Refuses, before anything is allocated,
    /// tensors a dataset cannot hold (`DatasetManifest.maximumTensorBytes`) or a shard batch that does not fit.
    private func decodingWindow(schema: [TensorSchema]) throws -> Int {
        let sampleBytes = max(schema.reduce(0) { $0 + $1.sampleBytes }, 1)
        let shapes = schema.filter { $0.sampleBytes >= 1 << 20 }.map { "\($0.name) \($0.shape)" }.joined(separator: ", ")
        if let large = schema.first(where: { $0.sampleBytes > DatasetManifest.maximumTensorBytes }) {
            throw TesseraError(stage: .config, code: "ingest.too-large",
                               "one sample's \(large.name) \(large.shape) would take \(byteCount(Double(large.sampleBytes))); a dataset holds at most 1 GiB "
                               + "per tensor and sample: choose smaller sizes")
        }
        let limit = MemoryLimit.current() ?? MemoryLimit(bytes: 1 << 34, source: "assumed: the system does not say")
        let budget = limit.bytes / 2
        let fitting = budget / sampleBytes - config.shardSize
        let window = min(max(64, jobs * 32), fitting)
        guard window >= 2 * jobs else {
            let held = Double(config.shardSize + 2 * jobs) * Double(sampleBytes)
            throw TesseraError(stage: .config, code: "ingest.too-large",
                               "a shard of \(config.shardSize) samples of \(byteCount(Double(sampleBytes))) each (\(shapes)), with \(2 * jobs) more being decoded, "
                               + "would hold \(byteCount(held)) in memory, over half of the \(byteCount(Double(limit.bytes))) this process may use (\(limit.source)): lower --shard-size or the sizes")
        }
        return window
    }

    private func makeSchema(modalities: [Modality], hasLabels: Bool, decoder: SampleDecoder, labelNames: [String]) -> [TensorSchema] {
        var schema: [TensorSchema] = []
        for modality in modalities {
            switch modality {
            case .image:
                let image = config.image
                let shape = image.outputShape(imageWidth: image.width, imageHeight: image.height)
                var extra = JSONObject([("layout", .string(image.layout.rawValue)), ("channels", .int(image.channels))])
                if image.dtype == .float32 {
                    // What was applied, so a reader can get back to pixel values in [0, 1]: v * std[c] + mean[c].
                    extra["normalized"] = .bool(true)
                    extra["mean"] = .array((0..<image.channels).map { .double(image.channelMean($0)) })
                    extra["std"] = .array((0..<image.channels).map { .double(image.channelStd($0)) })
                }
                schema.append(TensorSchema(name: "image", dtype: image.dtype == .uint8 ? .uint8 : .float32, shape: shape, extra: extra))
            case .audio:
                let audio = config.audio
                if audio.producesWaveform {
                    schema.append(TensorSchema(name: "audio", dtype: .float32, shape: [1, audio.samples],
                                               extra: JSONObject([("rate", .int(audio.rate))])))
                }
                if audio.producesMel {
                    schema.append(TensorSchema(name: "audio_mel", dtype: .float32, shape: [audio.melBins, audio.frameCount(samples: audio.samples)],
                                               extra: JSONObject([("rate", .int(audio.rate)), ("scale", .string(audio.scale.rawValue))])))
                }
            case .text:
                var extra = JSONObject([("pad_id", .int(decoder.textEncoder?.description.padID ?? 0))])
                if let description = decoder.textEncoder?.description, let json = try? JSONValue.parse(try JSONCoding.encode(description)) {
                    extra["tokenizer"] = json
                }
                schema.append(TensorSchema(name: "text_ids", dtype: .int32, shape: [config.text.length], extra: extra))
                schema.append(TensorSchema(name: "text_len", dtype: .int32, shape: []))
            }
        }
        for modality in modalities { schema.append(TensorSchema(name: "mask_" + modality.rawValue, dtype: .uint8, shape: [])) }
        if hasLabels {
            var extra = JSONObject([("missing", .int(-1))])
            if !labelNames.isEmpty { extra["names"] = .array(labelNames.map { .string($0) }) }
            schema.append(TensorSchema(name: "label", dtype: .int32, shape: [], extra: extra))
        }
        return schema
    }

    private func makeManifest(schema: [TensorSchema], splits: [SplitInfo], statistics: StatisticsAccumulator, errors: [IngestErrorRecord],
                              discovery: Discovery, configJSON: JSONValue, modalities: [Modality], samplesFound: Int) -> DatasetManifest {
        var finalSchema = schema
        for i in finalSchema.indices {
            switch finalSchema[i].name {
            case "image" where config.image.dtype == .uint8:
                let axis = config.image.layout == .chw ? 0 : 2
                if config.imageStatisticsNormalization, let (mean, std) = statistics.imageMeanStd {
                    finalSchema[i].normalize = Normalization(scale: 1.0 / 255, mean: mean, std: std.map { max($0, 1e-6) }, axis: axis)
                } else {
                    let c = config.image.channels
                    finalSchema[i].normalize = Normalization(scale: 1.0 / 255, mean: (0..<c).map { config.image.channelMean($0) },
                                                             std: (0..<c).map { config.image.channelStd($0) }, axis: axis)
                }
            case "audio_mel":
                if let (mean, std) = statistics.melMeanStd { finalSchema[i].normalize = Normalization(mean: [mean], std: [max(std, 1e-6)]) }
            default:
                break
            }
        }
        var byStage: [String: Int] = [:], byModality: [String: Int] = [:], byCode: [String: Int] = [:]
        for e in errors {
            byStage[e.stage, default: 0] += 1
            byModality[e.modality.isEmpty ? "(sample)" : e.modality, default: 0] += 1
            byCode[e.code, default: 0] += 1
        }
        func counts(_ d: [String: Int]) -> JSONValue { .object(JSONObject(d.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.int($0.value)) })) }
        let written = splits.reduce(0) { $0 + $1.samples }
        let errorJSON = JSONValue.object(JSONObject([
            ("lines", .int(errors.count)), ("samples_failed", .int(samplesFound - written)), ("file", .string("errors.jsonl")),
            ("by_stage", counts(byStage)), ("by_modality", counts(byModality)), ("by_code", counts(byCode)),
        ]))
        let inputs = JSONValue.object(JSONObject([
            ("samples_found", .int(samplesFound)), ("samples_written", .int(written)), ("files_seen", .int(discovery.filesSeen)),
            ("unknown_extensions", counts(discovery.unknownExtensions)),
        ]))
        return DatasetManifest(tool: "tessera \(Tessera.version)", config: configJSON, modalities: modalities.map(\.rawValue), schema: finalSchema,
                               splits: splits, statistics: statistics.manifestJSON(), errors: errorJSON, inputs: inputs)
    }
}
