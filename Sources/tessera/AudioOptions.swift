// The audio transform options, shared by `decode` and `ingest`; they map onto `AudioConfig`.
import ArgumentParser
import TesseraAudio
import TesseraCore

extension AudioConfig.Channels: ExpressibleByArgument {}
extension AudioConfig.Crop: ExpressibleByArgument {}
extension AudioConfig.Normalization: ExpressibleByArgument {}
extension AudioConfig.MelScale: ExpressibleByArgument {}
extension AudioConfig.MelNorm: ExpressibleByArgument {}
extension AudioConfig.PadMode: ExpressibleByArgument {}
extension AudioConfig.Scale: ExpressibleByArgument {}

struct AudioOptions: ParsableArguments {
    @Option(name: .customLong("audio-rate"), help: "Output sample rate in Hz, resampled with soxr HQ (16000; 0 keeps each file's rate).")
    var rate: Int?

    @Option(name: .customLong("audio-seconds"), help: "Crop or zero-pad to this many seconds (0 keeps the whole file; default: 16000 samples, 1 s at the default rate).")
    var seconds: Double?

    @Option(name: .customLong("audio-samples"), help: "Crop or zero-pad to this many samples at the output rate (16000).")
    var samples: Int?

    @Option(name: .customLong("audio-channels"), help: "mono (mean of the channels; default) or keep.")
    var channels: AudioConfig.Channels?

    @Option(name: .customLong("audio-crop"), help: "Where a longer file is cropped: start (default), center, random (seeded).")
    var crop: AudioConfig.Crop?

    @Option(name: .customLong("audio-normalize"), help: "Level normalisation: none (default), peak, rms.")
    var normalize: AudioConfig.Normalization?

    @Option(name: .customLong("audio-target-level"), help: "Target in dBFS for peak (0) or rms (-20) normalisation.")
    var targetLevel: Double?

    @Flag(name: .customLong("audio-waveform"), help: "Also output the waveform (tensor audio) when computing a mel spectrogram.")
    var waveform = false

    @Option(name: .customLong("mel-bins"), help: "Mel bands of audio_mel (64; 0 = waveform only).")
    var melBins: Int?

    @Option(name: .customLong("n-fft"), help: "FFT size (512).")
    var nFFT: Int?

    @Option(name: .customLong("hop"), help: "Hop length in samples (250).")
    var hop: Int?

    @Option(name: .customLong("fmin"), help: "Lowest mel frequency in Hz (0).")
    var fmin: Double?

    @Option(name: .customLong("fmax"), help: "Highest mel frequency in Hz (8000; 0 = Nyquist).")
    var fmax: Double?

    @Option(name: .customLong("mel-scale"), help: "slaney (librosa's default) or htk.")
    var melScale: AudioConfig.MelScale?

    @Option(name: .customLong("mel-norm"), help: "slaney (area normalisation; default) or none.")
    var melNorm: AudioConfig.MelNorm?

    @Option(name: .customLong("mel-pad"), help: "Centred-frame padding: constant (zeros; default) or reflect.")
    var padMode: AudioConfig.PadMode?

    @Option(name: .customLong("mel-output"), help: "log (log(mel + 1e-6); default) or db (power_to_db, top_db 80).")
    var scale: AudioConfig.Scale?

    @Flag(name: .customLong("audio-accept-truncated"), help: "Read what a truncated audio file holds instead of refusing it.")
    var acceptTruncated = false

    @Option(name: .customLong("audio-max-seconds"), help: "Refuse to read more than this many seconds of one file (3600).")
    var maxSeconds: Double?

    func config(base: AudioConfig = AudioConfig()) throws -> AudioConfig {
        var config = base
        if let rate { config.rate = rate }
        if let channels { config.channels = channels }
        if let crop { config.crop = crop }
        if let normalize { config.normalize = normalize }
        if let targetLevel { config.targetLevel = targetLevel }
        if waveform { config.waveform = true }
        if let melBins { config.melBins = melBins }
        if let nFFT { config.nFFT = nFFT }
        if let hop { config.hop = hop }
        if let fmin { config.fmin = fmin }
        if let fmax { config.fmax = fmax == 0 ? nil : fmax }
        if let melScale { config.melScale = melScale }
        if let melNorm { config.melNorm = melNorm }
        if let padMode { config.padMode = padMode }
        if let scale { config.scale = scale }
        if let maxSeconds { config.maxSeconds = maxSeconds }
        if acceptTruncated { config.acceptTruncated = true }
        if seconds != nil && samples != nil {
            throw TesseraError(stage: .config, code: "config.audio", "give --audio-seconds or --audio-samples, not both")
        }
        if let samples { config.samples = samples }
        if let seconds {
            guard seconds >= 0, seconds.isFinite else {
                throw TesseraError(stage: .config, code: "config.audio", "--audio-seconds must be >= 0")
            }
            guard seconds == 0 || config.rate > 0 else {
                throw TesseraError(stage: .config, code: "config.audio", "--audio-seconds needs a fixed --audio-rate (use --audio-samples with --audio-rate 0)")
            }
            config.samples = Int((seconds * Double(config.rate)).rounded())
        }
        if config.rate != 16_000, fmax == nil, rate != nil, config.fmax == AudioConfig().fmax {
            // The W1 default fmax (8 kHz) is the Nyquist of the default rate; other rates default to theirs.
            config.fmax = nil
        }
        try config.validate()
        return config
    }
}
