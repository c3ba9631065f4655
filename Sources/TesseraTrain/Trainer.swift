// `tessera train`: the training loop. Batches stream from the shard loader; each step is forward, losses,
// backward and one optimiser update; metrics go to RUN/metrics.jsonl, checkpoints to RUN/checkpoint.safetensors.
// A run stopped at any step and resumed ends with the same weights as one that never stopped.
import Foundation
import Synchronization
import TesseraBLAS
import TesseraCore
import TesseraEngine
import TesseraShards

/// How the learning rate moves over the run.
public enum LearningRateSchedule: String, Sendable {
    case constant, cosine
}

/// Everything that decides a run.
public struct TrainOptions: Sendable {
    public var dataset: String
    public var output: String
    public var model: ModelSpec
    /// Steps to train; when nil, `epochs` decides.
    public var steps: Int?
    public var epochs: Int?
    public var batchSize = 64
    public var seed: UInt64 = 0
    public var threads = 2
    /// Probability per sample of hiding a random non-empty subset of its present modalities from the encoders.
    public var modalityDropout = 0.0
    /// Translates each training image by up to this many pixels along each axis (black fill); 0: off.
    public var augmentShift = 0
    public var shuffle: ShuffleMode = .buffer(ShuffleMode.defaultBuffer)
    public var optimizer = OptimizerConfig()
    public var schedule = LearningRateSchedule.constant
    public var warmupSteps = 0
    /// Start from these weights (a safetensors file with the model's parameter names).
    public var initWeights: String?
    public var checkpointEvery = 1000
    /// Evaluate on the val split every this many steps (0: once per epoch and at the end; nil: never).
    public var evalEvery: Int? = 0
    public var evalBatches = 50
    public var verifyChecksums = true
    /// Where the model came from, named by errors about it (the user's model file, or "preset NAME"); nil:
    /// the run's own model.json. Not part of what must match on resume.
    public var modelSource: String?

    public init(dataset: String, output: String, model: ModelSpec) {
        self.dataset = dataset
        self.output = output
        self.model = model
    }

    /// The options of a run, as JSON (saved with checkpoints; a resume must match the ones that decide the
    /// weights, `weightDeciding`).
    var json: JSONValue {
        .object(JSONObject([
            ("batch_size", .int(batchSize)), ("seed", .string(String(seed))), ("threads", .int(threads)),
            ("modality_dropout", .double(modalityDropout)), ("shuffle", .string(shuffle.description)),
            ("optimizer", .string(optimizer.kind.rawValue)), ("lr", .double(optimizer.learningRate)),
            ("beta1", .double(optimizer.beta1)), ("beta2", .double(optimizer.beta2)), ("eps", .double(optimizer.epsilon)),
            ("weight_decay", .double(optimizer.weightDecay)), ("momentum", .double(optimizer.momentum)),
            ("clip_norm", optimizer.clipNorm.map { .double($0) } ?? .null),
            ("schedule", .string(schedule.rawValue)), ("warmup_steps", .int(warmupSteps)),
            ("init", initWeights.map { .string($0) } ?? .null),
        ] + (augmentShift > 0 ? [("augment_shift", JSONValue.int(augmentShift))] : [])))
    }
}

extension TrainOptions {
    /// `json` without the thread count, which does not change the weights (the engine's results are the same
    /// bytes on any number of threads): a run may resume on another machine with more or fewer cores.
    static func weightDeciding(_ options: JSONValue) -> JSONValue {
        guard var object = options.objectValue else { return options }
        object["threads"] = nil
        return .object(object)
    }
}

/// How a run ended.
public enum TrainOutcome: Sendable, Equatable {
    case finished(step: Int)
    /// Stopped by SIGINT or SIGTERM after saving a checkpoint.
    case interrupted(step: Int, signal: Int32)
}

/// SIGINT/SIGTERM: the first asks the loop to save and stop; a second ends the process at once, unless it
/// comes within `duplicateWindowNanos` (half a second) of the first. Those are one request delivered twice: `timeout`, for one,
/// signals the process and then its process group, and the run used to die at the second without saving
/// (2 of 6 tries here), keeping an older checkpoint.
public enum Interruption {
    static let signalNumber = Atomic<Int32>(0)
    /// CLOCK_MONOTONIC nanoseconds of the first signal (0: none yet).
    static let firstSignalNanos = Atomic<Int64>(0)
    static let duplicateWindowNanos: Int64 = 500_000_000

