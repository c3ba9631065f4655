// Writing safetensors files durably and readably by every safetensors implementation.
//
// Alignment: the header is padded with spaces so that the data area starts on a 64-byte boundary.
// The reference reader rejects gaps between tensors, so alignment cannot come from padding between
// them; instead tensors whose byte size is a multiple of 64 are laid out first (each then starts on a
// 64-byte boundary) and the rest follow by descending element size (each then naturally aligned).
// Batched shard tensors ([N,3,64,64] uint8, [N,64,65] float32, ...) are all in the first group.

/// Writes safetensors files.
public enum SafetensorsWriter {
    /// The alignment of the data area, and of every tensor whose byte size allows it.
    public static let alignment = 64

    /// What the header records of one tensor.
    struct Entry {
        var name: String
        var dtype: DType
        var shape: [Int]
        var byteCount: Int
    }

    /// The order in which `entries` are laid out (see the file comment); stable for equal keys.
    static func layoutOrder(_ entries: [Entry]) -> [Int] {
        entries.indices.sorted { a, b in
            let ka = entries[a].byteCount % alignment == 0 ? 0 : 1
            let kb = entries[b].byteCount % alignment == 0 ? 0 : 1
            if ka != kb { return ka < kb }
            if ka == 1 {
                let sa = entries[a].dtype.byteSize, sb = entries[b].dtype.byteSize
                if sa != sb { return sa > sb }
            }
            return a < b
        }
    }

