// manifest.json: what a Tessera dataset folder holds. Written last and atomically by ingest; read by
// inspect, verify, the streaming loader and the Python reader. Specified in docs/SHARD-FORMAT.md.
import TesseraCore

/// One shard file of a split.
public struct ShardInfo: Sendable, Equatable {
    /// Path relative to the dataset folder, e.g. `train/shard-000000.safetensors`.
    public var file: String
    public var samples: Int
    public var bytes: Int
    /// SHA-256 of the whole file, lower-case hex.
    public var sha256: String

    public init(file: String, samples: Int, bytes: Int, sha256: String) {
        self.file = file
        self.samples = samples
        self.bytes = bytes
        self.sha256 = sha256
    }

    var json: JSONValue {
        .object(JSONObject([("file", .string(file)), ("samples", .int(samples)), ("bytes", .int(bytes)), ("sha256", .string(sha256))]))
    }
}

/// One split (train, val, test) and its shards.
public struct SplitInfo: Sendable, Equatable {
    public var name: String
    public var shards: [ShardInfo]
    public var samples: Int { shards.reduce(0) { $0 + $1.samples } }

    public init(name: String, shards: [ShardInfo]) {
        self.name = name
        self.shards = shards
    }
}

/// How to turn a stored tensor into model input: `(x * scale - mean[c]) / std[c]`, per channel or one value
/// for all. The channel is the index along the per-sample axis `axis` (0 for CHW images, 2 for HWC).
public struct Normalization: Sendable, Equatable {
    public var scale: Double
    public var mean: [Double]
    public var std: [Double]
    /// The per-sample axis the channels run along (written to JSON only when not 0).
    public var axis: Int

    public init(scale: Double = 1, mean: [Double], std: [Double], axis: Int = 0) {
        self.scale = scale
        self.mean = mean
        self.std = std
        self.axis = axis
    }

    var json: JSONValue {
        var object = JSONObject([("scale", .double(scale)), ("mean", .array(mean.map { .double($0) })), ("std", .array(std.map { .double($0) }))])
        if axis != 0 { object["axis"] = .int(axis) }
        return .object(object)
    }

    init?(json: JSONValue?) {
        guard let json, let mean = json["mean"]?.arrayValue?.compactMap(\.doubleValue),
              let std = json["std"]?.arrayValue?.compactMap(\.doubleValue), !mean.isEmpty, mean.count == std.count else { return nil }
        let axis = json["axis"]?.intValue ?? 0
        guard axis >= 0 else { return nil }
        self.init(scale: json["scale"]?.doubleValue ?? 1, mean: mean, std: std, axis: axis)
    }
}

/// The schema of one tensor in every shard: dtype and per-sample shape (the shard adds a leading N).
public struct TensorSchema: Sendable, Equatable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    public var normalize: Normalization?
    /// Further facts (layout, tokenizer, pad id, label names, ...), stored as given.
    public var extra: JSONObject

    public init(name: String, dtype: DType, shape: [Int], normalize: Normalization? = nil, extra: JSONObject = JSONObject()) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.normalize = normalize
        self.extra = extra
    }

    /// Bytes of one sample.
    public var sampleBytes: Int { shape.reduce(dtype.byteSize, *) }

    var json: JSONValue {
        var object = JSONObject([("dtype", .string(dtype.rawValue)), ("shape", .array(shape.map { .int($0) }))])
        if let normalize { object["normalize"] = normalize.json }
        for (key, value) in extra.members { object[key] = value }
        return .object(object)
    }
}

/// The whole manifest.
public struct DatasetManifest: Sendable {
    public static let formatName = "tessera-dataset"
    /// The largest tensor of one sample, as stored, that a dataset may hold: checked by ingest before it
    /// writes, by the manifest's reader and by the loader before they allocate.
    public static let maximumTensorBytes = 1 << 30
    public static let formatVersion = 1

    public var tool: String
    /// The ingest configuration, as given (JSON).
    public var config: JSONValue
    public var modalities: [String]
    public var schema: [TensorSchema]
    public var splits: [SplitInfo]
    public var statistics: JSONValue
    public var errors: JSONValue
    public var inputs: JSONValue

    public init(tool: String, config: JSONValue, modalities: [String], schema: [TensorSchema], splits: [SplitInfo],
                statistics: JSONValue, errors: JSONValue, inputs: JSONValue) {
        self.tool = tool
        self.config = config
        self.modalities = modalities
        self.schema = schema
        self.splits = splits
        self.statistics = statistics
        self.errors = errors
        self.inputs = inputs
    }

    public func tensor(_ name: String) -> TensorSchema? { schema.first { $0.name == name } }
    public func split(_ name: String) -> SplitInfo? { splits.first { $0.name == name } }
    public var sampleCount: Int { splits.reduce(0) { $0 + $1.samples } }

