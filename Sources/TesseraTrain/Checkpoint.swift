// Checkpoints: weights under PyTorch's names and layouts, Adam's moments beside them, and where training
// stood (step, loader position), in one safetensors file written atomically.
import TesseraCore
import TesseraEngine
import TesseraShards

/// What a checkpoint holds besides tensors.
public struct CheckpointState: Sendable, Equatable {
    public var step: Int
    public var position: LoaderPosition
    public var optimizerStep: Int
}

public enum Checkpoint {
    public static let formatName = "tessera-checkpoint"

    /// A fingerprint of a dataset's train split as the model sees it: the SHA-256 of its shards' checksums and
    /// sample counts, in order, and of the normalisation applied when reading. A resumed run continues only on
    /// the data it started on.
    public static func trainData(_ manifest: DatasetManifest) -> String? {
        guard let split = manifest.split("train") else { return nil }
        var digest = SHA256Digest()
        for shard in split.shards { digest.update(Array("\(shard.sha256) \(shard.samples)\n".utf8)) }
        for tensor in manifest.schema {
            guard let n = tensor.normalize else { continue }
            digest.update(Array("\(tensor.name) \(n.scale) \(n.mean) \(n.std) \(n.axis)\n".utf8))
        }
        return digest.takeHexDigest()
    }

    /// Writes weights, optimiser state and `state` to `path` (temporary file, fsync, rename); `trainData` is
    /// the fingerprint of the train split it was trained on (`trainData(_:)`).
    public static func save(model: JointModel, optimizer: Optimizer<Float>?, state: CheckpointState, trainConfig: JSONValue, trainData: String? = nil,
                            to path: String) throws {
        var metadata = [
            "format": formatName, "format_version": "1",
            "step": String(state.step), "epoch": String(state.position.epoch), "sample": String(state.position.sample),
            "optimizer_step": String(state.optimizerStep),
            "model": model.spec.json.serialized(), "train": trainConfig.serialized(), "inputs": model.inputShapes.serialized(),
        ]
        if let trainData { metadata["train_data"] = trainData }
        try write(model: model, optimizer: optimizer, metadata: metadata, to: path)
    }

    /// Writes the weights alone (`weights.safetensors`): a file to load into the PyTorch twin or `--init`.
    public static func saveWeights(model: JointModel, to path: String) throws {
        try write(model: model, optimizer: nil, metadata: ["format": "tessera-weights", "model": model.spec.json.serialized(),
                                                           "inputs": model.inputShapes.serialized()], to: path)
    }

    /// Writes the parameters (and the optimiser's moments) straight from the model's and the optimiser's
    /// buffers: copies of them would double the memory a large model needs, at every checkpoint.
    private static func write(model: JointModel, optimizer: Optimizer<Float>?, metadata: [String: String], to path: String) throws {
        var tensors: [(name: String, dtype: DType, shape: [Int])] = []
        var bytes: [UnsafeRawBufferPointer] = []
        func add(_ name: String, _ entry: ParameterSet<Float>.Entry, from buffer: UnsafeMutablePointer<Float>) {
            tensors.append((name, .float32, entry.shape))
            bytes.append(UnsafeRawBufferPointer(start: buffer + entry.ref.offset, count: entry.ref.count * MemoryLayout<Float>.stride))
        }
        for entry in model.params.entries { add(entry.name, entry, from: model.params.values) }
        if let optimizer {
            for entry in model.params.entries {
                add("optimizer.first." + entry.name, entry, from: optimizer.first)
                add("optimizer.second." + entry.name, entry, from: optimizer.second)
            }
        }
        try SafetensorsWriter.write(borrowing: tensors, bytes: bytes, metadata: metadata, to: path)
    }

