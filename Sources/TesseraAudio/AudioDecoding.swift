// The audio pipeline: header and limits, plan which frames to read, read (seeking), downmix, resample
// with soxr, crop or pad, normalise, log-mel. `tessera decode` and ingest both call this.
import TesseraCore
#if canImport(Glibc)
import Glibc
#endif

/// What decoding one audio file found out.
public struct AudioInfo: Sendable, Equatable {
    public var header: SoundFileInfo
    /// Seconds of audio in the file.
    public var duration: Double
    /// Frames actually read from the file (a crop reads only what it needs).
    public var framesRead: Int
    /// Output rate and length.
    public var outputRate: Int
    public var outputSamples: Int
    /// Peak |x| and RMS of the output waveform before normalisation.
    public var peak: Float
    public var rms: Float

    /// `WAV (Microsoft), Signed 16 bit PCM, 22050 Hz, 2 channels, 2.134 s`.
    public var summary: String {
        "\(header.container), \(header.encoding), \(header.rate) Hz, \(header.channels) channel\(header.channels == 1 ? "" : "s"), "
            + fixed(duration, 3) + " s"
    }
}

/// The tensors one audio file becomes.
public struct DecodedAudio: Sendable {
    /// `audio`: [channels, samples] float32, when the config asks for the waveform.
    public var waveform: Tensor?
    /// `audio_mel`: [bands, frames] (mono) or [channels, bands, frames] float32, when mel bins > 0.
    public var mel: Tensor?
    public var info: AudioInfo
}

public enum AudioDecoding {
    /// Largest accepted magnitude of a sample in a float file.
    public static let largestFloatSample: Float = 1e6

    /// Decodes the file at `path`. `cropSeed` drives `crop = random` (ingest derives it from the key).
    public static func decode(path: String, config: AudioConfig, cropSeed: UInt64 = 0) throws -> DecodedAudio {
        do {
            // Large files are mapped: a crop of a huge file touches only the pages it reads.
            let contents = try FileContents(path: path)
            return try decode(bytes: contents.bytes, config: config, cropSeed: cropSeed)
        } catch {
            throw error.asTesseraError(path: path, stage: .decode)
        }
    }

