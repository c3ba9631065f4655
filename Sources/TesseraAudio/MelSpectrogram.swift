// Log-mel spectrograms as librosa computes them (`feature.melspectrogram` then `log(x + 1e-6)` or
// `power_to_db`), with FFTW single-precision real FFTs whose plans are made once per size and reused.
internal import CFFTW3f
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
import TesseraCore

/// FFTW plans by transform size. FFTW's planner is not thread-safe, so plans are made under a lock;
/// executing a plan on new arrays (of the same alignment, from fftwf_malloc) is thread-safe.
/// Plans use FFTW_ESTIMATE: it picks the algorithm deterministically, so the same input gives the same
/// bits in every run (FFTW_MEASURE times candidates and may pick differently from run to run, which
/// would break byte-identical shards and resumes).
final class FFTPlans: @unchecked Sendable {
    static let shared = FFTPlans()
    private let plans = Mutex<[Int: OpaquePointer]>([:])

    func plan(size: Int) -> OpaquePointer? {
        plans.withLock { cache in
            if let plan = cache[size] { return plan }
            guard let input = fftwf_alloc_real(size), let output = fftwf_alloc_complex(size / 2 + 1) else { return nil }
            defer {
                fftwf_free(input)
                fftwf_free(output)
            }
            guard let plan = fftwf_plan_dft_r2c_1d(Int32(size), input, output, UInt32(FFTW_ESTIMATE)) else { return nil }
            cache[size] = plan
            return plan
        }
    }
}

/// A mel filterbank as librosa's `filters.mel` builds it, stored sparsely (each filter covers a run of
/// FFT bins).
struct MelFilterbank: Sendable {
    let bands: Int
    /// For each band: the first bin and its weights.
    let starts: [Int]
    let weights: [[Float]]

    /// The settings a filterbank is built from (a struct key: formatting a string key on every clip
    /// cost more than the lookup).
    private struct Key: Hashable {
        var rate: Int, nFFT: Int, bands: Int, fmin: Double, fmax: Double, scale: AudioConfig.MelScale, norm: AudioConfig.MelNorm
    }

    private static let cache = Mutex<[Key: MelFilterbank]>([:])

    /// The filterbank for these settings (built once, then shared).
    static func make(rate: Int, nFFT: Int, bands: Int, fmin: Double, fmax: Double, scale: AudioConfig.MelScale, norm: AudioConfig.MelNorm) -> MelFilterbank {
        let key = Key(rate: rate, nFFT: nFFT, bands: bands, fmin: fmin, fmax: fmax, scale: scale, norm: norm)
        return cache.withLock { cache in
            if let bank = cache[key] { return bank }
            let bank = MelFilterbank(rate: rate, nFFT: nFFT, bands: bands, fmin: fmin, fmax: fmax, scale: scale, norm: norm)
            cache[key] = bank
            return bank
        }
    }

    private init(rate: Int, nFFT: Int, bands: Int, fmin: Double, fmax: Double, scale: AudioConfig.MelScale, norm: AudioConfig.MelNorm) {
        self.bands = bands
        let bins = nFFT / 2 + 1
        // fftfreqs = np.fft.rfftfreq(n_fft, 1/sr): k * (1 / (n_fft * (1/sr)))
        let step = 1.0 / (Double(nFFT) * (1.0 / Double(rate)))
        let freqs = (0..<bins).map { Double($0) * step }
        let lo = MelFilterbank.hzToMel(fmin, scale), hi = MelFilterbank.hzToMel(fmax, scale)
        // mel_f = mel_to_hz(np.linspace(min_mel, max_mel, n_mels + 2)), linspace's last point exact
        let delta = (hi - lo) / Double(bands + 1)
        let melF = (0..<(bands + 2)).map { MelFilterbank.melToHz($0 == bands + 1 ? hi : lo + Double($0) * delta, scale) }
        var starts: [Int] = []
        var weights: [[Float]] = []
        for i in 0..<bands {
            let lower = melF[i], center = melF[i + 1], upper = melF[i + 2]
            let enorm = norm == .slaney ? 2.0 / (upper - lower) : 1.0
            var row: [Float] = []
            var first = -1
            for (b, f) in freqs.enumerated() {
                // librosa: max(0, min(-ramps[i] / fdiff[i], ramps[i+2] / fdiff[i+1])), ramps = mel_f - fftfreqs
                let down = -(lower - f) / (center - lower)
                let up = (upper - f) / (upper - center)
                let triangle = max(0, min(down, up))
                // Stored in float32, then scaled by enorm in float64 and stored again, as librosa does.
                let weight = Float(Double(Float(triangle)) * enorm)
                if weight != 0 {
                    if first < 0 { first = b }
                    // Zeros inside the run keep the indexing contiguous.
                    while first + row.count < b { row.append(0) }
                    row.append(weight)
                }
            }
            starts.append(max(first, 0))
            weights.append(row)
        }
        self.starts = starts
        self.weights = weights
    }

    static func hzToMel(_ hz: Double, _ scale: AudioConfig.MelScale) -> Double {
        switch scale {
        case .htk:
            return 2595 * log10(1 + hz / 700)
        case .slaney:
            let fSp = 200.0 / 3, minLogHz = 1000.0, minLogMel = minLogHz / fSp, logStep = log(6.4) / 27
            return hz >= minLogHz ? minLogMel + log(hz / minLogHz) / logStep : hz / fSp
        }
    }

