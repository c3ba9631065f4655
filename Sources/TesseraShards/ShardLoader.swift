// The training loader: streams a split's samples from memory-mapped shards into reusable batch buffers,
// normalising while it copies, on a background thread, in an order that is a pure function of
// (seed, epoch) so that training can resume mid-epoch exactly.
import Foundation
import TesseraCore

/// How a loader reads a split.
public struct LoaderConfig: Sendable {
    public var split = "train"
    public var batchSize = 64
    public var shuffle: ShuffleMode = .buffer(ShuffleMode.defaultBuffer)
    public var seed: UInt64 = 0
    /// Leave out each epoch's last, smaller batch.
    public var dropLast = false
    /// Check each shard's SHA-256 against the manifest when it is first opened.
    public var verifyChecksums = true
    /// Batches prepared ahead of the consumer.
    public var prefetch = 2
    /// The tensors to load (nil: every tensor of the schema).
    public var tensors: [String]?
    /// Stop after this many epochs (counted from epoch 0); nil: never stop.
    public var epochs: Int?
    /// The most shards kept mapped at once.
    public var maxOpenShards = 32
    /// The largest batch buffer allowed (bytes), checked before anything is allocated.
    public var maxBatchBytes = 8 << 30

    public init() {}
}

/// Where a loader is: `sample` samples of epoch `epoch` have been delivered. Saved in checkpoints; a loader
/// started at a position delivers exactly what an uninterrupted one would from there.
public struct LoaderPosition: Sendable, Equatable, Codable, CustomStringConvertible {
    public var epoch: Int
    public var sample: Int
    public init(epoch: Int = 0, sample: Int = 0) {
        self.epoch = epoch
        self.sample = sample
    }
    public var description: String { "epoch \(epoch), sample \(sample)" }
}

/// One tensor of a batch: model-ready values (float32 when the schema normalises it, else the stored dtype).
public struct LoaderField: Sendable {
    public let name: String
    public let dtype: DType
    /// Per-sample shape.
    public let shape: [Int]
    public var perSample: Int { shape.reduce(1, *) }
}

/// A batch of samples. The loader reuses batch buffers: a batch is valid until the next call to `next()`.
public final class LoaderBatch: @unchecked Sendable {
    // @unchecked: written by the loader's thread, then handed to the consumer under a lock.
    public let fields: [LoaderField]
    public let capacity: Int
    /// Samples in this batch (the capacity, or fewer for an epoch's last batch).
    public internal(set) var count = 0
    public internal(set) var epoch = 0
    /// The loader's position after this batch: save it with a checkpoint taken after training on it.
    public internal(set) var position = LoaderPosition()
    /// Is this the last batch of its epoch?
    public internal(set) var endsEpoch = false
    /// Each sample's key, and its index in the split (shards in manifest order).
    public internal(set) var keys: [String] = []
    public internal(set) var indices: [Int] = []
    let storage: [UnsafeMutableRawPointer]
    private let fieldIndex: [String: Int]

    init(fields: [LoaderField], capacity: Int) {
        self.fields = fields
        self.capacity = capacity
        storage = fields.map { field in
            let bytes = max(field.perSample * field.dtype.byteSize * capacity, 1)
            let pointer = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            pointer.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
            return pointer
        }
        fieldIndex = Dictionary(fields.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
        keys.reserveCapacity(capacity)
        indices.reserveCapacity(capacity)
    }

    deinit { storage.forEach { $0.deallocate() } }

    public func field(_ name: String) -> LoaderField? { fieldIndex[name].map { fields[$0] } }

    /// The raw rows of a tensor ([count] + shape), or nil when the batch has no such tensor.
    public func raw(_ name: String) -> UnsafeMutableRawPointer? { fieldIndex[name].map { storage[$0] } }

    public func floats(_ name: String) -> UnsafeMutablePointer<Float>? { typed(name, .float32, Float.self) }
    public func int32s(_ name: String) -> UnsafeMutablePointer<Int32>? { typed(name, .int32, Int32.self) }
    public func bytes(_ name: String) -> UnsafeMutablePointer<UInt8>? { typed(name, .uint8, UInt8.self) }

    private func typed<T>(_ name: String, _ dtype: DType, _: T.Type) -> UnsafeMutablePointer<T>? {
        guard let i = fieldIndex[name], fields[i].dtype == dtype else { return nil }
        return storage[i].assumingMemoryBound(to: T.self)
    }
}

/// Streams batches of a split. Construct, `start(at:)`, then call `next()` until it returns nil (or for as
/// long as training runs); errors of the background thread (a missing, truncated or corrupted shard) are
/// thrown from `next()`, naming the shard.
public final class ShardLoader: @unchecked Sendable {
    // @unchecked: all shared state lives in `Pipeline`, behind its lock.
    public let folder: String
    public let manifest: DatasetManifest
    public let config: LoaderConfig
    public let fields: [LoaderField]
    /// Samples per epoch in the split.
    public let samplesPerEpoch: Int
    /// Batches per epoch (the last one smaller unless `dropLast`).
    public var batchesPerEpoch: Int {
        config.dropLast ? samplesPerEpoch / config.batchSize : (samplesPerEpoch + config.batchSize - 1) / config.batchSize
    }

