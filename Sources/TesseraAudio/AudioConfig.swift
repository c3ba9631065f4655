// The audio transform, defined once: `tessera decode`, `tessera ingest` and the manifest's schema use it.
import TesseraCore

/// How an audio file becomes a waveform and/or a log-mel spectrogram. Defaults are workload W1's:
/// mono, 16 kHz (soxr HQ), exactly 16,000 samples cropped from the start, 64-band Slaney log-mel with
/// n_fft 512 and hop 250, `log(mel + 1e-6)`.
public struct AudioConfig: Codable, Sendable, Equatable {
    public enum Channels: String, Codable, Sendable, CaseIterable {
        /// The mean of the channels (as `librosa.to_mono`).
        case mono
        /// Every channel kept.
        case keep
    }

    public enum Crop: String, Codable, Sendable, CaseIterable {
        case start, center, random
    }

    public enum Normalization: String, Codable, Sendable, CaseIterable {
        case none, peak, rms
    }

    public enum MelScale: String, Codable, Sendable, CaseIterable {
        /// Slaney's (librosa's default, `htk=False`).
        case slaney
        /// HTK's `2595 log10(1 + f/700)`.
        case htk
    }

    public enum MelNorm: String, Codable, Sendable, CaseIterable {
        /// Each filter divided by its width in Hz/2 (librosa's `norm="slaney"`).
        case slaney
        case none
    }

    public enum PadMode: String, Codable, Sendable, CaseIterable {
        case constant, reflect
    }

    public enum Scale: String, Codable, Sendable, CaseIterable {
        /// `log(mel + 1e-6)`.
        case log
        /// `librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=80.0)`.
        case db
    }

