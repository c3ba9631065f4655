// Dataset statistics gathered in the ingest pass: accumulated per shard in sample order and combined in
// shard order, so the figures are the same bytes whatever the thread count and across resumes.
import TesseraCore

/// Statistics of a run of samples (one shard, or the whole dataset once combined).
struct StatisticsAccumulator: Sendable, Equatable {
    var imageSum: [Double] = []
    var imageSquares: [Double] = []
    var imagePixels = 0
    var melSum = 0.0
    var melSquares = 0.0
    var melCount = 0
    var audioSeconds: [Double] = []
    var audioPeaks: [Double] = []
    var audioRMS: [Double] = []
    var tokens: [Int] = []
    var truncated = 0
    var presence: [String: Int] = [:]
    var samples = 0

    mutating func add(_ sample: DecodedSample) {
        samples += 1
        for modality in sample.present { presence[modality.rawValue, default: 0] += 1 }
        let s = sample.statistics
        if !s.imageSum.isEmpty {
            if imageSum.isEmpty {
                imageSum = [Double](repeating: 0, count: s.imageSum.count)
                imageSquares = imageSum
            }
            for k in s.imageSum.indices where k < imageSum.count {
                imageSum[k] += s.imageSum[k]
                imageSquares[k] += s.imageSquares[k]
            }
            imagePixels += s.imagePixels
        }
        melSum += s.melSum
        melSquares += s.melSquares
        melCount += s.melCount
        if let seconds = s.audioSeconds { audioSeconds.append(seconds) }
        if let peak = s.audioPeak { audioPeaks.append(peak) }
        if let rms = s.audioRMS { audioRMS.append(rms) }
        if let count = s.tokens {
            tokens.append(count)
            if s.truncated { truncated += 1 }
        }
    }

    /// Makes room for `count` samples' values at once: growing by doubling would leave up to as much again
    /// unused (and freed copies behind) on a large corpus.
    mutating func reserve(_ count: Int, audio: Bool, text: Bool) {
        if audio {
            audioSeconds.reserveCapacity(count)
            audioPeaks.reserveCapacity(count)
            audioRMS.reserveCapacity(count)
        }
        if text { tokens.reserveCapacity(count) }
    }

    mutating func merge(_ other: StatisticsAccumulator) {
        if imageSum.isEmpty {
            imageSum = other.imageSum
            imageSquares = other.imageSquares
        } else {
            for k in other.imageSum.indices where k < imageSum.count {
                imageSum[k] += other.imageSum[k]
                imageSquares[k] += other.imageSquares[k]
            }
        }
        imagePixels += other.imagePixels
        melSum += other.melSum
        melSquares += other.melSquares
        melCount += other.melCount
        audioSeconds += other.audioSeconds
        audioPeaks += other.audioPeaks
        audioRMS += other.audioRMS
        tokens += other.tokens
        truncated += other.truncated
        for (k, v) in other.presence { presence[k, default: 0] += v }
        samples += other.samples
    }

    /// Per-channel image mean and std (0-1 units), when images were seen.
    var imageMeanStd: (mean: [Double], std: [Double])? {
        guard imagePixels > 0 else { return nil }
        let n = Double(imagePixels)
        let mean = imageSum.map { $0 / n }
        let std = zip(imageSquares, mean).map { max($0 / n - $1 * $1, 0).squareRoot() }
        return (mean, std)
    }

    var melMeanStd: (mean: Double, std: Double)? {
        guard melCount > 0 else { return nil }
        let n = Double(melCount)
        let mean = melSum / n
        return (mean, max(melSquares / n - mean * mean, 0).squareRoot())
    }

    // MARK: journal form

    var json: JSONValue {
        .object(JSONObject([
            ("image_sum", .array(imageSum.map { .double($0) })), ("image_squares", .array(imageSquares.map { .double($0) })),
            ("image_pixels", .int(imagePixels)), ("mel_sum", .double(melSum)), ("mel_squares", .double(melSquares)), ("mel_count", .int(melCount)),
            ("audio_seconds", .array(audioSeconds.map { .double($0) })), ("audio_peaks", .array(audioPeaks.map { .double($0) })),
            ("audio_rms", .array(audioRMS.map { .double($0) })), ("tokens", .array(tokens.map { .int($0) })), ("truncated", .int(truncated)),
            ("presence", .object(JSONObject(presence.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.int($0.value)) }))),
            ("samples", .int(samples)),
        ]))
    }

    init() {}

    init?(json: JSONValue) {
        func doubles(_ key: String) -> [Double]? { json[key]?.arrayValue?.compactMap(\.doubleValue) }
        guard let samples = json["samples"]?.intValue else { return nil }
        imageSum = doubles("image_sum") ?? []
        imageSquares = doubles("image_squares") ?? []
        imagePixels = json["image_pixels"]?.intValue ?? 0
        melSum = json["mel_sum"]?.doubleValue ?? 0
        melSquares = json["mel_squares"]?.doubleValue ?? 0
        melCount = json["mel_count"]?.intValue ?? 0
        audioSeconds = doubles("audio_seconds") ?? []
        audioPeaks = doubles("audio_peaks") ?? []
        audioRMS = doubles("audio_rms") ?? []
        tokens = json["tokens"]?.arrayValue?.compactMap(\.intValue) ?? []
        truncated = json["truncated"]?.intValue ?? 0
        for (k, v) in json["presence"]?.objectValue?.members ?? [] { presence[k] = v.intValue ?? 0 }
        self.samples = samples
    }

    // MARK: manifest form

    /// The statistics section of the manifest.
    func manifestJSON(errorsBySplit: [String: Int] = [:]) -> JSONValue {
        var object = JSONObject([("samples", .int(samples)),
                                 ("presence", .object(JSONObject(presence.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.int($0.value)) })))])
        if let (mean, std) = imageMeanStd {
            object["image"] = .object(JSONObject([("pixels", .int(imagePixels)), ("mean", .array(mean.map { .double($0) })),
                                                  ("std", .array(std.map { .double($0) }))]))
        }
        if !audioSeconds.isEmpty {
            var audio = JSONObject([("seconds", StatisticsAccumulator.summary(audioSeconds)),
                                    ("peak", StatisticsAccumulator.summary(audioPeaks)), ("rms", StatisticsAccumulator.summary(audioRMS))])
            if let (mean, std) = melMeanStd { audio["mel_mean"] = .double(mean); audio["mel_std"] = .double(std) }
            object["audio"] = .object(audio)
        }
        if !tokens.isEmpty {
            object["text"] = .object(JSONObject([("tokens", StatisticsAccumulator.summary(tokens.map(Double.init))),
                                                 ("truncated_samples", .int(truncated))]))
        }
        return .object(object)
    }

    /// min, mean, max and the 50th, 90th and 99th percentiles (nearest rank).
    static func summary(_ values: [Double]) -> JSONValue {
        guard !values.isEmpty else { return .null }
        let sorted = values.sorted()
        func percentile(_ p: Double) -> Double {
            let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
            return sorted[max(0, min(sorted.count - 1, rank - 1))]
        }
        let mean = values.reduce(0, +) / Double(values.count)
        return .object(JSONObject([("min", .double(sorted[0])), ("mean", .double(mean)), ("p50", .double(percentile(50))),
                                   ("p90", .double(percentile(90))), ("p99", .double(percentile(99))), ("max", .double(sorted[sorted.count - 1]))]))
    }
}
