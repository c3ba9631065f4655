// libsndfile through its virtual I/O interface: any container and encoding it reads, from a memory
// buffer (a mapped file or bytes in memory), with seeking so that a crop reads only the frames it needs.
internal import CSndFile
internal import CFFTW3f
import Synchronization
import TesseraCore

/// What the header of an audio file says.
public struct SoundFileInfo: Sendable, Equatable {
    public var frames: Int
    public var rate: Int
    public var channels: Int
    /// libsndfile's name of the container, e.g. "WAV (Microsoft)".
    public var container: String
    /// libsndfile's name of the encoding, e.g. "Signed 16 bit PCM".
    public var encoding: String
    /// Whether samples are stored as floating point (NaN and infinity are possible).
    public var isFloat: Bool
    /// Bytes of audio data the header declares beyond the end of the file (a truncated file), if any.
    public var missingBytes: Int?
}

/// The bytes libsndfile reads through the virtual I/O callbacks.
private final class MemorySource {
    let bytes: UnsafeRawBufferPointer
    var position = 0
    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }
}

/// libsndfile keeps the reason for a failed open in a process-wide variable; opens are serialised so each
/// failure reports its own reason.
private let openLock = Mutex(())

/// An open libsndfile reader over borrowed bytes.
final class SoundFile {
    private var handle: OpaquePointer?
    private let source: MemorySource
    let info: SoundFileInfo

    init(bytes: UnsafeRawBufferPointer) throws {
        source = MemorySource(bytes)
        // libsndfile copies the callback table, so it may live on the stack.
        var io = SF_VIRTUAL_IO(
            get_filelen: { user in
                guard let user else { return 0 }
                return sf_count_t(Unmanaged<MemorySource>.fromOpaque(user).takeUnretainedValue().bytes.count)
            },
            seek: { offset, whence, user in
                guard let user else { return -1 }
                let s = Unmanaged<MemorySource>.fromOpaque(user).takeUnretainedValue()
                let base: Int
                switch whence {
                case SEEK_SET: base = 0
                case SEEK_CUR: base = s.position
                case SEEK_END: base = s.bytes.count
                default: return -1
                }
                let (target, overflow) = base.addingReportingOverflow(Int(offset))
                guard !overflow, target >= 0 else { return -1 }
                s.position = target
                return sf_count_t(target)
            },
            read: { destination, count, user in
                guard let user, let destination, count > 0 else { return 0 }
                let s = Unmanaged<MemorySource>.fromOpaque(user).takeUnretainedValue()
                guard s.position < s.bytes.count, let base = s.bytes.baseAddress else { return 0 }
                let n = min(Int(count), s.bytes.count - s.position)
                destination.copyMemory(from: base + s.position, byteCount: n)
                s.position += n
                return sf_count_t(n)
            },
            write: { _, _, _ in 0 },
            tell: { user in
                guard let user else { return -1 }
                return sf_count_t(Unmanaged<MemorySource>.fromOpaque(user).takeUnretainedValue().position)
            })
        var raw = SF_INFO()
        let user = Unmanaged.passUnretained(source).toOpaque()
        let opened: Result<UInt, TesseraError> = openLock.withLock { _ in
            if let file = sf_open_virtual(&io, Int32(SFM_READ), &raw, user) { return .success(UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(file)))) }
            let reason = String(cString: sf_strerror(nil))
            return .failure(TesseraError(stage: .decode, code: "audio.unreadable", "not a readable audio file: \(reason)"))
        }
        handle = OpaquePointer(bitPattern: try opened.get())
        let major = Int(raw.format) & Int(SF_FORMAT_TYPEMASK), minor = Int(raw.format) & Int(SF_FORMAT_SUBMASK)
        info = SoundFileInfo(frames: Int(raw.frames), rate: Int(raw.samplerate), channels: Int(raw.channels),
                             container: SoundFile.formatName(major, major: true), encoding: SoundFile.formatName(minor, major: false),
                             isFloat: minor == Int(SF_FORMAT_FLOAT) || minor == Int(SF_FORMAT_DOUBLE),
                             missingBytes: SoundFile.missingBytes(log: SoundFile.log(handle)))
    }

    /// libsndfile's parse log of the header.
    private static func log(_ handle: OpaquePointer?) -> String {
        var buffer = [UInt8](repeating: 0, count: 8192)
        let length = buffer.withUnsafeMutableBytes { raw -> Int in
            _ = sf_command(handle, Int32(SFC_GET_LOG_INFO), raw.baseAddress, Int32(raw.count))
            return raw.firstIndex(of: 0) ?? raw.count
        }
        return String(decoding: buffer[..<length], as: UTF8.self)
    }

    /// A truncated WAV/AIFF shows in libsndfile's log as `data : 143708 (should be 47873)`: the header
    /// declares more audio than the file holds. Streaming writers' placeholder sizes (0, 0xFFFFFFFF) do not count.
    static func missingBytes(log: String) -> Int? {
        // Most logs hold no complaint: skip splitting them into lines (measured 1% of a W1 ingest).
        guard SoundFile.contains(log, "should be") else { return nil }
        for line in log.split(separator: "\n") {
            let trimmed = line.drop { $0 == " " }
            guard trimmed.hasPrefix("data ") || trimmed.hasPrefix("SSND ") || trimmed.hasPrefix("data:") else { continue }
            let numbers = trimmed.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
            guard trimmed.contains("should be"), numbers.count >= 2 else { continue }
            let declared = numbers[0], actual = numbers[1]
            if declared > actual && declared != 0 && declared != 0xFFFF_FFFF && declared != 0xFFFF_FFFF - 1 { return declared - actual }
        }
        return nil
    }

    /// Whether `text` holds `word`, byte for byte (the standard library's generic search looks up type
    /// metadata on every call).
    static func contains(_ text: String, _ word: String) -> Bool {
        var text = text, word = word
        return text.withUTF8 { haystack in
            word.withUTF8 { needle in
                guard !needle.isEmpty, haystack.count >= needle.count else { return needle.isEmpty }
                for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
                    var match = true
                    for k in 1..<needle.count where haystack[start + k] != needle[k] {
                        match = false
                        break
                    }
                    if match { return true }
                }
                return false
            }
        }
    }

    deinit { if let handle { sf_close(handle) } }

    /// Moves to frame `frame`. Throws when the format cannot seek there.
    func seek(to frame: Int) throws {
        guard let handle else { return }
        if sf_seek(handle, sf_count_t(frame), SEEK_SET) < 0 {
            throw TesseraError(stage: .decode, code: "audio.seek", "cannot seek to frame \(frame): \(String(cString: sf_strerror(handle)))")
        }
    }

    /// Reads up to `frames` frames of interleaved float32 samples (libsndfile's normalisation: integers
    /// divided by 2^(bits-1)). Returns the samples actually read (shorter at the end of the data).
    func readFrames(_ frames: Int) throws -> [Float] {
        guard let handle, frames > 0 else { return [] }
        let channels = info.channels
        var done = 0
        var failure: TesseraError?
        let samples = [Float](unsafeUninitializedCapacity: frames * channels) { buffer, initialized in
            guard let base = buffer.baseAddress else { return }
            while done < frames {
                let chunk = min(frames - done, 65_536)
                let got = Int(sf_readf_float(handle, base + done * channels, sf_count_t(chunk)))
                if got <= 0 {
                    if sf_error(handle) != 0 && done == 0 {
                        failure = TesseraError(stage: .decode, code: "audio.corrupt", "cannot decode audio data: \(String(cString: sf_strerror(handle)))")
                    }
                    break
                }
                done += got
            }
            initialized = done * channels
        }
        if let failure { throw failure }
        return samples
    }

    /// libsndfile's name for a container (major) or encoding (subtype) code.
    private static func formatName(_ format: Int, major: Bool) -> String {
        var query = SF_FORMAT_INFO()
        query.format = Int32(format)
        let status = sf_command(nil, Int32(SFC_GET_FORMAT_INFO), &query, Int32(MemoryLayout<SF_FORMAT_INFO>.size))
        guard status == 0, let name = query.name else { return String(format, radix: 16) }
        return String(cString: name)
    }
}