    public static func install() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig) { received in
                // Only async-signal-safe calls here: clock_gettime, atomics, _exit.
                var now = timespec()
                clock_gettime(CLOCK_MONOTONIC, &now)
                let nanos = max(1, Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec))
                if Interruption.firstSignalNanos.compareExchange(expected: 0, desired: nanos, ordering: .relaxed).exchanged {
                    Interruption.signalNumber.store(received, ordering: .relaxed)
                } else if nanos - Interruption.firstSignalNanos.load(ordering: .relaxed) > Interruption.duplicateWindowNanos {
                    _exit(128 + received)
                }
            }
        }
        // A parent may have blocked them (the mask is inherited across exec): unblock, or they would wait
        // pending until the run ends.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    public static var requested: Int32 { signalNumber.load(ordering: .relaxed) }
}

public final class Trainer {
    public let options: TrainOptions
    public let model: JointModel
    let optimizer: Optimizer<Float>
    let loader: ShardLoader
    let manifest: DatasetManifest
    /// The train split's fingerprint (`Checkpoint.trainData`), recorded in every checkpoint.
    let trainData: String?
    public private(set) var step = 0
    var position = LoaderPosition()
    /// Wall time of the steps after the first `warmupSteps` of this process (steady-state throughput).
    public private(set) var steadySeconds = 0.0
    public private(set) var steadySteps = 0
    /// Seconds inside sgemm during the steady steps (when `BLAS.profiling` is on).
    public private(set) var steadySgemmSeconds = 0.0
    private var sgemmAtSteadyStart = 0.0
    public static let warmupSteps = 5
    /// More steps than any run could take, small enough that step and sample counts never overflow.
    public static let maximumSteps = 1 << 40
    /// Wall seconds per phase over the steady steps (load, prepare, forward, losses, backward, update).
    public private(set) var phaseSeconds: [(name: String, seconds: Double)] = []
    let totalSteps: Int
    let log: (String) -> Void
    private var phaseTotals = [Double](repeating: 0, count: PhaseClock.names.count)

    public static let checkpointFile = "checkpoint.safetensors"
    public static let weightsFile = "weights.safetensors"
    public static let metricsFile = "metrics.jsonl"
    public static let modelFile = "model.json"

    /// Sets up a run: the model (from `--init` weights or the seed), the loader, the optimiser; with `resume`,
    /// the state of `RUN/checkpoint.safetensors`.
    public init(options: TrainOptions, resume: Bool, log: @escaping (String) -> Void) throws {
        self.options = options
        self.log = log
        EngineThreads.configure(options.threads)
        manifest = try DatasetManifest.load(folder: options.dataset)
        trainData = Checkpoint.trainData(manifest)
        // A resumed run's checkpoint is read first: a dataset of other shapes is named as such, before the
        // model built for it fails to match.
        let checkpointPath = FilePath.join(options.output, Trainer.checkpointFile)
        var resumed: Checkpoint.Loaded?
        if resume {
            guard FilePath.exists(checkpointPath) else {
                throw TesseraError(path: checkpointPath, stage: .open, code: "train.no-checkpoint", "nothing to resume: no checkpoint in the run folder")
            }
            let loaded = try Checkpoint.load(path: checkpointPath)
            try loaded.checkInputs(manifest, dataset: options.dataset)
            resumed = loaded
        }
        var config = LoaderConfig()
        config.batchSize = options.batchSize
        config.seed = options.seed
        config.shuffle = options.shuffle
        config.verifyChecksums = options.verifyChecksums
        config.dropLast = true
        loader = try ShardLoader(folder: options.dataset, config: config)
        model = try JointModel(spec: options.model, manifest: manifest, maxBatch: options.batchSize,
                               source: options.modelSource ?? FilePath.join(options.output, Trainer.modelFile))
        optimizer = Optimizer<Float>(options.optimizer, parameters: model.params.count)
        if let steps = options.steps {
            totalSteps = steps
        } else {
            let (planned, overflow) = (options.epochs ?? 1).multipliedReportingOverflow(by: loader.batchesPerEpoch)
            totalSteps = overflow ? .max : planned
        }
        guard (0...Trainer.maximumSteps).contains(totalSteps) else {
            throw TesseraError(stage: .config, code: "train.steps", "a run has 0 to \(Trainer.maximumSteps) steps (2^40); this one would have \(totalSteps)")
        }

        if let loaded = resumed {
            guard let state = loaded.state else {
                throw TesseraError(path: checkpointPath, stage: .read, code: "train.bad-checkpoint", "not a Tessera training checkpoint")
            }
            if let saved = loaded.model, saved != options.model {
                throw TesseraError(path: checkpointPath, stage: .config, code: "train.resume-mismatch",
                                   "the checkpoint was trained with another model (\(saved.name)); resume with the same --preset/--model")
            }
            if let saved = loaded.trainData, saved != trainData {
                throw TesseraError(path: checkpointPath, stage: .config, code: "train.resume-mismatch",
                                   "the checkpoint was trained on another train split (its shards or normalisation differ from \(options.dataset)'s), so resuming would not continue "
                                   + "the same run; --overwrite starts again, and a run in another folder can start from its weights "
                                   + "(--init \(checkpointPath))")
            }
            if let saved = loaded.train, TrainOptions.weightDeciding(saved) != TrainOptions.weightDeciding(options.json) {
                throw TesseraError(path: checkpointPath, stage: .config, code: "train.resume-mismatch",
                                   "the checkpoint was trained with other options (\(saved.serialized())); resume with the same options")
            }
            try Checkpoint.restoreWeights(loaded, into: model)
            try Checkpoint.restoreOptimizer(loaded, into: optimizer, model: model)
            step = state.step
            position = state.position
            try truncateMetrics(after: step)
            log("resuming at step \(step) (\(position))")
        } else {
            if let initWeights = options.initWeights {
                let loaded = try Checkpoint.load(path: initWeights)
                try Checkpoint.restoreWeights(loaded, into: model)
            } else {
                model.initialize(seed: options.seed)
            }
            try FilePath.createDirectories(options.output)
            try DurableFile.write(options.model.json.prettySerialized() + "\n", to: FilePath.join(options.output, Trainer.modelFile))
            try DurableFile.write("", to: FilePath.join(options.output, Trainer.metricsFile))
        }
    }

