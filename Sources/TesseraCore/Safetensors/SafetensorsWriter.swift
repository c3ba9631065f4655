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

    /// The order in which `tensors` are laid out (see the file comment); stable for equal keys.
    static func layoutOrder(_ tensors: [(name: String, tensor: Tensor)]) -> [Int] {
        tensors.indices.sorted { a, b in
            let ka = tensors[a].tensor.byteCount % alignment == 0 ? 0 : 1
            let kb = tensors[b].tensor.byteCount % alignment == 0 ? 0 : 1
            if ka != kb { return ka < kb }
            if ka == 1 {
                let sa = tensors[a].tensor.dtype.byteSize, sb = tensors[b].tensor.dtype.byteSize
                if sa != sb { return sa > sb }
            }
            return a < b
        }
    }

    /// The bytes of the header (length prefix included) for `tensors` in `order`.
    static func headerBytes(_ tensors: [(name: String, tensor: Tensor)], order: [Int], metadata: [String: String]) throws -> [UInt8] {
        var object = JSONObject()
        if !metadata.isEmpty {
            let sorted = metadata.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.string($0.value)) }
            object["__metadata__"] = .object(JSONObject(sorted))
        }
        var offset = 0
        var seen = Set<String>()
        for index in order {
            let (name, tensor) = tensors[index]
            guard name != "__metadata__", !name.isEmpty, seen.insert(name).inserted else {
                throw TesseraError(stage: .write, code: "safetensors.bad-name", "tensor name \"\(name)\" is empty, reserved or repeated")
            }
            object[name] = .object(JSONObject([
                ("dtype", .string(tensor.dtype.rawValue)),
                ("shape", .array(tensor.shape.map { .int($0) })),
                ("data_offsets", .array([.int(offset), .int(offset + tensor.byteCount)])),
            ]))
            offset += tensor.byteCount
        }
        var header = Array(JSONValue.object(object).serialized().utf8)
        let padding = (alignment - (8 + header.count) % alignment) % alignment
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padding))
        var bytes = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) }
        bytes.append(contentsOf: header)
        return bytes
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
        let order = layoutOrder(tensors)
        let header = try headerBytes(tensors, order: order, metadata: metadata)
        let writer = try DurableFileWriter(path: path, hashing: hashing)
        try writer.write(header)
        for index in order {
            try tensors[index].tensor.withUnsafeBytes { try writer.write($0) }
        }
        try writer.commit()
        return (writer.bytesWritten, writer.sha256())
    }

    /// The complete file as bytes in memory (for tests and small files).
    public static func encode(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:]) throws -> [UInt8] {
        let order = layoutOrder(tensors)
        var bytes = try headerBytes(tensors, order: order, metadata: metadata)
        for index in order {
            tensors[index].tensor.withUnsafeBytes { bytes.append(contentsOf: $0) }
        }
        return bytes
    }
}