    static func melToHz(_ mel: Double, _ scale: AudioConfig.MelScale) -> Double {
        switch scale {
        case .htk:
            return 700 * (pow(10, mel / 2595) - 1)
        case .slaney:
            let fSp = 200.0 / 3, minLogHz = 1000.0, minLogMel = minLogHz / fSp, logStep = log(6.4) / 27
            return mel >= minLogMel ? minLogHz * exp(logStep * (mel - minLogMel)) : fSp * mel
        }
    }
}

enum MelSpectrogram {
    /// The log-mel spectrogram [bands, frames] of one channel, frames centred (padded by n_fft/2 each side),
    /// periodic Hann window, power 2.
    static func compute(_ signal: [Float], rate: Int, config: AudioConfig) throws -> [Float] {
        let nFFT = config.nFFT, hop = config.hop, bins = nFFT / 2 + 1
        let bank = MelFilterbank.make(rate: rate, nFFT: nFFT, bands: config.melBins, fmin: config.fmin,
                                      fmax: config.fmax ?? Double(rate) / 2, scale: config.melScale, norm: config.melNorm)
        guard let plan = FFTPlans.shared.plan(size: nFFT),
              let frameBuffer = fftwf_alloc_real(nFFT), let spectrum = fftwf_alloc_complex(bins) else {
            throw TesseraError(stage: .transform, code: "audio.fft", "cannot set up an FFT of size \(nFFT)")
        }
        defer {
            fftwf_free(frameBuffer)
            fftwf_free(spectrum)
        }
        let window = MelSpectrogram.window(nFFT)
        let frames = config.frameCount(samples: signal.count)
        let pad = nFFT / 2
        var mel = [Float](repeating: 0, count: config.melBins * frames)
        // Power spectra as [bin, frame], so that each band's weighted sum runs across all frames at once
        // (a vectorisable multiply-add per weight) instead of as one dependent chain per frame. Each
        // element still sums its weights in the same order, so the values are those of the per-frame sum.
        var power = [Float](repeating: 0, count: bins * frames)
        let spectrumFloats = UnsafeMutableRawPointer(spectrum).assumingMemoryBound(to: Float.self)
        signal.withUnsafeBufferPointer { x in
            window.withUnsafeBufferPointer { w in
                power.withUnsafeMutableBufferPointer { p in
                    guard let xs = x.baseAddress, let ws = w.baseAddress, let ps = p.baseAddress else { return }
                    for f in 0..<frames {
                        let origin = f * hop - pad
                        if origin >= 0 && origin + nFFT <= x.count {
                            // Interior frame: no padding, one vectorisable product.
                            let src = xs + origin
                            for k in 0..<nFFT { frameBuffer[k] = src[k] * ws[k] }
                        } else {
                            for k in 0..<nFFT {
                                let i = origin + k
                                let sample: Float
                                if i >= 0 && i < x.count {
                                    sample = xs[i]
                                } else if config.padMode == .reflect {
                                    sample = xs[reflectIndex(i, count: x.count)]
                                } else {
                                    sample = 0
                                }
                                frameBuffer[k] = sample * ws[k]
                            }
                        }
                        fftwf_execute_dft_r2c(plan, frameBuffer, spectrum)
                        var column = ps + f
                        for b in 0..<bins {
                            let re = spectrumFloats[2 &* b], im = spectrumFloats[2 &* b &+ 1]
                            column.pointee = re * re + im * im
                            column += frames
                        }
                    }
                }
            }
        }
        power.withUnsafeBufferPointer { p in
            mel.withUnsafeMutableBufferPointer { out in
                guard let ps = p.baseAddress, let ms = out.baseAddress else { return }
                for m in 0..<config.melBins {
                    let row = ms + m * frames
                    let start = bank.starts[m]
                    bank.weights[m].withUnsafeBufferPointer { weights in
                        for j in 0..<weights.count {
                            let weight = weights[j], column = ps + (start + j) * frames
                            for f in 0..<frames { row[f] += weight * column[f] }
                        }
                    }
                }
            }
        }
        // Through a buffer pointer: with a libm call in the loop, an array subscript re-checks
        // uniqueness and bounds on every element.
        mel.withUnsafeMutableBufferPointer { values in
            switch config.scale {
            case .log:
                for i in values.indices { values[i] = logf(values[i] + 1e-6) }
            case .db:
                var top = -Float.infinity
                for i in values.indices {
                    values[i] = 10 * log10f(max(1e-10, values[i]))
                    top = max(top, values[i])
                }
                for i in values.indices { values[i] = max(values[i], top - 80) }
            }
        }
        return mel
    }

    /// scipy's `get_window("hann", n, fftbins=True)`: the periodic Hann window.
    static func hannWindow(_ n: Int) -> [Float] {
        (0..<n).map { Float(0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(n))) }
    }

    private static let windows = Mutex<[Int: [Float]]>([:])

    /// The Hann window of size `n`, computed once.
    static func window(_ n: Int) -> [Float] {
        windows.withLock { cache in
            if let window = cache[n] { return window }
            let window = hannWindow(n)
            cache[n] = window
            return window
        }
    }

    /// numpy's `pad(mode="reflect")` index for a position outside 0..<count (repeated reflection).
    static func reflectIndex(_ i: Int, count: Int) -> Int {
        guard count > 1 else { return 0 }
        let period = 2 * (count - 1)
        var j = i % period
        if j < 0 { j += period }
        return j < count ? j : period - j
    }
}
