// libsndfile through its virtual I/O interface: any container and encoding it reads, from a memory
// buffer (a mapped file or bytes in memory), with seeking so that a crop reads only the frames it needs.
internal import CSndFile
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
                             isFloat: minor == Int(SF_FORMAT_FLOAT) || minor == Int(SF_FORMAT_DOUBLE))
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
