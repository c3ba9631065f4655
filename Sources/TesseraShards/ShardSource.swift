// The loader's reading side: opens shards (checking them against the manifest the first time), keeps a
// bounded set of them mapped, and copies sample rows into batch buffers, normalising as it goes.
import CTesseraKernels
import TesseraCore

/// How one schema tensor becomes a batch tensor.
struct FieldPlan {
    let name: String
    let stored: DType
    let outputType: DType
    let shape: [Int]
    let perSample: Int
    var storedBytesPerSample: Int { perSample * stored.byteSize }
    var outputBytesPerSample: Int { perSample * outputType.byteSize }
    /// y = x * gain[c] + offset[c] over runs of `inner` elements: (outer x channels) runs per sample.
    let normalization: (gain: [Float], offset: [Float], outer: Int, channels: Int, inner: Int)?
    /// The modality mask whose zero rows make this tensor's normalised rows zero (an absent modality stays
    /// zeros rather than becoming -mean/std).
    let maskName: String?

    init(schema: TensorSchema, manifest: DatasetManifest, path: String) throws {
        func fail(_ message: String) -> TesseraError {
            TesseraError(path: path, stage: .config, code: "loader.bad-schema", "tensor \(schema.name): \(message)")
        }
        name = schema.name
        stored = schema.dtype
        shape = schema.shape
        var elements = 1
        for extent in schema.shape {
            guard extent >= 0 else { throw fail("negative extent in shape \(schema.shape)") }
            let (product, overflow) = elements.multipliedReportingOverflow(by: extent)
            guard !overflow, product * schema.dtype.byteSize <= DatasetManifest.maximumTensorBytes else { throw fail("a sample is larger than 1 GiB") }
            elements = product
        }
        perSample = elements
        guard let normalize = schema.normalize else {
            outputType = schema.dtype
            normalization = nil
            maskName = nil
            return
        }
        guard schema.dtype == .uint8 || schema.dtype == .float32 else {
            throw fail("normalisation of \(schema.dtype.rawValue) values is not supported (U8 or F32)")
        }
        guard normalize.std.allSatisfy({ $0.isFinite && $0 != 0 }), normalize.mean.allSatisfy(\.isFinite), normalize.scale.isFinite else {
            throw fail("normalisation needs finite means and finite non-zero standard deviations")
        }
        let channels = normalize.mean.count
        var outer = 1, inner = elements
        if channels > 1 {
            guard normalize.axis < schema.shape.count, schema.shape[normalize.axis] == channels else {
                throw fail("\(channels) channel means, but axis \(normalize.axis) of shape \(schema.shape) does not have \(channels) entries")
            }
            outer = schema.shape[..<normalize.axis].reduce(1, *)
            inner = schema.shape[(normalize.axis + 1)...].reduce(1, *)
        }
        // (x * scale - mean) / std = x * (scale / std) + (-mean / std), folded in double precision.
        normalization = (normalize.std.map { Float(normalize.scale / $0) }, zip(normalize.mean, normalize.std).map { Float(-$0 / $1) },
                         outer, channels, inner)
        outputType = .float32
        let modality = schema.name.split(separator: "_").first.map(String.init) ?? schema.name
        let mask = "mask_" + modality
        maskName = manifest.tensor(mask).map { $0.dtype == .uint8 && $0.shape.isEmpty } == true ? mask : nil
    }

    /// Writes one sample's model-ready values from the stored row `src` to `dst`.
    func convert(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, present: Bool) {
        guard let normalization else {
            dst.copyMemory(from: src, byteCount: storedBytesPerSample)
            return
        }
        let out = dst.assumingMemoryBound(to: Float.self)
        guard present else {
            out.update(repeating: 0, count: perSample)
            return
        }
        let inner = normalization.inner
        var offset = 0
        for _ in 0..<normalization.outer {
            for c in 0..<normalization.channels {
                let gain = normalization.gain[c], bias = normalization.offset[c]
                let o = out + offset
                switch stored {
                case .uint8:
                    tessera_affine_u8_f32(src.assumingMemoryBound(to: UInt8.self) + offset, o, inner, gain, bias)
                default:
                    tessera_affine_f32_f32(src + offset * 4, o, inner, gain, bias)
                }
                offset += inner
            }
        }
    }
}

/// One open shard: its mapping and where each planned tensor's rows start.
private final class OpenShard {
    let file: SafetensorsFile
    let rows: [UnsafeRawPointer]
    let masks: [UnsafeRawPointer?]
    let keys: [String]

    init(file: SafetensorsFile, rows: [UnsafeRawPointer], masks: [UnsafeRawPointer?], keys: [String]) {
        self.file = file
        self.rows = rows
        self.masks = masks
        self.keys = keys
    }
}

