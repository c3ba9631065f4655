// Reading safetensors files: memory-mapped, validated before anything is trusted, zero-copy tensors.
//
// Format (huggingface/safetensors): 8-byte little-endian header length N; N bytes of UTF-8 JSON mapping
// tensor names to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data area
// that follows the header) plus an optional "__metadata__" string-to-string map; then the data.
// The reference reader also requires the tensors to tile the data area exactly (no gaps, no trailing
// bytes); this reader does the same, so whatever Tessera accepts, PyTorch and numpy users can read too.

/// Limits applied while reading a safetensors file.
public struct SafetensorsLimits: Sendable {
    /// Largest accepted JSON header, in bytes.
    public var maxHeaderBytes: Int
    public init(maxHeaderBytes: Int = 100_000_000) { self.maxHeaderBytes = maxHeaderBytes }
    public static let `default` = SafetensorsLimits()
}

/// One tensor's entry in a safetensors header.
public struct SafetensorsEntry: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Byte range inside the data area.
    public let dataRange: Range<Int>
    public var byteCount: Int { dataRange.count }
}

/// A validated, memory-mapped safetensors file.
public struct SafetensorsFile: Sendable {
    /// The path it was opened from.
    public let path: String
    /// The tensors, in order of their data offsets.
    public let entries: [SafetensorsEntry]
    /// The `__metadata__` map (empty when absent).
    public let metadata: [String: String]
    /// The length of the JSON header in bytes (without the 8-byte length prefix).
    public let headerByteCount: Int
    /// Total size of the file in bytes.
    public var fileByteCount: Int { mapping.bytes.count }
    /// The offset of the data area from the start of the file.
    public var dataOffset: Int { 8 + headerByteCount }

    private let mapping: MappedFile
    private let entryIndex: [String: Int]

    /// Maps and validates the file at `path`. Every problem throws a `TesseraError` naming the file,
    /// with a distinct code (`safetensors.empty`, `safetensors.header-past-end`, ...).
    public init(path: String, limits: SafetensorsLimits = .default) throws {
        let mapping = try MappedFile(path: path)
        try self.init(mapping: mapping, limits: limits)
    }

    /// Validates an already mapped file.
    public init(mapping: MappedFile, limits: SafetensorsLimits = .default) throws {
        self.mapping = mapping
        path = mapping.path
        let layout = try SafetensorsHeader.parse(mapping.bytes, limits: limits, path: mapping.path)
        entries = layout.entries
        metadata = layout.metadata
        headerByteCount = layout.headerByteCount
        entryIndex = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.name, $0) })
    }

    /// The tensor names in offset order.
    public var names: [String] { entries.map(\.name) }

    /// The entry for `name`, if present.
    public func entry(_ name: String) -> SafetensorsEntry? { entryIndex[name].map { entries[$0] } }

    /// A zero-copy view of the tensor called `name`; it stays valid after this value is gone.
    public func tensor(_ name: String) throws -> Tensor {
        guard let entry = entry(name) else {
            throw TesseraError(path: path, stage: .read, code: "safetensors.missing-tensor", "no tensor named \"\(name)\"")
        }
        return tensor(for: entry)
    }

    /// A zero-copy view of an entry's tensor.
    public func tensor(for entry: SafetensorsEntry) -> Tensor {
        let storage = TensorStorage(mapping: mapping, offset: dataOffset + entry.dataRange.lowerBound, byteCount: entry.byteCount)
        return Tensor(dtype: entry.dtype, shape: entry.shape, storage: storage)
    }

    /// Every tensor in offset order.
    public func allTensors() -> [(name: String, tensor: Tensor)] {
        entries.map { ($0.name, tensor(for: $0)) }
    }

    /// The whole file's bytes (for checksums).
    public var fileBytes: UnsafeRawBufferPointer { mapping.bytes }
}

/// The header parser and validator, usable on any buffer.
public enum SafetensorsHeader {
    /// What a validated header describes.
    public struct Layout: Sendable {
        public let entries: [SafetensorsEntry]
        public let metadata: [String: String]
        public let headerByteCount: Int
    }

