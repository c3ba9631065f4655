// Decoding one sample: each modality through the same code `tessera decode` uses, failures recorded per
// file, per-sample statistics for the manifest.
import TesseraAudio
import TesseraCore
import TesseraImage
import TesseraShards
import TesseraText

/// Per-sample facts the manifest's statistics are made from.
struct SampleStatistics: Sendable {
    /// Per image channel: sum of x and of x² (x in 0...1) and the number of pixels.
    var imageSum: [Double] = []
    var imageSquares: [Double] = []
    var imagePixels = 0
    var audioSeconds: Double?
    var audioPeak: Double?
    var audioRMS: Double?
    var melSum = 0.0
    var melSquares = 0.0
    var melCount = 0
    var tokens: Int?
    var truncated = false
}

/// What one sample became.
struct DecodedSample: Sendable {
    var key: String
    /// nil when the sample is left out.
    var tensors: SampleTensors?
    var present: Set<Modality>
    var statistics: SampleStatistics
    var errors: [IngestErrorRecord]
}

/// Decodes samples under one configuration. Thread-safe.
final class SampleDecoder: Sendable {
    let config: IngestConfig
    let modalities: [Modality]
    let textEncoder: TextEncoder?
    let hasLabels: Bool

    init(config: IngestConfig, modalities: [Modality], hasLabels: Bool) throws {
        self.config = config
        self.modalities = modalities
        self.hasLabels = hasLabels
        textEncoder = modalities.contains(.text) ? try TextEncoder(config: config.text) : nil
    }

    func decode(_ sample: SampleSource) -> DecodedSample {
        let key = sample.key
        var tensors: SampleTensors = [:]
        var present = Set<Modality>()
        var stats = SampleStatistics()
        var errors: [IngestErrorRecord] = []
        func record(_ modality: Modality, _ path: String, _ error: Error) {
            let e = error.asTesseraError(path: path, stage: .decode)
            errors.append(IngestErrorRecord(key: key, path: path, modality: modality.rawValue, stage: e.stage.rawValue,
                                            code: e.code, message: e.message))
        }
        for modality in modalities {
            guard let path = sample.path(modality) else { continue }
            do {
                switch modality {
                case .image:
                    let (tensor, _) = try ImageDecoding.decode(path: path, config: config.image)
                    tensors["image"] = tensor
                    if config.image.dtype == .uint8 { SampleDecoder.imageStatistics(tensor, config.image, into: &stats) }
                case .audio:
                    let seed = SampleDecoder.cropSeed(config.seed, key)
                    let decoded = try AudioDecoding.decode(path: path, config: config.audio, cropSeed: seed)
                    if let waveform = decoded.waveform { tensors["audio"] = waveform }
                    if let mel = decoded.mel {
                        tensors["audio_mel"] = mel
                        try mel.withScalars(Float.self) { values in
                            var sum = 0.0, squares = 0.0
                            for v in values { sum += Double(v); squares += Double(v) * Double(v) }
                            stats.melSum = sum
                            stats.melSquares = squares
                            stats.melCount = values.count
                        }
                    }
                    stats.audioSeconds = decoded.info.duration
                    stats.audioPeak = Double(decoded.info.peak)
                    stats.audioRMS = Double(decoded.info.rms)
                case .text:
                    guard let textEncoder else { continue }
                    let encoded = try textEncoder.encode(path: path)
                    tensors["text_ids"] = encoded.ids
                    tensors["text_len"] = try Tensor(shape: [], scalars: [Int32(encoded.length)])
                    stats.tokens = encoded.untruncatedLength
                    stats.truncated = encoded.untruncatedLength > encoded.length
                }
                present.insert(modality)
            } catch {
                record(modality, path, error)
            }
        }
        let failed = Set(errors.compactMap { Modality(rawValue: $0.modality) })
        let missingRequired = config.require.filter { !present.contains($0) && !failed.contains($0) && !sample.has($0) }
        for modality in missingRequired {
            errors.append(IngestErrorRecord(key: key, path: "", modality: modality.rawValue, stage: "require", code: "ingest.missing-required",
                                            message: "no \(modality.rawValue) file, and --require names it"))
        }
        var keep = errors.isEmpty
        if !keep && config.onError == .dropModality && missingRequired.isEmpty {
            // Keep what decoded, unless a required modality is among the failures or nothing is left.
            keep = !present.isEmpty && config.require.allSatisfy { present.contains($0) }
        }
        guard keep else { return DecodedSample(key: key, tensors: nil, present: [], statistics: SampleStatistics(), errors: errors) }
        for modality in modalities {
            tensors["mask_" + modality.rawValue] = try? Tensor(shape: [], scalars: [UInt8(present.contains(modality) ? 1 : 0)])
        }
        if hasLabels { tensors["label"] = try? Tensor(shape: [], scalars: [Int32(sample.label ?? -1)]) }
        return DecodedSample(key: key, tensors: tensors, present: present, statistics: stats, errors: errors)
    }

    /// The seed of a random audio crop: the run's seed and the sample key, so it does not depend on order.
    static func cropSeed(_ seed: UInt64, _ key: String) -> UInt64 {
        seed ^ SHA256Digest.leadingWord(of: key)
    }

    static func imageStatistics(_ tensor: Tensor, _ config: ImageConfig, into stats: inout SampleStatistics) {
        let c = config.channels
        let count = tensor.count / c
        var sums = [Double](repeating: 0, count: c), squares = [Double](repeating: 0, count: c)
        _ = try? tensor.withScalars(UInt8.self) { values in
            guard let base = values.baseAddress, values.count >= count * c else { return }
            let planar = config.layout == .chw
            for k in 0..<c {
                let channel = planar ? base + k * count : base + k, step = planar ? 1 : c
                var s: UInt64 = 0, q: UInt64 = 0
                // 32-bit sums over chunks that cannot overflow them (4096 x 255^2 < 2^32): vectorisable.
                var start = 0
                while start < count {
                    let end = min(count, start + 4096)
                    var chunkSum: UInt32 = 0, chunkSquares: UInt32 = 0
                    if step == 1 {
                        for i in start..<end {
                            let v = UInt32(channel[i])
                            chunkSum &+= v
                            chunkSquares &+= v &* v
                        }
                    } else {
                        for i in start..<end {
                            let v = UInt32(channel[i * step])
                            chunkSum &+= v
                            chunkSquares &+= v &* v
                        }
                    }
                    s += UInt64(chunkSum)
                    q += UInt64(chunkSquares)
                    start = end
                }
                sums[k] = Double(s) / 255
                squares[k] = Double(q) / (255 * 255)
            }
        }
        stats.imageSum = sums
        stats.imageSquares = squares
        stats.imagePixels = count
    }
}
