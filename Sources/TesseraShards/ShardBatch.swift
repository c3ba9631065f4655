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
            let size = entry.sampleBytes
            guard let tensor = tensors[entry.name] else {
                // An absent tensor is zeros; the slot may still hold a sample of the previous shard.
                buffers[i].withUnsafeMutableBytes { destination in
                    _ = UnsafeMutableRawBufferPointer(rebasing: destination[(slot * size)..<((slot + 1) * size)]).initializeMemory(as: UInt8.self, repeating: 0)
                }
                continue
            }
            guard tensor.dtype == entry.dtype, tensor.shape == entry.shape else {
                throw TesseraError(stage: .write, code: "shard.schema-mismatch",
                                   "\(entry.name) of \(key) is \(tensor.dtype.displayName) \(tensor.shape), the schema says \(entry.dtype.displayName) \(entry.shape)")
            }
            tensor.withUnsafeBytes { source in
                buffers[i].withUnsafeMutableBytes { destination in
                    guard let from = source.baseAddress, let to = destination.baseAddress else { return }
                    (to + slot * size).copyMemory(from: from, byteCount: size)
                }
            }
        }
        keys.append(key)
    }

    /// Empties the batch for the next shard. The buffers are reused as they are: `append` overwrites
    /// (or zeroes) every slot before it counts.
    public mutating func reset() {
        keys.removeAll(keepingCapacity: true)
    }

    /// Calls `body` with the bytes of every schema entry's batch so far (the first `count` slots), in
    /// schema order, without copying them.
    func withBatchBytes<R>(_ body: ([UnsafeRawBufferPointer]) throws -> R) rethrows -> R {
        func borrow(_ index: Int, _ borrowed: [UnsafeRawBufferPointer]) throws -> R {
            guard index < buffers.count else { return try body(borrowed) }
            let bytes = schema[index].sampleBytes * keys.count
            return try buffers[index].withUnsafeBytes { raw in
                try borrow(index + 1, borrowed + [UnsafeRawBufferPointer(rebasing: raw[0..<bytes])])
            }
        }
        return try borrow(0, [])
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
        let described = schema.map { (name: $0.name, dtype: $0.dtype, shape: [count] + $0.shape) }
        let written = try withBatchBytes { bytes in
            try SafetensorsWriter.writeWithDigest(borrowing: described, bytes: bytes, metadata: metadata, to: path)
        }
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