    /// Decodes audio held in memory (any format libsndfile reads, recognised by content).
    public static func decode(bytes: UnsafeRawBufferPointer, config: AudioConfig, cropSeed: UInt64 = 0) throws -> DecodedAudio {
        try config.validate()
        guard bytes.count > 0 else { throw TesseraError(stage: .decode, code: "audio.empty", "empty file, not audio") }
        let file = try SoundFile(bytes: bytes)
        let header = file.info
        guard header.rate > 0, header.channels > 0 else {
            throw TesseraError(stage: .decode, code: "audio.corrupt", "header says \(header.rate) Hz, \(header.channels) channels")
        }
        guard header.channels <= config.maxChannels else {
            throw TesseraError(stage: .decode, code: "audio.too-large", "\(header.channels) channels, over the limit of \(config.maxChannels)")
        }
        if let missing = header.missingBytes, !config.acceptTruncated {
            throw TesseraError(stage: .decode, code: "audio.truncated",
                               "truncated: the header declares \(missing) more bytes of audio than the file holds (--audio-accept-truncated reads what is there)")
        }
        guard header.frames > 0 else { throw TesseraError(stage: .decode, code: "audio.empty", "the file holds no audio frames") }
        let outRate = config.rate == 0 ? header.rate : config.rate
        if config.producesMel, let fmax = config.fmax, fmax > Double(outRate) / 2 + 1e-9 {
            throw TesseraError(stage: .config, code: "config.audio", "--fmax \(fmax) is above the Nyquist frequency of \(outRate) Hz")
        }
        let plan = ReadPlan(frames: header.frames, inRate: header.rate, outRate: outRate, config: config, seed: cropSeed)
        let seconds = Double(plan.readCount) / Double(header.rate)
        guard seconds <= config.maxSeconds else {
            throw TesseraError(stage: .decode, code: "audio.too-long",
                               "would read \(fixed(seconds, 1)) s of audio, over the limit of \(fixed(config.maxSeconds, 0)) s (--audio-max-seconds; a fixed --audio-seconds reads only what it needs)")
        }
        let (bytesNeeded, overflow) = plan.readCount.multipliedReportingOverflow(by: header.channels * 4)
        guard !overflow, bytesNeeded <= config.maxDecodedBytes else {
            throw TesseraError(stage: .decode, code: "audio.too-large",
                               "\(plan.readCount) frames x \(header.channels) channels would take \(bytesNeeded) bytes, over the limit of \(config.maxDecodedBytes)")
        }
        if plan.readStart > 0 { try file.seek(to: plan.readStart) }
        var interleaved = try file.readFrames(plan.readCount)
        let framesRead = interleaved.count / header.channels
        if header.isFloat {
            // Float files may legitimately exceed 1.0 (some tools even store int16-scaled floats), but NaN,
            // infinity and magnitudes whose squares overflow float32 arithmetic mean corrupt data.
            var largest: Float = 0
            for x in interleaved {
                guard x.isFinite else {
                    throw TesseraError(stage: .decode, code: "audio.non-finite", "the float samples include NaN or infinity")
                }
                largest = max(largest, abs(x))
            }
            guard largest <= AudioDecoding.largestFloatSample else {
                throw TesseraError(stage: .decode, code: "audio.out-of-range",
                                   "float samples reach \(largest), far outside [-1, 1] (corrupt data?)")
            }
        }
        guard framesRead > 0 || plan.readCount == 0 else {
            throw TesseraError(stage: .decode, code: "audio.corrupt", "no audio data could be read (truncated file?)")
        }
        if framesRead < plan.readCount && !config.acceptTruncated {
            // The header promised frames the data does not hold (a cut FLAC or Ogg file).
            throw TesseraError(stage: .decode, code: "audio.truncated",
                               "truncated: \(plan.readCount) frames expected from the header, \(framesRead) decoded (--audio-accept-truncated reads what is there)")
        }
        var channels = header.channels
        if config.channels == .mono && channels > 1 {
            interleaved = downmix(interleaved, channels: channels)
            channels = 1
        }
        try config.checkOutputSize(samples: plan.outputCount, channels: channels)
        var resampled = try Resampler.resample(interleaved, channels: channels, from: header.rate, to: outRate)
        // Cut the planned window out of what was resampled; pad with zeros to the exact length.
        let available = resampled.count / channels
        let take = plan.outputCount
        var output = [Float](repeating: 0, count: take * channels)
        let from = min(plan.skipOutput, available)
        let n = min(take, available - from)
        if n > 0 {
            resampled.withUnsafeBufferPointer { src in
                output.withUnsafeMutableBufferPointer { dst in
                    guard let s = src.baseAddress, let d = dst.baseAddress else { return }
                    d.update(from: s + from * channels, count: n * channels)
                }
            }
        }
        resampled = []
        let (peak, rms) = levels(output)
        normalize(&output, config: config, peak: peak, rms: rms)
        let info = AudioInfo(header: header, duration: Double(header.frames) / Double(header.rate), framesRead: framesRead,
                             outputRate: outRate, outputSamples: take, peak: peak, rms: rms)
        var result = DecodedAudio(waveform: nil, mel: nil, info: info)
        let planar = channels == 1 ? output : deinterleave(output, channels: channels)
        if config.producesWaveform {
            result.waveform = try Tensor(shape: [channels, take], scalars: planar)
        }
        if config.producesMel {
            let frames = config.frameCount(samples: take)
            var mel: [Float] = []
            mel.reserveCapacity(channels * config.melBins * frames)
            for c in 0..<channels {
                mel += try MelSpectrogram.compute(Array(planar[(c * take)..<((c + 1) * take)]), rate: outRate, config: config)
            }
            let shape = config.channels == .mono ? [config.melBins, frames] : [channels, config.melBins, frames]
            result.mel = try Tensor(shape: shape, scalars: mel)
        }
        return result
    }

    /// The mean of the channels of each frame (as `librosa.to_mono`).
    static func downmix(_ samples: [Float], channels: Int) -> [Float] {
        let frames = samples.count / channels
        let scale = Float(channels)
        return [Float](unsafeUninitializedCapacity: frames) { mono, count in
            samples.withUnsafeBufferPointer { src in
                if channels == 2 {
                    for f in 0..<frames { mono[f] = (src[2 * f] + src[2 * f + 1]) / scale }
                } else {
                    for f in 0..<frames {
                        var sum: Float = 0
                        for c in 0..<channels { sum += src[f * channels + c] }
                        mono[f] = sum / scale
                    }
                }
            }
            count = frames
        }
    }