    /// The bytes of the header (length prefix included) for `entries` in `order`.
    static func headerBytes(_ entries: [Entry], order: [Int], metadata: [String: String]) throws -> [UInt8] {
        // JSON escaping only lengthens text: metadata longer than the limit as it is fails before serializing.
        let rawMetadata = metadata.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
        if rawMetadata > SafetensorsLimits.default.maxHeaderBytes { throw headerTooLarge(atLeast: rawMetadata) }
        var object = JSONObject()
        if !metadata.isEmpty {
            let sorted = metadata.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.string($0.value)) }
            object["__metadata__"] = .object(JSONObject(sorted))
        }
        var offset = 0
        var seen = Set<String>()
        for index in order {
            let entry = entries[index]
            guard entry.name != "__metadata__", !entry.name.isEmpty, seen.insert(entry.name).inserted else {
                throw TesseraError(stage: .write, code: "safetensors.bad-name", "tensor name \"\(entry.name)\" is empty, reserved or repeated")
            }
            object[entry.name] = .object(JSONObject([
                ("dtype", .string(entry.dtype.rawValue)),
                ("shape", .array(entry.shape.map { .int($0) })),
                ("data_offsets", .array([.int(offset), .int(offset + entry.byteCount)])),
            ]))
            offset += entry.byteCount
        }
        var header = Array(JSONValue.object(object).serialized().utf8)
        // The Python and Rust safetensors readers, and ours, refuse a longer header: never write one.
        guard header.count + alignment <= SafetensorsLimits.default.maxHeaderBytes else { throw headerTooLarge(atLeast: header.count) }
        let padding = (alignment - (8 + header.count) % alignment) % alignment
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padding))
        var bytes = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) }
        bytes.append(contentsOf: header)
        return bytes
    }

    static func headerTooLarge(atLeast bytes: Int) -> TesseraError {
        TesseraError(stage: .write, code: "safetensors.header-too-large",
                     "the header would take \(bytes) bytes or more (metadata and tensor names), over the \(SafetensorsLimits.default.maxHeaderBytes) that safetensors readers accept")
    }

    /// What the header records of each tensor.
    static func entries(_ tensors: [(name: String, tensor: Tensor)]) -> [Entry] {
        tensors.map { Entry(name: $0.name, dtype: $0.tensor.dtype, shape: $0.tensor.shape, byteCount: $0.tensor.byteCount) }
    }

    /// Writes `tensors` and `metadata` to `path` durably: a temporary file in the same folder, fsync,
    /// rename, fsync of the folder. Returns the number of bytes written.
    @discardableResult
    public static func write(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:], to path: String) throws -> Int {
        try write(tensors, metadata: metadata, to: path, hashing: false).bytes
    }

    /// As `write`, also returning the file's SHA-256 (hex), computed from the bytes as they are written.
    public static func writeWithDigest(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:],
                                       to path: String) throws -> (bytes: Int, sha256: String) {
        let written = try write(tensors, metadata: metadata, to: path, hashing: true)
        return (written.bytes, written.sha256 ?? "")
    }

    private static func write(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String], to path: String,
                              hashing: Bool) throws -> (bytes: Int, sha256: String?) {
        try write(entries(tensors), metadata: metadata, to: path, hashing: hashing) { index, sink in
            try tensors[index].tensor.withUnsafeBytes { try sink($0) }
        }
    }

    /// As `writeWithDigest`, for tensors whose bytes live elsewhere (a shard's batch buffers, written
    /// without copying them into tensors first). `bytes[i]` must hold exactly the bytes of `tensors[i]`.
    public static func writeWithDigest(borrowing tensors: [(name: String, dtype: DType, shape: [Int])], bytes: [UnsafeRawBufferPointer],
                                       metadata: [String: String] = [:], to path: String) throws -> (bytes: Int, sha256: String) {
        let written = try write(entries(borrowing: tensors, bytes: bytes), metadata: metadata, to: path, hashing: true) { index, sink in try sink(bytes[index]) }
        return (written.bytes, written.sha256 ?? "")
    }

    /// As `write`, for tensors whose bytes live elsewhere (a model's parameter buffers: a checkpoint then
    /// needs no second copy of the weights in memory). Returns the number of bytes written.
    @discardableResult
    public static func write(borrowing tensors: [(name: String, dtype: DType, shape: [Int])], bytes: [UnsafeRawBufferPointer],
                             metadata: [String: String] = [:], to path: String) throws -> Int {
        try write(entries(borrowing: tensors, bytes: bytes), metadata: metadata, to: path, hashing: false) { index, sink in try sink(bytes[index]) }.bytes
    }

    /// What the header records of borrowed tensors, each checked against its bytes.
    private static func entries(borrowing tensors: [(name: String, dtype: DType, shape: [Int])], bytes: [UnsafeRawBufferPointer]) throws -> [Entry] {
        var entries: [Entry] = []
        for (i, tensor) in tensors.enumerated() {
            let count = tensor.shape.reduce(tensor.dtype.byteSize, *)
            guard i < bytes.count, bytes[i].count == count else {
                throw TesseraError(stage: .write, code: "safetensors.size-mismatch",
                                   "internal: \(tensor.name) has \(i < bytes.count ? bytes[i].count : 0) bytes for a \(tensor.dtype.rawValue) \(tensor.shape) tensor")
            }
            entries.append(Entry(name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, byteCount: count))
        }
        return entries
    }

    /// Writes the header of `entries`, then each entry's bytes (handed to `sink` by `bytesOf`) in layout order.
    private static func write(_ entries: [Entry], metadata: [String: String], to path: String, hashing: Bool,
                              bytesOf: (Int, (UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws -> (bytes: Int, sha256: String?) {
        let order = layoutOrder(entries)
        let header = try headerBytes(entries, order: order, metadata: metadata)
        let writer = try DurableFileWriter(path: path, hashing: hashing)
        try writer.write(header)
        for index in order {
            try bytesOf(index) { try writer.write($0) }
        }
        try writer.commit()
        return (writer.bytesWritten, writer.sha256())
    }

    /// The complete file as bytes in memory (for tests and small files).
    public static func encode(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:]) throws -> [UInt8] {
        let described = entries(tensors)
        let order = layoutOrder(described)
        var bytes = try headerBytes(described, order: order, metadata: metadata)
        for index in order {
            tensors[index].tensor.withUnsafeBytes { bytes.append(contentsOf: $0) }
        }
        return bytes
    }
}
