// Assembling samples into a shard: one batched tensor per schema entry, samples copied in order.
import TesseraCore

/// One sample's tensors by name; absent names are written as zeros.
public typealias SampleTensors = [String: Tensor]

/// Collects up to `capacity` samples into preallocated batch buffers.
public struct ShardBatch {
    public let schema: [TensorSchema]
    public let capacity: Int
    private var buffers: [[UInt8]]
    public private(set) var keys: [String] = []
    public var count: Int { keys.count }
    public var isFull: Bool { keys.count == capacity }

    public init(schema: [TensorSchema], capacity: Int) {
        self.schema = schema
        self.capacity = capacity
        buffers = schema.map { [UInt8](repeating: 0, count: $0.sampleBytes * capacity) }
    }

    /// Appends one sample. Throws when a tensor's dtype or shape does not match the schema.
    public mutating func append(key: String, tensors: SampleTensors) throws {
        let slot = keys.count
        guard slot < capacity else { throw TesseraError(stage: .write, code: "shard.full", "internal: shard batch is full") }
        for (i, entry) in schema.enumerated() {
            guard let tensor = tensors[entry.name] else { continue }  // zeros, already there
            guard tensor.dtype == entry.dtype, tensor.shape == entry.shape else {
                throw TesseraError(stage: .write, code: "shard.schema-mismatch",
                                   "\(entry.name) of \(key) is \(tensor.dtype.displayName) \(tensor.shape), the schema says \(entry.dtype.displayName) \(entry.shape)")
            }
            let size = entry.sampleBytes
            tensor.withUnsafeBytes { source in
                buffers[i].withUnsafeMutableBytes { destination in
                    guard let from = source.baseAddress, let to = destination.baseAddress else { return }
                    (to + slot * size).copyMemory(from: from, byteCount: size)
                }
            }
        }
        keys.append(key)
    }

    /// The batched tensors ([N] + per-sample shape) for the samples appended so far.
    public func tensors() throws -> [(name: String, tensor: Tensor)] {
        try schema.enumerated().map { i, entry in
            let bytes = entry.sampleBytes * keys.count
            let tensor = try buffers[i].withUnsafeBytes { raw in
                try Tensor(dtype: entry.dtype, shape: [keys.count] + entry.shape, copying: UnsafeRawBufferPointer(rebasing: raw[0..<bytes]))
            }
            return (entry.name, tensor)
        }
    }

    /// Empties the batch for the next shard (buffers are reused and re-zeroed).
    public mutating func reset() {
        for i in buffers.indices { buffers[i].withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) } }
        keys.removeAll(keepingCapacity: true)
    }
}

extension ShardBatch {
    /// Writes the batch as shard `index` of `split` under `folder` (durably: temporary name, fsync,
    /// rename), with the sample keys in its metadata; returns the manifest's entry for it.
    public func write(folder: String, split: String, index: Int) throws -> ShardInfo {
        let relative = ShardNaming.file(split: split, index: index)
        let path = FilePath.join(folder, relative)
        try FilePath.createDirectories(FilePath.split(path).folder)
        let keyList = JSONValue.array(keys.map { .string($0) }).serialized()
        let metadata = ["format": "tessera-shard", "format_version": "1", "split": split, "index": String(index), "keys": keyList]
        let written = try SafetensorsWriter.writeWithDigest(try tensors(), metadata: metadata, to: path)
        return ShardInfo(file: relative, samples: count, bytes: written.bytes, sha256: written.sha256)
    }
}

/// Shard file names.
public enum ShardNaming {
    /// `split/shard-000042.safetensors`.
    public static func file(split: String, index: Int) -> String {
        let digits = String(index)
        return "\(split)/shard-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits + ".safetensors"
    }
}