    /// The learning rate at `step` (0-based).
    func learningRate(at step: Int) -> Double {
        let base = options.optimizer.learningRate
        if step < options.warmupSteps { return base * Double(step + 1) / Double(options.warmupSteps) }
        switch options.schedule {
        case .constant:
            return base
        case .cosine:
            let span = max(totalSteps - options.warmupSteps, 1)
            let progress = min(1, Double(step - options.warmupSteps) / Double(span))
            return base * 0.5 * (1 + cos(Double.pi * progress))
        }
    }

    /// The modalities to hide from the encoders for a sample (modality dropout), a pure function of
    /// (seed, step, sample) so that a resumed run draws the same.
    func dropout(step: Int) -> ((Int, [String]) -> Set<String>)? {
        guard options.modalityDropout > 0 else { return nil }
        var rng = SeededRandom(seed: options.seed ^ 0x6D6F_6461_6C69_7479, stream: UInt64(step))
        let draws: [(Double, UInt64)] = (0..<options.batchSize).map { _ in (rng.nextUnit(), rng.next()) }
        let p = options.modalityDropout
        return { sample, present in
            guard present.count >= 2, sample < draws.count, draws[sample].0 < p else { return [] }
            // A uniform non-empty proper subset of the present modalities stays visible.
            let subsets = UInt64((1 << present.count) - 2)
            let keep = 1 + draws[sample].1 % subsets
            var hidden = Set<String>()
            for (i, name) in present.enumerated() where keep & (1 << UInt64(i)) == 0 { hidden.insert(name) }
            return hidden
        }
    }

    /// Image augmentation: each training image translated by a uniform whole-pixel (dx, dy) in
    /// [-shift, shift]^2, vacated pixels black (a zero pixel in the loader's normalisation), the same shift
    /// on every channel. A pure function of (seed, step, sample), like modality dropout, so a resumed run
    /// draws the same. The reconstruction target is the translated image too. `pixels` are the branch's
    /// normalised [C, H, W] input for `count` samples (`JointModel.prepare` hands them over).
    func augment(_ branch: ModalityBranch, _ pixels: UnsafeMutablePointer<Float>, count: Int, step: Int) {
        let shift = options.augmentShift
        guard shift > 0, branch.spec.name == "image", branch.input.shape.count == 3 else { return }
        let (channels, height, width) = (branch.input.shape[0], branch.input.shape[1], branch.input.shape[2])
        let normalization = branch.input.normalization
        let black: [Float] = (0..<channels).map { c in
            guard let n = normalization, c < n.mean.count, c < n.std.count, n.std[c] != 0 else { return 0 }
            return Float(-n.mean[c] / n.std[c])
        }
        var rng = SeededRandom(seed: options.seed ^ 0x7368_6966_7473_6869, stream: UInt64(step))
        for b in 0..<count {
            let dx = rng.nextInt(below: 2 * shift + 1) - shift, dy = rng.nextInt(below: 2 * shift + 1) - shift
            for c in 0..<channels {
                translate(pixels + (b * channels + c) * height * width, height: height, width: width,
                          dx: dx, dy: dy, fill: black[c])
            }
        }
    }

