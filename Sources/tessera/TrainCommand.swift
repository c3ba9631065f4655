// `tessera train`: a joint autoencoder from shards, with checkpoints, exact resume and pictures.
import ArgumentParser
import Foundation
import TesseraBLAS
import TesseraCore
import TesseraEngine
import TesseraShards
import TesseraTrain

extension OptimizerConfig.Kind: ExpressibleByArgument {}
extension LearningRateSchedule: ExpressibleByArgument {}

/// Options shared by train, encode and eval: which model.
struct ModelChoice: ParsableArguments {
    @Option(name: .long, help: "A built-in model: m1 (W2's), seed-conv (image-only convolutional), small (quick; the default).")
    var preset: String?

    @Option(name: .long, help: "A model file (JSON; `tessera train --print-model PRESET` writes one to start from).")
    var model: String?

    /// The model spec for a dataset.
    func spec(for manifest: DatasetManifest) throws -> ModelSpec {
        if preset != nil && model != nil { throw ValidationError("give --preset or --model, not both") }
        if let model { return try ModelSpec.load(path: model) }
        return try ModelPresets.spec(preset ?? "small", for: manifest)
    }
}

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a joint autoencoder on shards: RUN/checkpoint.safetensors, weights.safetensors, metrics.jsonl, loss.png, reconstructions.png."
    )

    @Argument(help: "A dataset folder written by `tessera ingest`.")
    var dataset: String

    @Option(name: .long, help: "The run folder.")
    var out: String?

    @OptionGroup var choice: ModelChoice

    @Option(name: .long, help: "Print the model file of a preset for this dataset (or of --model) and exit.")
    var printModel: String?

    @Option(name: .long, help: "Training steps (batches).")
    var steps: Int?

    @Option(name: .long, help: "Training epochs (used when --steps is not given; default 1).")
    var epochs: Int?

    @Option(name: .customLong("batch-size"), help: "Samples per batch (64, or the train split's samples when it has fewer).")
    var requestedBatchSize: Int?

    @Option(name: .long, help: "Learning rate (1e-3).")
    var lr = 1e-3

    @Option(name: .long, help: "adam (default), adamw or sgd.")
    var optimizer: OptimizerConfig.Kind = .adam

    @Option(name: .long, help: "Weight decay: L2 for adam and sgd, decoupled for adamw (0).")
    var weightDecay = 0.0

    @Option(name: .long, help: "SGD momentum (0).")
    var momentum = 0.0

    @Option(name: .long, help: "Clip the global gradient norm to this.")
    var clipNorm: Double?

    @Option(name: .long, help: "Learning-rate schedule: constant (default) or cosine (to 0 at the last step).")
    var schedule: LearningRateSchedule = .constant

    @Option(name: .long, help: "Linear warm-up steps (0).")
    var warmup = 0

    @Option(name: .long, help: "Seed of the initial weights, the sample order and modality dropout (0).")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Threads (2). The weights do not depend on it: the same seed gives the same bytes on any thread count, and a run may resume on another.")
    var threads = 2

    @Option(name: .long, help: "Probability per sample of hiding a random non-empty subset of its modalities from the encoders (0).")
    var modalityDropout = 0.0

    @Option(name: .long, help: "Translate each training image by up to N pixels along each axis, black filling in, drawn per sample and step (0: off).")
    var augmentShift = 0

    @Option(name: .long, help: "Weight of the contrastive alignment term: pulls each single-modality code towards its sample's shared code, away from the others' (the model file's \"align\", else 0).")
    var align: Double?

    @Option(name: .long, help: "Fusion of the per-modality codes: concat or mean (overrides the model file's).")
    var fusion: String?

    @Option(name: .long, help: "Sample order: buffer (default), buffer:N, full, shards or none.")
    var shuffle = "buffer"

    @Option(name: .customLong("init"), help: "Start from these weights (safetensors with the model's parameter names, e.g. from PyTorch).")
    var initWeights: String?

    @Option(name: .long, help: "Save a checkpoint every N steps (1000; 0: only at the end; always at the end and on SIGINT/SIGTERM).")
    var checkpointEvery = 1000

    @Option(name: .long, help: "Evaluate on the val split every N steps (default: every epoch and at the end).")
    var evalEvery: Int?

    @Flag(name: .long, help: "No val evaluation during training.")
    var noEval = false

    @Option(name: .long, help: "At most this many val batches per evaluation (50).")
    var evalBatches = 50

    @Flag(name: .long, help: "Continue the run in --out from its checkpoint (the result equals an uninterrupted run).")
    var resume = false

    @Flag(name: .long, help: "Replace what a previous run wrote to --out.")
    var overwrite = false

    @Flag(name: .long, help: "Skip the SHA-256 check of each shard when first opened.")
    var noVerifyShards = false

    @Flag(name: .long, help: "No pictures (loss.png, reconstructions.png).")
    var noPictures = false

    @Flag(name: .long, help: "No progress output.")
    var quiet = false

    @Flag(name: .long, help: "Print a JSON summary at the end (steps, steady samples/s, peak RSS, time in sgemm).")
    var json = false

    func run() throws {
        try reportingErrors {
            let manifest = try DatasetManifest.load(folder: dataset)
            if let name = printModel {
                let spec = name == "-" ? try choice.spec(for: manifest) : try ModelPresets.spec(name, for: manifest, checkFixedShapes: false)
                Console.out(spec.json.prettySerialized())
                return
            }
            guard let out else { throw ValidationError("--out RUN_DIR is required") }
            // Without --batch-size, a train split smaller than the default batch is one batch (every step
            // sees all of it) rather than an error; an explicit size is taken as asked.
            let trainSamples = manifest.split("train")?.samples ?? 0
            let batchSize = requestedBatchSize ?? (trainSamples > 0 ? min(64, trainSamples) : 64)
            if requestedBatchSize == nil && batchSize < 64 && !quiet {
                Console.err("train: the train split has \(trainSamples) samples: batches of \(batchSize) (--batch-size to choose)")
            }
            try checkBatchAndThreads(batchSize: batchSize, threads: threads)
            guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be positive") }
            guard (0...1).contains(modalityDropout) else { throw ValidationError("--modality-dropout must be in [0, 1]") }
            guard (0...64).contains(augmentShift) else { throw ValidationError("--augment-shift must be in [0, 64]") }
            guard steps.map({ $0 >= 0 }) ?? true, epochs.map({ $0 >= 1 }) ?? true else { throw ValidationError("--steps must be >= 0 and --epochs >= 1") }
            guard let order = ShuffleMode(shuffle) else { throw ValidationError("--shuffle: none, shards, full, buffer or buffer:N") }
            guard weightDecay.isFinite, weightDecay >= 0 else { throw ValidationError("--weight-decay must be >= 0") }
            guard momentum.isFinite, (0..<1).contains(momentum) else { throw ValidationError("--momentum must be in [0, 1)") }
            guard clipNorm.map({ $0.isFinite && $0 > 0 }) ?? true else { throw ValidationError("--clip-norm must be positive") }
            guard warmup >= 0 else { throw ValidationError("--warmup must be >= 0") }
            guard checkpointEvery >= 0 else { throw ValidationError("--checkpoint-every must be >= 0 (0: only at the end)") }
            guard evalEvery.map({ $0 >= 0 }) ?? true else { throw ValidationError("--eval-every must be >= 0 (0: every epoch)") }
            guard evalBatches >= 1 else { throw ValidationError("--eval-batches must be >= 1") }
            let lock = try FolderLock(folder: out)
            // The dataset is read for the whole run: no ingest may rewrite it meanwhile (unless it is the run
            // folder itself, which the lock above already holds).
            let reading = FilePath.realPath(dataset) == FilePath.realPath(out) ? nil : try FolderLock(folder: dataset, for: .reading)
            defer { withExtendedLifetime((lock, reading)) {} }
            if !resume {
                try prepareOutput(out, overwrite: overwrite)
            }
            var spec = try choice.spec(for: manifest)
            if let fusion {
                guard let mode = Fusion(rawValue: fusion), mode != .none, spec.fusion != .none else {
                    throw ValidationError("--fusion: concat or mean, for a model with two or more modalities")
                }
                spec.fusion = mode
            }
            if let align {
                guard align.isFinite, align >= 0, spec.fusion != .none else { throw ValidationError("--align must be >= 0, for a model with two or more modalities") }
                spec.align = align
            }
            var options = TrainOptions(dataset: dataset, output: out, model: spec)
            options.modelSource = choice.model ?? "preset \(choice.preset ?? "small")"
            options.steps = steps
            options.epochs = epochs
            options.batchSize = batchSize
            options.seed = seed
            options.threads = threads
            options.modalityDropout = modalityDropout
            options.augmentShift = augmentShift
            options.shuffle = order
            options.optimizer.kind = optimizer
            options.optimizer.learningRate = lr
            options.optimizer.weightDecay = weightDecay
            options.optimizer.momentum = momentum
            options.optimizer.clipNorm = clipNorm
            options.schedule = schedule
            options.warmupSteps = warmup
            options.initWeights = initWeights
            options.checkpointEvery = checkpointEvery
            options.evalEvery = noEval ? nil : (evalEvery ?? 0)
            options.evalBatches = evalBatches
            options.verifyChecksums = !noVerifyShards
            let log: (String) -> Void = quiet ? { _ in } : { Console.err("train: \($0)") }
            Interruption.install()
            let trainer = try Trainer(options: options, resume: resume, log: log)
            BLAS.profiling = json
            let started = monotonicSeconds()
            let outcome = try trainer.run()
            let seconds = monotonicSeconds() - started
            BLAS.profiling = false
            let pictures = noPictures ? [] : try RunPictures.write(run: out, model: trainer.model, dataset: dataset, log: log)
            if json {
                let steady = trainer.steadySteps > 0 ? Double(trainer.steadySteps * batchSize) / trainer.steadySeconds : 0
                Console.out(JSONValue.object(JSONObject([
                    ("steps", .int(trainer.step)), ("seconds", .double(seconds)), ("batch_size", .int(batchSize)), ("threads", .int(threads)),
                    ("steady_samples_per_second", .double(steady)), ("steady_steps", .int(trainer.steadySteps)),
                    ("steady_seconds", .double(trainer.steadySeconds)), ("steady_sgemm_seconds", .double(trainer.steadySgemmSeconds)),
                    ("peak_rss_bytes", .int(peakResidentBytes())), ("sgemm_seconds", .double(BLAS.sgemmSeconds)),
                    ("sgemm_gflop", .double(BLAS.sgemmFlops / 1e9)), ("parameters", .int(trainer.model.params.count)),
                    ("phase_seconds", .object(JSONObject(trainer.phaseSeconds.map { ($0.name, JSONValue.double($0.seconds)) }))),
                ])).serialized())
            }
            switch outcome {
            case .finished(let step):
                if json { break }
                Console.out("\(out): \(step) steps; weights in \(FilePath.join(out, Trainer.weightsFile)), metrics in \(FilePath.join(out, Trainer.metricsFile))"
                            + (pictures.isEmpty ? "" : ", pictures " + pictures.joined(separator: " and ")))
            case .interrupted(let step, let signal):
                Console.out("\(out): interrupted at step \(step); checkpoint saved (tessera train ... --resume continues)")
                throw ExitCode(128 + signal)
            }
        }
    }

    /// Refuses a non-empty run folder unless `overwrite` (which clears what a run writes there).
    func prepareOutput(_ folder: String, overwrite: Bool) throws {
        let existing = (try? FilePath.listDirectory(folder)) ?? []
        guard !existing.isEmpty else { return }
        guard overwrite else {
            throw TesseraError(path: folder, stage: .config, code: "train.output-exists",
                               "the run folder is not empty: --resume continues the run there, --overwrite starts again")
        }
        for name in [Trainer.checkpointFile, Trainer.weightsFile, Trainer.metricsFile, Trainer.modelFile, RunPictures.lossFile, RunPictures.reconstructionsFile] {
            let path = FilePath.join(folder, name)
            if FilePath.exists(path) { try FileManager.default.removeItem(atPath: path) }
        }
    }
}