/// libsndfile alone, for benchmarks: open, read every frame as float32, close; no Tessera work.
public enum SoundFileBaseline {
    /// Returns the number of frames read (0 on failure).
    public static func plainDecode(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard let file = try? SoundFile(bytes: bytes), let samples = try? file.readFrames(file.info.frames) else { return 0 }
        return samples.count / max(file.info.channels, 1)
    }
}

/// The audio libraries' own calls, for the ingest ceiling: libsndfile decode, soxr resample, FFTW transforms.
public enum AudioBaselines {
    /// Decodes a whole file to mono float32 (the mean of channels, as ingest does) and returns it with its rate.
    public static func decodeMono(_ bytes: UnsafeRawBufferPointer) -> (samples: [Float], rate: Int)? {
        guard let file = try? SoundFile(bytes: bytes), let samples = try? file.readFrames(file.info.frames) else { return nil }
        let mono = file.info.channels > 1 ? AudioDecoding.downmix(samples, channels: file.info.channels) : samples
        return (mono, file.info.rate)
    }

    /// libsoxr HQ alone.
    public static func resample(_ samples: [Float], from rate: Int, to target: Int) -> Int {
        (try? Resampler.resample(samples, channels: 1, from: rate, to: target).count) ?? 0
    }

    /// `count` FFTW real transforms of size `n` (the FFT part of a log-mel).
    public static func transforms(count: Int, size n: Int) {
        guard let plan = FFTPlans.shared.plan(size: n), let input = fftwf_alloc_real(n), let output = fftwf_alloc_complex(n / 2 + 1) else { return }
        defer { fftwf_free(input); fftwf_free(output) }
        for i in 0..<n { input[i] = Float(i % 7) }
        for _ in 0..<count { fftwf_execute_dft_r2c(plan, input, output) }
    }
}