    /// Runs to `totalSteps` (or until interrupted). Checkpoints every `checkpointEvery` steps and at the end.
    public func run() throws -> TrainOutcome {
        try run(until: totalSteps, finishing: true)
    }

    /// Runs until step `limit` without the final checkpoint and weights (tests that stop a run midway).
    func runSteps(_ limit: Int) throws {
        _ = try run(until: min(limit, totalSteps), finishing: false)
    }

    private func run(until limit: Int, finishing: Bool) throws -> TrainOutcome {
        let metricsPath = FilePath.join(options.output, Trainer.metricsFile)
        let metrics = try MetricsWriter(path: metricsPath)
        let evaluator = try ValidationLoss(options: options, model: model, manifest: manifest)
        try loader.start(at: position)
        defer { loader.stop() }
        let start = monotonicSeconds()
        var lastReport = start, lastReportStep = step
        var stepsThisProcess = 0, steadyStart = start
        var rate = 0.0
        let epochSteps = max(loader.batchesPerEpoch, 1)
        log("training \(options.model.name): \(model.params.count) parameters, \(totalSteps) steps of \(options.batchSize) "
            + "(\(epochSteps) per epoch), \(options.threads) threads; activations \(model.activationBytes >> 20) MiB")
        for note in model.vocabularyNotes() { log(note) }
        for note in absentModalityNotes() { log(note) }
        if step == 0, let evaluator {
            // The starting point, so that the curves (and tests) can compare against it.
            let val = try evaluator.run()
            try metrics.writeValidation(step: 0, losses: val)
            log("val at step 0: \(describe(val))")
        }
        while step < limit {
            let signal = Interruption.requested
            if signal != 0 {
                try saveCheckpoint()
                log("interrupted at step \(step): checkpoint saved; continue with --resume")
                return .interrupted(step: step, signal: signal)
            }
            var clock = PhaseClock(enabled: stepsThisProcess >= Trainer.warmupSteps)
            guard let batch = try loader.next() else { break }
            clock.lap(0, &phaseTotals)
            let input = ModelBatch(batch)
            let current = step
            try model.prepare(input, visibleModalities: nil, hide: dropout(step: current)) { branch, pixels in
                self.augment(branch, pixels, count: input.count, step: current)
            }
            model.params.zeroGrads()
            clock.lap(1, &phaseTotals)
            model.forward(input)
            clock.lap(2, &phaseTotals)
            let losses = model.losses(input)
            clock.lap(3, &phaseTotals)
            guard losses.total.isFinite else {
                throw TesseraError(stage: .decode, code: "train.non-finite",
                                   "the loss became \(losses.total) at step \(step + 1) (\(describe(losses))); the last good checkpoint is kept. "
                                   + "Try a lower --lr or --clip-norm.")
            }
            model.backward(input)
            clock.lap(4, &phaseTotals)
            let lr = learningRate(at: step)
            let norm = optimizer.update(model.params, learningRate: lr)
            clock.lap(5, &phaseTotals)
            guard norm.isFinite else {
                throw TesseraError(stage: .decode, code: "train.non-finite",
                                   "the gradient became \(norm) at step \(step + 1); the weights were not updated and the last good checkpoint is kept. Try a lower --lr or --clip-norm.")
            }
            step += 1
            position = batch.position
            let now = monotonicSeconds()
            stepsThisProcess += 1
            if stepsThisProcess == Trainer.warmupSteps {
                steadyStart = now
                sgemmAtSteadyStart = BLAS.sgemmSeconds
            }
            if stepsThisProcess > Trainer.warmupSteps {
                steadySeconds = now - steadyStart
                steadySteps = stepsThisProcess - Trainer.warmupSteps
                steadySgemmSeconds = BLAS.sgemmSeconds - sgemmAtSteadyStart
            }
            if now - lastReport >= 1 || step == totalSteps {
                rate = Double((step - lastReportStep) * options.batchSize) / max(now - lastReport, 1e-9)
                let eta = rate > 0 ? Double(totalSteps - step) * Double(options.batchSize) / rate : 0
                log("step \(step)/\(totalSteps)  loss \(fixed(losses.total, 4)) (\(describe(losses)))  \(Int(rate)) samples/s  ETA \(formatDuration(eta))")
                lastReport = now
                lastReportStep = step
            }
            try metrics.write(step: step, epoch: batch.epoch, losses: losses, lr: lr, gradientNorm: norm, samplesPerSecond: rate, seconds: now - start)
            if options.checkpointEvery > 0 && step % options.checkpointEvery == 0 && step < totalSteps { try saveCheckpoint() }
            if let every = options.evalEvery, evaluator != nil {
                let due = every > 0 ? step % every == 0 : (batch.endsEpoch || step % epochSteps == 0)
                if due || step == totalSteps, let evaluator {
                    let val = try evaluator.run()
                    try metrics.writeValidation(step: step, losses: val)
                    log("val at step \(step): \(describe(val))")
                }
            }
        }
        phaseSeconds = zip(PhaseClock.names, phaseTotals).map { ($0, $1) }
        guard finishing else { return .finished(step: step) }
        try saveCheckpoint()
        try Checkpoint.saveWeights(model: model, to: FilePath.join(options.output, Trainer.weightsFile))
        return .finished(step: step)
    }