    /// The manifest as pretty JSON, members in a fixed order (byte-reproducible).
    public func serialized() -> String {
        let object = JSONObject([
            ("format", .string(DatasetManifest.formatName)),
            ("format_version", .int(DatasetManifest.formatVersion)),
            ("tool", .string(tool)),
            ("modalities", .array(modalities.map { .string($0) })),
            ("schema", .object(JSONObject(schema.map { ($0.name, $0.json) }))),
            ("splits", .object(JSONObject(splits.map { split in
                (split.name, JSONValue.object(JSONObject([("samples", .int(split.samples)), ("shards", .array(split.shards.map(\.json)))])))
            }))),
            ("statistics", statistics),
            ("errors", errors),
            ("inputs", inputs),
            ("config", config),
        ])
        return JSONValue.object(object).prettySerialized() + "\n"
    }

    /// More samples than a dataset could hold, small enough that counts and offsets never overflow.
    public static let maximumSamples = 1 << 40

    /// Reads `folder/manifest.json`.
    public static func load(folder: String) throws -> DatasetManifest {
        let path = FilePath.join(folder, "manifest.json")
        guard FilePath.exists(path) else {
            throw TesseraError(path: folder, stage: .open, code: "dataset.no-manifest",
                               "no manifest.json: not a Tessera dataset, or an ingest that has not finished (tessera ingest --resume)")
        }
        let bytes = try FilePath.readAll(path, limit: 1 << 30)
        func fail(_ why: String) -> TesseraError { TesseraError(path: path, stage: .parse, code: "dataset.bad-manifest", why) }
        let json: JSONValue
        do { json = try JSONValue.parse(bytes, maxDepth: 64) } catch { throw fail("not valid JSON: \(error)") }
        guard json["format"]?.stringValue == formatName else { throw fail("not a \(formatName) manifest") }
        guard let version = json["format_version"]?.intValue, version <= formatVersion else {
            throw fail("format version \(json["format_version"]?.serialized() ?? "?") is newer than this tool's (\(formatVersion))")
        }
        var schema: [TensorSchema] = []
        for (name, item) in json["schema"]?.objectValue?.members ?? [] {
            guard let dtypeName = item["dtype"]?.stringValue, let dtype = DType(rawValue: dtypeName),
                  let dims = item["shape"]?.arrayValue else { throw fail("schema of \(name) needs dtype and shape") }
            // Sizes are checked here, before any reader allocates by them.
            let shape = dims.compactMap(\.intValue)
            guard shape.count == dims.count, shape.allSatisfy({ $0 >= 1 }), let sampleBytes = try? Tensor.byteSize(dtype: dtype, shape: shape),
                  sampleBytes <= DatasetManifest.maximumTensorBytes else {
                throw fail("schema of \(name): shape \(item["shape"]?.serialized() ?? "?") is not a list of positive sizes of at most 1 GiB per sample")
            }
            let normalize = Normalization(json: item["normalize"])
            if let given = item["normalize"], given != .null {
                guard let normalize, normalize.std.allSatisfy({ $0 > 0 && $0.isFinite }), normalize.mean.allSatisfy(\.isFinite), normalize.scale.isFinite,
                      normalize.mean.count == 1 || (normalize.axis < shape.count && shape[normalize.axis] == normalize.mean.count) else {
                    throw fail("schema of \(name): normalize \(given.serialized()) needs finite means, positive stds and one per channel")
                }
            }
            var extra = JSONObject()
            for (key, value) in item.objectValue?.members ?? [] where !["dtype", "shape", "normalize"].contains(key) { extra[key] = value }
            schema.append(TensorSchema(name: name, dtype: dtype, shape: shape, normalize: normalize, extra: extra))
        }
        var splits: [SplitInfo] = []
        var totalSamples = 0
        let sampleBytes = schema.reduce(0) { $0 + $1.sampleBytes }
        for (name, item) in json["splits"]?.objectValue?.members ?? [] {
            var shards: [ShardInfo] = []
            for shard in item["shards"]?.arrayValue ?? [] {
                guard let file = shard["file"]?.stringValue, let samples = shard["samples"]?.intValue,
                      let bytes = shard["bytes"]?.intValue, let sha = shard["sha256"]?.stringValue else {
                    throw fail("a shard of split \(name) lacks file, samples, bytes or sha256")
                }
                guard !file.hasPrefix("/"), !file.split(separator: "/").contains("..") else { throw fail("shard path \(file) leaves the dataset folder") }
                // Every sample takes its schema's bytes in the shard (which the readers check against the file's
                // size): a claim beyond that would size per-sample tables by a number the data cannot back.
                let (needed, overflow) = samples.multipliedReportingOverflow(by: max(sampleBytes, 1))
                guard (0...maximumSamples).contains(samples), bytes >= 0, !overflow, needed <= bytes else {
                    throw fail("shard \(file) of split \(name) claims \(samples) samples in \(bytes) bytes, at \(sampleBytes) bytes per sample")
                }
                shards.append(ShardInfo(file: file, samples: samples, bytes: bytes, sha256: sha))
                totalSamples += samples
                guard totalSamples <= maximumSamples else { throw fail("the splits claim more than \(maximumSamples) samples (2^40)") }
            }
            splits.append(SplitInfo(name: name, shards: shards))
        }
        return DatasetManifest(tool: json["tool"]?.stringValue ?? "?", config: json["config"] ?? .null,
                               modalities: json["modalities"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                               schema: schema, splits: splits, statistics: json["statistics"] ?? .null,
                               errors: json["errors"] ?? .null, inputs: json["inputs"] ?? .null)
    }
}