    /// Validates a whole file's bytes and returns its layout.
    public static func parse(_ bytes: UnsafeRawBufferPointer, limits: SafetensorsLimits = .default, path: String?) throws -> Layout {
        func fail(_ code: String, _ message: String) -> TesseraError {
            TesseraError(path: path, stage: .parse, code: "safetensors.\(code)", message)
        }
        let fileSize = bytes.count
        guard fileSize > 0 else { throw fail("empty", "not a safetensors file: the file is empty") }
        guard fileSize >= 8 else {
            throw fail("truncated-length", "not a safetensors file: \(fileSize) bytes is too short for the 8-byte header length")
        }
        let declared = bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian
        guard declared <= UInt64(limits.maxHeaderBytes) else {
            throw fail("header-too-large", "header length \(declared) bytes exceeds the limit of \(limits.maxHeaderBytes)")
        }
        let headerSize = Int(declared)
        guard headerSize <= fileSize - 8 else {
            throw fail("header-past-end", "header length \(headerSize) bytes runs past the end of the \(fileSize)-byte file (truncated?)")
        }
        guard headerSize >= 2 else { throw fail("invalid-json", "header of \(headerSize) bytes cannot hold a JSON object") }
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + headerSize)])
        let json: JSONValue
        do {
            json = try JSONValue.parse(headerBytes, maxDepth: 8)
        } catch {
            throw fail("invalid-json", "header is not valid JSON: \(error)")
        }
        guard case .object(let object) = json else {
            throw fail("header-not-object", "header is JSON \(json.kindName), not an object")
        }
        var metadata: [String: String] = [:]
        var entries: [SafetensorsEntry] = []
        let dataSize = fileSize - 8 - headerSize
        for (name, value) in object.members {
            if name == "__metadata__" {
                guard case .object(let map) = value else {
                    throw fail("bad-metadata", "__metadata__ is \(value.kindName), not an object of strings")
                }
                for (key, item) in map.members {
                    guard case .string(let text) = item else {
                        throw fail("bad-metadata", "__metadata__[\"\(key)\"] is \(item.kindName), not a string")
                    }
                    metadata[key] = text
                }
                continue
            }
            entries.append(try parseEntry(name: name, value: value, dataSize: dataSize, fail: fail))
        }
        entries.sort { ($0.dataRange.lowerBound, $0.dataRange.upperBound) < ($1.dataRange.lowerBound, $1.dataRange.upperBound) }
        var covered = 0
        var previous: String?
        for entry in entries {
            if entry.dataRange.lowerBound < covered, let previous {
                throw fail("overlap", "tensors \"\(previous)\" and \"\(entry.name)\" overlap (byte \(entry.dataRange.lowerBound) < \(covered))")
            }
            if entry.dataRange.lowerBound > covered {
                throw fail("gap", "\(entry.dataRange.lowerBound - covered) bytes before tensor \"\(entry.name)\" belong to no tensor")
            }
            covered = entry.dataRange.upperBound
            previous = entry.name
        }
        guard covered == dataSize else {
            throw fail("trailing-bytes", "the tensors cover \(covered) of the \(dataSize) data bytes; the rest belongs to no tensor")
        }
        return Layout(entries: entries, metadata: metadata, headerByteCount: headerSize)
    }

    private static func parseEntry(name: String, value: JSONValue, dataSize: Int,
                                   fail: (String, String) -> TesseraError) throws -> SafetensorsEntry {
        guard case .object(let fields) = value else {
            throw fail("bad-entry", "tensor \"\(name)\" is \(value.kindName), not an object")
        }
        guard let dtypeName = fields["dtype"]?.stringValue else {
            throw fail("bad-entry", "tensor \"\(name)\" has no string \"dtype\"")
        }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw fail("unknown-dtype", "tensor \"\(name)\" has unknown dtype \"\(dtypeName)\"")
        }
        guard let shapeItems = fields["shape"]?.arrayValue else {
            throw fail("bad-shape", "tensor \"\(name)\" has no \"shape\" array")
        }
        var shape: [Int] = []
        for item in shapeItems {
            guard case .number(let text) = item else {
                throw fail("bad-shape", "tensor \"\(name)\" has a non-numeric dimension in its shape")
            }
            guard let dimension = item.int64Value else {
                throw fail("shape-overflow", "tensor \"\(name)\" has dimension \(text), not an integer that fits in 64 bits")
            }
            guard dimension >= 0 else {
                throw fail("bad-shape", "tensor \"\(name)\" has negative dimension \(dimension)")
            }
            shape.append(Int(dimension))
        }
        guard let offsets = fields["data_offsets"]?.arrayValue, offsets.count == 2 else {
            throw fail("bad-offsets", "tensor \"\(name)\" has no \"data_offsets\" pair")
        }
        guard let begin = offsets[0].int64Value, let end = offsets[1].int64Value, begin >= 0, end >= begin else {
            throw fail("bad-offsets", "tensor \"\(name)\" has invalid data_offsets \(JSONValue.array(offsets).serialized())")
        }
        var byteCount = dtype.byteSize
        for dimension in shape {
            let (product, overflow) = byteCount.multipliedReportingOverflow(by: dimension)
            guard !overflow else {
                throw fail("shape-overflow", "tensor \"\(name)\" shape \(shape) overflows a 64-bit byte count")
            }
            byteCount = product
        }
        guard byteCount == end - begin else {
            throw fail("shape-offsets-mismatch",
                       "tensor \"\(name)\" is \(dtype.rawValue) \(shape) = \(byteCount) bytes, but its data_offsets span \(end - begin)")
        }
        guard end <= dataSize else {
            throw fail("offsets-past-end", "tensor \"\(name)\" data_offsets [\(begin), \(end)] run past the \(dataSize)-byte data area")
        }
        return SafetensorsEntry(name: name, dtype: dtype, shape: shape, dataRange: Int(begin)..<Int(end))
    }
}