    /// Modalities of the model that no train sample has (every mask 0): their branches cannot learn, which a
    /// run should say before it starts. Reads the masks only; a shard that cannot be read is left to the loader.
    func absentModalityNotes() -> [String] {
        guard let split = manifest.split("train") else { return [] }
        var present: [String: Int] = [:]
        let masked = model.modalityNames.filter { manifest.tensor("mask_" + $0) != nil }
        for shard in split.shards {
            guard let file = try? SafetensorsFile(path: FilePath.join(options.dataset, shard.file)) else { return [] }
            for name in masked {
                guard let mask = try? file.tensor("mask_" + name).scalars(as: UInt8.self) else { return [] }
                present[name, default: 0] += mask.reduce(0) { $0 + ($1 != 0 ? 1 : 0) }
            }
        }
        return masked.filter { present[$0] == 0 }.map { name in
            "note: no train sample has \(name) (every mask_\(name) is 0): the \(name) branch will not learn, and its train loss reads nan"
        }
    }

    func saveCheckpoint() throws {
        try Checkpoint.save(model: model, optimizer: optimizer, state: CheckpointState(step: step, position: position, optimizerStep: optimizer.step),
                            trainConfig: options.json, trainData: trainData, to: FilePath.join(options.output, Trainer.checkpointFile))
    }

    /// Drops metric lines after `step` (they were written after the checkpoint a resume starts from).
    func truncateMetrics(after step: Int) throws {
        let path = FilePath.join(options.output, Trainer.metricsFile)
        guard FilePath.exists(path) else { return }
        let text = String(decoding: try FilePath.readAll(path, limit: 1 << 30), as: UTF8.self)
        let kept = text.split(separator: "\n").filter { line in
            guard let json = try? JSONValue.parse(String(line)), let lineStep = json["step"]?.intValue else { return false }
            return lineStep <= step
        }
        try DurableFile.write(kept.map { $0 + "\n" }.joined(), to: path)
    }

    func describe(_ losses: ModalityLosses) -> String {
        (model.modalityNames.compactMap { name in losses.values[name].map { "\(name) \(fixed($0, 4))" } }
            + (losses.align.map { ["align \(fixed($0, 4))"] } ?? [])).joined(separator: ", ")
    }
}

/// Appends one JSON line per step to metrics.jsonl.
final class MetricsWriter {
    let handle: FileHandle