/// Opens shards on demand (at most `maxOpen` mapped at once) and fills batches from them.
final class ShardSource: @unchecked Sendable {
    // @unchecked: used by one loader thread at a time; the shard list and plans are immutable.
    let folder: String
    let shards: [ShardInfo]
    let plans: [FieldPlan]
    private let starts: [Int]
    private let verify: Bool
    private let maxOpen: Int
    private var open: [Int: OpenShard] = [:]
    private var recent: [Int] = []
    private var verified = Set<Int>()

    init(folder: String, shards: [ShardInfo], plans: [FieldPlan], verify: Bool, maxOpen: Int) {
        self.folder = folder
        self.shards = shards
        self.plans = plans
        self.verify = verify
        self.maxOpen = max(maxOpen, 1)
        var starts: [Int] = []
        var total = 0
        for shard in shards {
            starts.append(total)
            total += shard.samples
        }
        self.starts = starts
    }

    /// The shard holding split sample `index` (a binary search over the shard starts).
    private func shardIndex(of index: Int) -> Int {
        var lo = 0, hi = starts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if starts[mid] <= index { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    /// Copies the samples `indices` into `batch` (rows 0..<indices.count).
    func fill(_ batch: LoaderBatch, with indices: ArraySlice<Int>) throws {
        batch.count = indices.count
        batch.keys.removeAll(keepingCapacity: true)
        batch.indices.removeAll(keepingCapacity: true)
        for (row, index) in indices.enumerated() {
            let s = shardIndex(of: index)
            let shard = try openShard(s)
            let r = index - starts[s]
            for (f, plan) in plans.enumerated() {
                let present = shard.masks[f].map { $0.load(fromByteOffset: r, as: UInt8.self) != 0 } ?? true
                plan.convert(shard.rows[f] + r * plan.storedBytesPerSample, batch.storage[f] + row * plan.outputBytesPerSample, present: present)
            }
            batch.keys.append(r < shard.keys.count ? shard.keys[r] : "\(shards[s].file)#\(r)")
            batch.indices.append(index)
        }
    }

    private func openShard(_ s: Int) throws -> OpenShard {
        if let shard = open[s] {
            if recent.last != s, let i = recent.firstIndex(of: s) {
                recent.remove(at: i)
                recent.append(s)
            }
            return shard
        }
        let shard = try load(s)
        if open.count >= maxOpen, let oldest = recent.first {
            open[oldest] = nil
            recent.removeFirst()
        }
        open[s] = shard
        recent.append(s)
        return shard
    }

    /// Maps shard `s` and checks it against the manifest: size, SHA-256 (first time, when asked), header,
    /// and every planned tensor's dtype and shape.
    private func load(_ s: Int) throws -> OpenShard {
        let info = shards[s]
        let path = FilePath.join(folder, info.file)
        func fail(_ code: String, _ message: String) -> TesseraError { TesseraError(path: path, stage: .read, code: code, message) }
        guard SystemCall.fileSize(path) != nil else { throw TesseraError(path: path, stage: .open, code: "loader.missing-shard", "shard listed in the manifest is missing") }
        let mapping = try MappedFile(path: path)
        guard mapping.bytes.count == info.bytes else {
            throw fail("loader.shard-size", "shard is \(mapping.bytes.count) bytes, the manifest says \(info.bytes) (truncated or replaced)")
        }
        if verify && !verified.contains(s) {
            let digest = SHA256Digest.hex(mapping.bytes)
            guard digest == info.sha256 else {
                throw fail("loader.checksum", "SHA-256 \(digest) differs from the manifest's \(info.sha256): the shard is corrupted or was changed "
                           + "(`tessera verify` checks the whole dataset)")
            }
            verified.insert(s)
        }
        let file: SafetensorsFile
        do { file = try SafetensorsFile(mapping: mapping) } catch let error as TesseraError {
            throw fail("loader.bad-shard", "not a valid safetensors file: \(error.message)")
        }
        guard let base = file.fileBytes.baseAddress else { throw fail("loader.bad-shard", "empty shard") }
        func rows(_ name: String, _ dtype: DType, _ shape: [Int]) throws -> UnsafeRawPointer {
            guard let entry = file.entry(name) else { throw fail("loader.bad-shard", "tensor \(name) is missing") }
            guard entry.dtype == dtype, entry.shape == [info.samples] + shape else {
                throw fail("loader.bad-shard", "tensor \(name) is \(entry.dtype.rawValue) \(entry.shape), the manifest says \(dtype.rawValue) \([info.samples] + shape)")
            }
            return base + file.dataOffset + entry.dataRange.lowerBound
        }
        var rowBases: [UnsafeRawPointer] = [], maskBases: [UnsafeRawPointer?] = []
        for plan in plans {
            rowBases.append(try rows(plan.name, plan.stored, plan.shape))
            maskBases.append(try plan.maskName.map { try rows($0, .uint8, []) })
        }
        var keys: [String] = []
        if let text = file.metadata["keys"], let list = try? JSONValue.parse(text).arrayValue {
            keys = list.compactMap(\.stringValue)
        }
        return OpenShard(file: file, rows: rowBases, masks: maskBases, keys: keys)
    }
}