    private let source: ShardSource
    private var pipeline: Pipeline?

    /// Opens the dataset in `folder`: reads the manifest, checks that every shard of the split exists with the
    /// size the manifest gives, and plans the batch buffers. Shards are mapped (and their checksums checked)
    /// as the loader first reaches them.
    public init(folder: String, config: LoaderConfig) throws {
        self.folder = folder
        self.config = config
        manifest = try DatasetManifest.load(folder: folder)
        let manifestPath = FilePath.join(folder, "manifest.json")
        func configError(_ code: String, _ message: String) -> TesseraError {
            TesseraError(path: manifestPath, stage: .config, code: code, message)
        }
        guard let split = manifest.split(config.split) else {
            let present = manifest.splits.filter { $0.samples > 0 }.map(\.name)
            let has = present.isEmpty ? "the dataset has no samples; its errors.jsonl says why" : "the dataset has \(present.joined(separator: ", "))"
            throw configError("loader.no-split", "no split \"\(config.split)\" (\(has))")
        }
        guard config.batchSize > 0 else { throw configError("loader.batch-size", "the batch size must be at least 1") }
        var total = 0
        for shard in split.shards {
            guard shard.samples >= 0, shard.bytes >= 0 else { throw configError("loader.bad-shard", "\(shard.file) has a negative size") }
            total += shard.samples
        }
        guard total > 0 else { throw configError("loader.empty-split", "split \"\(config.split)\" has no samples") }
        if config.dropLast && total < config.batchSize {
            throw configError("loader.too-few", "split \"\(config.split)\" has \(total) samples, fewer than one batch of \(config.batchSize) (drop-last is on)")
        }
        samplesPerEpoch = total

        let names = config.tensors ?? manifest.schema.map(\.name)
        var fields: [LoaderField] = []
        var plans: [FieldPlan] = []
        var batchBytes = 0
        for name in names {
            guard let schema = manifest.tensor(name) else {
                throw configError("loader.no-tensor", "no tensor \"\(name)\" in the schema (it has \(manifest.schema.map(\.name).joined(separator: ", ")))")
            }
            let plan = try FieldPlan(schema: schema, manifest: manifest, path: manifestPath)
            let (bytes, overflow) = plan.outputBytesPerSample.multipliedReportingOverflow(by: config.batchSize)
            batchBytes += bytes
            guard !overflow, batchBytes <= config.maxBatchBytes else {
                throw configError("loader.batch-too-large", "a batch of \(config.batchSize) samples needs more than \(config.maxBatchBytes) bytes")
            }
            fields.append(LoaderField(name: name, dtype: plan.outputType, shape: schema.shape))
            plans.append(plan)
        }
        self.fields = fields

        for shard in split.shards {
            let path = FilePath.join(folder, shard.file)
            guard let size = SystemCall.fileSize(path) else {
                throw TesseraError(path: path, stage: .open, code: "loader.missing-shard", "shard listed in the manifest is missing")
            }
            guard size == shard.bytes else {
                throw TesseraError(path: path, stage: .open, code: "loader.shard-size",
                                   "shard is \(size) bytes, the manifest says \(shard.bytes) (truncated or replaced)")
            }
        }
        source = ShardSource(folder: folder, shards: split.shards, plans: plans, verify: config.verifyChecksums, maxOpen: config.maxOpenShards)
    }

    deinit { pipeline?.stop() }

    /// The visiting order of an epoch (split sample indices).
    public func order(epoch: Int) -> [Int] {
        EpochOrder.indices(shardSizes: source.shards.map(\.samples), mode: config.shuffle, seed: config.seed, epoch: epoch)
    }