    init(path: String) throws {
        if !FilePath.exists(path) { try DurableFile.write("", to: path) }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw TesseraError(path: path, stage: .write, code: "train.metrics", "cannot open for appending")
        }
        handle.seekToEndOfFile()
        self.handle = handle
    }

    deinit { try? handle.close() }

    private func append(_ object: JSONObject) throws {
        try handle.write(contentsOf: Data((JSONValue.object(object).serialized() + "\n").utf8))
    }

    static func number(_ value: Double) -> JSONValue { value.isFinite ? .double(value) : .null }

    func write(step: Int, epoch: Int, losses: ModalityLosses, lr: Double, gradientNorm: Double, samplesPerSecond: Double, seconds: Double) throws {
        var object = JSONObject([("step", .int(step)), ("epoch", .int(epoch)), ("split", .string("train")), ("loss", Self.number(losses.total))])
        for (name, value) in losses.values.sorted(by: { $0.key < $1.key }) { object["loss_\(name)"] = Self.number(value) }
        if let align = losses.align { object["loss_align"] = Self.number(align) }
        object["lr"] = .double(lr)
        object["grad_norm"] = Self.number(gradientNorm)
        object["samples_per_second"] = .double((samplesPerSecond * 10).rounded() / 10)
        object["seconds"] = .double((seconds * 1000).rounded() / 1000)
        try append(object)
    }

    func writeValidation(step: Int, losses: ModalityLosses) throws {
        var object = JSONObject([("step", .int(step)), ("split", .string("val")), ("loss", Self.number(losses.total))])
        for (name, value) in losses.values.sorted(by: { $0.key < $1.key }) { object["loss_\(name)"] = Self.number(value) }
        try append(object)
    }
}

/// Mean losses over the val split (all present modalities visible), weighted by the samples that have each.
final class ValidationLoss {
    let model: JointModel
    let loader: ShardLoader
    let maxBatches: Int

    init?(options: TrainOptions, model: JointModel, manifest: DatasetManifest) throws {
        guard options.evalEvery != nil, let split = manifest.split("val"), split.samples > 0 else { return nil }
        var config = LoaderConfig()
        config.split = "val"
        config.batchSize = options.batchSize
        config.shuffle = .none
        config.epochs = 1
        config.verifyChecksums = options.verifyChecksums
        loader = try ShardLoader(folder: options.dataset, config: config)
        self.model = model
        maxBatches = options.evalBatches
    }

    func run() throws -> ModalityLosses {
        try loader.start()
        defer { loader.stop() }
        var losses = LossAverage()
        var batches = 0
        while batches < maxBatches, let batch = try loader.next() {
            let input = ModelBatch(batch)
            try model.prepare(input, visibleModalities: nil, hide: nil)
            model.forward(input)
            losses.add(model.losses(input).values, model: model, count: input.count)
            batches += 1
        }
        let means = losses.means
        var result = ModalityLosses()
        for branch in model.branches {
            guard let mean = means[branch.spec.name] else { continue }
            result.values[branch.spec.name] = mean
            result.total += branch.spec.weight * mean
        }
        return result
    }
}

/// `1h02m`, `3m05s`, `12s`.
func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "?" }
    let s = Int(seconds.rounded())
    if s >= 3600 { return "\(s / 3600)h" + String(format: "%02dm", (s % 3600) / 60) }
    if s >= 60 { return "\(s / 60)m" + String(format: "%02ds", s % 60) }
    return "\(s)s"
}

/// Wall time between the phases of one step, added to per-phase totals over the steady steps (for
/// `train --json`); nothing is allocated per step.
struct PhaseClock {
    static let names = ["load", "prepare", "forward", "losses", "backward", "update"]
    let enabled: Bool
    private var last: Double

    init(enabled: Bool) {
        self.enabled = enabled
        last = enabled ? monotonicSeconds() : 0
    }

    mutating func lap(_ phase: Int, _ totals: inout [Double]) {
        guard enabled else { return }
        let now = monotonicSeconds()
        totals[phase] += now - last
        last = now
    }
}

/// Moves a `height` x `width` plane by (dx, dy) pixels in place (x right, y down); what comes in is `fill`.
func translate(_ plane: UnsafeMutablePointer<Float>, height: Int, width: Int, dx: Int, dy: Int, fill: Float) {
    guard dx != 0 || dy != 0 else { return }
    // Rows are visited away from the direction of travel so that each is read before it is overwritten.
    for i in 0..<height {
        let y = dy > 0 ? height - 1 - i : i
        let row = plane + y * width
        let sourceY = y - dy
        guard sourceY >= 0 && sourceY < height else {
            row.update(repeating: fill, count: width)
            continue
        }
        let source = plane + sourceY * width
        if dx >= 0 {
            var x = width - 1
            while x >= 0 {
                row[x] = x - dx >= 0 ? source[x - dx] : fill
                x -= 1
            }
        } else {
            for x in 0..<width { row[x] = x - dx < width ? source[x - dx] : fill }
        }
    }
}