    /// A checkpoint (or a plain weights file) read back.
    public struct Loaded {
        public let file: SafetensorsFile
        public let state: CheckpointState?
        public let model: ModelSpec?
        public let train: JSONValue?
        /// The dataset tensors the model was built for and their per-sample shapes (files from before they
        /// were recorded: nil).
        public let inputs: [String: [Int]]?
        /// The fingerprint of the train split it was trained on (`Checkpoint.trainData`), when recorded.
        public let trainData: String?

        /// Throws when `manifest`'s tensors do not have the shapes the model was trained on: a clearer message
        /// than the layer that would fail to fit them.
        public func checkInputs(_ manifest: DatasetManifest, dataset: String) throws {
            for (tensor, shape) in (inputs ?? [:]).sorted(by: { $0.key < $1.key }) {
                let found = manifest.tensor(tensor).map(ModalityInput.modelShape)
                guard found == shape else {
                    let has = found.map { "has \($0)" } ?? "has no \(tensor)"
                    throw TesseraError(path: file.path, stage: .config, code: "checkpoint.other-inputs",
                                       "the model was trained on \(tensor) \(shape); the dataset \(dataset) \(has)")
                }
            }
        }
    }

    /// Reads a checkpoint or weights file; the model and state are there when it is a Tessera checkpoint.
    public static func load(path: String) throws -> Loaded {
        let file = try SafetensorsFile(path: path)
        let meta = file.metadata
        var state: CheckpointState?
        if meta["format"] == formatName, let step = meta["step"].flatMap(Int.init), let epoch = meta["epoch"].flatMap(Int.init),
           let sample = meta["sample"].flatMap(Int.init) {
            state = CheckpointState(step: step, position: LoaderPosition(epoch: epoch, sample: sample),
                                    optimizerStep: meta["optimizer_step"].flatMap(Int.init) ?? step)
        }
        var model: ModelSpec?
        if let text = meta["model"] {
            guard let json = try? JSONValue.parse(text) else {
                throw TesseraError(path: path, stage: .parse, code: "checkpoint.bad-model", "the model in the metadata is not valid JSON")
            }
            model = try ModelSpec.parse(json, source: path)
        }
        var inputs: [String: [Int]]?
        if let members = meta["inputs"].flatMap({ try? JSONValue.parse($0) })?.objectValue?.members {
            inputs = Dictionary(members.map { ($0.key, $0.value.arrayValue?.compactMap(\.intValue) ?? []) }, uniquingKeysWith: { a, _ in a })
        }
        return Loaded(file: file, state: state, model: model, train: meta["train"].flatMap { try? JSONValue.parse($0) }, inputs: inputs,
                      trainData: meta["train_data"])
    }

    /// Copies weights into the model (every parameter must be there with its shape).
    public static func restoreWeights(_ loaded: Loaded, into model: JointModel) throws {
        var named: [String: Tensor] = [:]
        for entry in model.params.entries {
            guard let tensor = try? loaded.file.tensor(entry.name) else {
                throw TesseraError(path: loaded.file.path, stage: .read, code: "checkpoint.missing-weight", "no tensor \"\(entry.name)\" for the model")
            }
            named[entry.name] = tensor
        }
        try model.params.load(named, source: loaded.file.path)
    }

    /// Copies Adam's moments into `optimizer`.
    public static func restoreOptimizer(_ loaded: Loaded, into optimizer: Optimizer<Float>, model: JointModel) throws {
        for entry in model.params.entries {
            for (prefix, target) in [("optimizer.first.", optimizer.first), ("optimizer.second.", optimizer.second)] {
                let name = prefix + entry.name
                guard let tensor = try? loaded.file.tensor(name), tensor.shape == entry.shape, tensor.dtype == .float32 else {
                    throw TesseraError(path: loaded.file.path, stage: .read, code: "checkpoint.missing-state", "no float32 \(entry.shape) tensor \"\(name)\"")
                }
                try tensor.withScalars(Float.self) { values in
                    for i in 0..<entry.ref.count { target[entry.ref.offset + i] = values[i] }
                }
            }
        }
        optimizer.restore(step: loaded.state?.optimizerStep ?? 0)
    }
}