    /// Output sample rate in Hz; 0 keeps each file's own rate.
    public var rate: Int = 16_000
    /// Output length in samples at the output rate; 0 keeps the whole file (not allowed in ingest).
    public var samples: Int = 16_000
    public var channels: Channels = .mono
    public var crop: Crop = .start
    public var normalize: Normalization = .none
    /// Target level in dBFS for `peak` (default 0) or `rms` (default -20).
    public var targetLevel: Double?
    /// Mel bands; 0 means waveform only.
    public var melBins: Int = 64
    public var nFFT: Int = 512
    public var hop: Int = 250
    public var fmin: Double = 0
    /// Upper mel frequency; nil means rate / 2.
    public var fmax: Double? = 8_000
    public var melScale: MelScale = .slaney
    public var melNorm: MelNorm = .slaney
    public var padMode: PadMode = .constant
    public var scale: Scale = .log
    /// Also output the waveform when a mel spectrogram is computed.
    public var waveform: Bool = false
    /// Read what a truncated file holds instead of refusing it.
    public var acceptTruncated: Bool = false
    /// Refuse to read more than this many seconds of a file (checked from the header before reading).
    public var maxSeconds: Double = 3_600
    /// Refuse to hold more than this many bytes of decoded float32 samples (checked from the header).
    public var maxDecodedBytes: Int = 1 << 30
    /// Refuse files with more channels than this.
    public var maxChannels: Int = 64

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = AudioConfig()
        rate = try c.decodeIfPresent(Int.self, forKey: .rate) ?? d.rate
        samples = try c.decodeIfPresent(Int.self, forKey: .samples) ?? d.samples
        channels = try c.decodeIfPresent(Channels.self, forKey: .channels) ?? d.channels
        crop = try c.decodeIfPresent(Crop.self, forKey: .crop) ?? d.crop
        normalize = try c.decodeIfPresent(Normalization.self, forKey: .normalize) ?? d.normalize
        targetLevel = try c.decodeIfPresent(Double.self, forKey: .targetLevel)
        melBins = try c.decodeIfPresent(Int.self, forKey: .melBins) ?? d.melBins
        nFFT = try c.decodeIfPresent(Int.self, forKey: .nFFT) ?? d.nFFT
        hop = try c.decodeIfPresent(Int.self, forKey: .hop) ?? d.hop
        fmin = try c.decodeIfPresent(Double.self, forKey: .fmin) ?? d.fmin
        fmax = c.contains(.fmax) ? try c.decodeIfPresent(Double.self, forKey: .fmax) : d.fmax
        melScale = try c.decodeIfPresent(MelScale.self, forKey: .melScale) ?? d.melScale
        melNorm = try c.decodeIfPresent(MelNorm.self, forKey: .melNorm) ?? d.melNorm
        padMode = try c.decodeIfPresent(PadMode.self, forKey: .padMode) ?? d.padMode
        scale = try c.decodeIfPresent(Scale.self, forKey: .scale) ?? d.scale
        waveform = try c.decodeIfPresent(Bool.self, forKey: .waveform) ?? d.waveform
        acceptTruncated = try c.decodeIfPresent(Bool.self, forKey: .acceptTruncated) ?? d.acceptTruncated
        maxSeconds = try c.decodeIfPresent(Double.self, forKey: .maxSeconds) ?? d.maxSeconds
        maxDecodedBytes = try c.decodeIfPresent(Int.self, forKey: .maxDecodedBytes) ?? d.maxDecodedBytes
        maxChannels = try c.decodeIfPresent(Int.self, forKey: .maxChannels) ?? d.maxChannels
    }

    /// Whether the waveform tensor `audio` is produced.
    public var producesWaveform: Bool { melBins == 0 || waveform }
    /// Whether the log-mel tensor `audio_mel` is produced.
    public var producesMel: Bool { melBins > 0 }

    /// Number of STFT frames for `length` samples (centred frames: 1 + length / hop).
    public func frameCount(samples length: Int) -> Int { 1 + length / hop }

    /// Checks the fields. Throws a `TesseraError` (stage `.config`) naming the option.
    public func validate() throws {
        func fail(_ message: String) -> TesseraError { TesseraError(stage: .config, code: "config.audio", message) }
        guard rate >= 0 && rate <= 1_000_000 else { throw fail("--audio-rate must be 0 (keep) or 1...1000000 Hz") }
        guard samples >= 0 else { throw fail("--audio-samples (or --audio-seconds) must be 0 (whole file) or positive") }
        guard samples <= 1 << 31 else { throw fail("--audio-samples (or --audio-seconds x --audio-rate) must be at most 2^31 samples, not \(samples)") }
        guard melBins >= 0 && melBins <= 1024 else { throw fail("--mel-bins must be 0...1024") }
        if melBins > 0 {
            guard nFFT >= 16 && nFFT <= 1 << 16 && nFFT % 2 == 0 else { throw fail("--n-fft must be even, 16...65536") }
            guard hop >= 1 && hop <= nFFT * 4 else { throw fail("--hop must be 1...4 x n_fft") }
            guard fmin >= 0, (fmax ?? 1) > fmin else { throw fail("--fmin must be >= 0 and below --fmax") }
            if rate > 0, let fmax, fmax > Double(rate) / 2 + 1e-9 { throw fail("--fmax \(fmax) is above the Nyquist frequency \(rate / 2)") }
        }
        if let targetLevel, !(targetLevel.isFinite && targetLevel <= 0) { throw fail("--audio-target-level is in dBFS, <= 0") }
        guard maxSeconds > 0, maxDecodedBytes > 0, maxChannels >= 1 else { throw fail("limits must be positive") }
        if samples > 0 { try checkOutputSize(samples: samples, channels: 1) }
    }

    /// Throws before anything is allocated when a clip of `samples` per channel would give a waveform, or a
    /// log-mel or the power spectra it is made from, over 2 GiB (what a dataset holds per sample).
    public func checkOutputSize(samples: Int, channels: Int) throws {
        func fail(_ message: String) -> TesseraError { TesseraError(stage: .config, code: "config.audio", message) }
        let limit = Double(1 << 31)
        let waveform = Double(samples) * Double(channels) * 4
        guard waveform <= limit else {
            throw fail("\(samples) samples x \(channels) channels would take \(byteCount(waveform)) as a waveform; at most 2 GiB: shorten --audio-seconds")
        }
        guard melBins > 0 else { return }
        let frames = Double(frameCount(samples: samples))
        let spectra = frames * Double(nFFT / 2 + 1) * 4, mel = frames * Double(melBins) * Double(channels) * 4
        guard max(spectra, mel) <= limit else {
            throw fail("\(samples) samples at hop \(hop) make \(Int(frames)) frames, whose spectra would take \(byteCount(max(spectra, mel))); "
                       + "at most 2 GiB: raise --hop or shorten --audio-seconds")
        }
    }
}