    /// Starts (or restarts) streaming from `position`.
    public func start(at position: LoaderPosition = LoaderPosition()) throws {
        pipeline?.stop()
        guard position.epoch >= 0, position.sample >= 0, position.sample <= samplesPerEpoch else {
            throw TesseraError(stage: .config, code: "loader.bad-position", "position \(position) is outside an epoch of \(samplesPerEpoch) samples")
        }
        let buffers = (0..<(max(config.prefetch, 1) + 1)).map { _ in LoaderBatch(fields: fields, capacity: config.batchSize) }
        let pipeline = Pipeline(buffers: buffers)
        self.pipeline = pipeline
        let producer = Producer(source: source, config: config, samplesPerEpoch: samplesPerEpoch, pipeline: pipeline, position: position)
        let thread = Thread { producer.run() }
        thread.name = "tessera-loader"
        thread.start()
    }

    /// The next batch, or nil once `config.epochs` epochs have been delivered. The previous batch goes back
    /// to the loader. Throws the loader thread's error, naming the shard.
    public func next() throws -> LoaderBatch? {
        if pipeline == nil { try start() }
        guard let pipeline else { return nil }
        return try pipeline.take()
    }

    /// Stops the background thread (also done when the loader is released).
    public func stop() {
        pipeline?.stop()
        pipeline = nil
    }
}

// MARK: - pipeline

/// Free and ready batch buffers between the loader thread and the consumer.
private final class Pipeline: @unchecked Sendable {
    // @unchecked: every field is guarded by `condition`.
    private let condition = NSCondition()
    private var free: [LoaderBatch]
    private var ready: [LoaderBatch] = []
    private var lent: LoaderBatch?
    private var finished = false
    private var failure: Error?
    private(set) var stopped = false
    private var producerDone = false

    init(buffers: [LoaderBatch]) { free = buffers }

    /// Producer: a free buffer, or nil when stopping.
    func takeFree() -> LoaderBatch? {
        condition.lock()
        defer { condition.unlock() }
        while free.isEmpty && !stopped { condition.wait() }
        return stopped ? nil : free.removeLast()
    }

    func post(_ batch: LoaderBatch) {
        condition.lock()
        ready.append(batch)
        condition.broadcast()
        condition.unlock()
    }

    func finish(_ error: Error?) {
        condition.lock()
        finished = true
        failure = error
        producerDone = true
        condition.broadcast()
        condition.unlock()
    }

    /// Consumer: returns the lent batch, waits for the next.
    func take() throws -> LoaderBatch? {
        condition.lock()
        defer { condition.unlock() }
        if let lent {
            free.append(lent)
            self.lent = nil
            condition.broadcast()
        }
        while ready.isEmpty && !finished { condition.wait() }
        if !ready.isEmpty {
            let batch = ready.removeFirst()
            lent = batch
            return batch
        }
        if let failure { throw failure }
        return nil
    }

    /// Asks the producer to stop and waits until it has.
    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        while !producerDone { condition.wait() }
        condition.unlock()
    }
}

/// The loader thread's work: walks epochs in order, filling free buffers.
private final class Producer: @unchecked Sendable {
    // @unchecked: used by the loader thread only.
    let source: ShardSource
    let config: LoaderConfig
    let samplesPerEpoch: Int
    let pipeline: Pipeline
    var position: LoaderPosition

    init(source: ShardSource, config: LoaderConfig, samplesPerEpoch: Int, pipeline: Pipeline, position: LoaderPosition) {
        self.source = source
        self.config = config
        self.samplesPerEpoch = samplesPerEpoch
        self.pipeline = pipeline
        self.position = position
    }

    func run() {
        var orderEpoch = -1
        var order: [Int] = []
        do {
            while true {
                if let limit = config.epochs, position.epoch >= limit { break }
                let remaining = samplesPerEpoch - position.sample
                if remaining == 0 || (config.dropLast && remaining < config.batchSize) {
                    position = LoaderPosition(epoch: position.epoch + 1, sample: 0)
                    continue
                }
                if orderEpoch != position.epoch {
                    order = EpochOrder.indices(shardSizes: source.shards.map(\.samples), mode: config.shuffle, seed: config.seed, epoch: position.epoch)
                    orderEpoch = position.epoch
                }
                guard let batch = pipeline.takeFree() else { break }
                let count = min(config.batchSize, remaining)
                try source.fill(batch, with: order[position.sample..<(position.sample + count)])
                batch.epoch = position.epoch
                position.sample += count
                let left = samplesPerEpoch - position.sample
                if left == 0 || (config.dropLast && left < config.batchSize) {
                    position = LoaderPosition(epoch: position.epoch + 1, sample: 0)
                    batch.endsEpoch = true
                } else {
                    batch.endsEpoch = false
                }
                batch.position = position
                pipeline.post(batch)
            }
            pipeline.finish(nil)
        } catch {
            pipeline.finish(error)
        }
    }
}