    /// Interleaved frames to channel planes, one after another.
    static func deinterleave(_ samples: [Float], channels: Int) -> [Float] {
        let frames = samples.count / channels
        var planes = [Float](repeating: 0, count: samples.count)
        samples.withUnsafeBufferPointer { src in
            planes.withUnsafeMutableBufferPointer { dst in
                for c in 0..<channels {
                    for f in 0..<frames { dst[c * frames + f] = src[f * channels + c] }
                }
            }
        }
        return planes
    }

    /// Peak |x| and RMS, with four independent accumulators so the loop is not one long dependency chain.
    static func levels(_ samples: [Float]) -> (peak: Float, rms: Float) {
        guard !samples.isEmpty else { return (0, 0) }
        var p0: Float = 0, p1: Float = 0, p2: Float = 0, p3: Float = 0
        var e0: Float = 0, e1: Float = 0, e2: Float = 0, e3: Float = 0
        var tail: (peak: Float, energy: Float) = (0, 0)
        samples.withUnsafeBufferPointer { x in
            let blocks = x.count / 4
            for b in 0..<blocks {
                let a = x[4 * b], c = x[4 * b + 1], d = x[4 * b + 2], e = x[4 * b + 3]
                p0 = max(p0, abs(a)); p1 = max(p1, abs(c)); p2 = max(p2, abs(d)); p3 = max(p3, abs(e))
                e0 += a * a; e1 += c * c; e2 += d * d; e3 += e * e
            }
            for i in (blocks * 4)..<x.count {
                tail.peak = max(tail.peak, abs(x[i]))
                tail.energy += x[i] * x[i]
            }
        }
        let total = Double(e0) + Double(e1) + Double(e2) + Double(e3) + Double(tail.energy)
        return (max(p0, p1, p2, p3, tail.peak), Float((total / Double(samples.count)).squareRoot()))
    }

    static func normalize(_ samples: inout [Float], config: AudioConfig, peak: Float, rms: Float) {
        let gain: Double
        switch config.normalize {
        case .none: return
        case .peak:
            guard peak > 0 else { return }
            gain = pow(10, (config.targetLevel ?? 0) / 20) / Double(peak)
        case .rms:
            guard rms > 0 else { return }
            gain = pow(10, (config.targetLevel ?? -20) / 20) / Double(rms)
        }
        let g = Float(gain)
        for i in samples.indices { samples[i] *= g }
    }
}

/// Which input frames to read and which resampled samples to keep, so that the kept samples equal those
/// of "resample the whole file, then crop" while reading only the crop's neighbourhood.
struct ReadPlan {
    var readStart: Int
    var readCount: Int
    /// Resampled samples to skip before the kept window.
    var skipOutput: Int
    /// Samples kept (the output length).
    var outputCount: Int

    init(frames: Int, inRate: Int, outRate: Int, config: AudioConfig, seed: UInt64) {
        let total = Resampler.outputLength(frames: frames, from: inRate, to: outRate)
        guard config.samples > 0, config.samples < total else {
            // Whole file, or shorter than the window: read everything and pad.
            readStart = 0
            readCount = frames
            skipOutput = 0
            outputCount = config.samples > 0 ? config.samples : total
            return
        }
        let n = config.samples
        let start: Int
        switch config.crop {
        case .start: start = 0
        case .center: start = (total - n) / 2
        case .random:
            var rng = SeededRandom(seed: seed, stream: 0xA0D10)
            start = rng.nextInt(below: total - n + 1)
        }
        outputCount = n
        if inRate == outRate {
            readStart = start
            readCount = n
            skipOutput = 0
            return
        }
        // The resampler's filter reaches `margin` input frames either side of a sample. Starting the read
        // on a multiple of inRate/gcd keeps the output grid aligned with the whole-file resample.
        let ratio = (inRate + outRate - 1) / outRate
        let margin = 512 + 128 * ratio
        let g = gcd(inRate, outRate)
        let inStep = inRate / g, outStep = outRate / g
        let wantedStart = start * inRate / outRate - margin
        let alignedStart = wantedStart <= 0 ? 0 : (wantedStart / inStep) * inStep
        readStart = alignedStart
        skipOutput = start - alignedStart / inStep * outStep
        let endFrame = (start + n) * inRate / outRate + margin + inStep
        readCount = min(frames, endFrame) - alignedStart
    }
}

private func gcd(_ a: Int, _ b: Int) -> Int {
    var (x, y) = (a, b)
    while y != 0 { (x, y) = (y, x % y) }
    return max(x, 1)
}
