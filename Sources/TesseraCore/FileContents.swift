// A whole file's bytes for decoding: read into memory when small, memory-mapped when large.
#if canImport(Glibc)
import Glibc
#endif

/// The bytes of a file, read-only. Small files are read with one `pread` (mapping and unmapping a small
/// file costs more than copying it, and every munmap interrupts the other cores to flush their TLBs);
/// large ones are mapped, so that reading part of them touches only those pages.
public final class FileContents: @unchecked Sendable {
    // @unchecked: immutable after init.
    /// Files up to this size are read rather than mapped.
    public static let readThreshold = 4 << 20

    public let path: String
    private let storage: UnsafeMutableRawPointer?
    private let count: Int
    private let mapping: MappedFile?

    /// Opens `path`; a file over `limit` bytes is refused before anything is read or mapped, with
    /// `tooLargeCode` as the error's code.
    public init(path: String, limit: Int = .max, tooLargeCode: String = "io.too-large") throws {
        self.path = path
        let fd = try SystemCall.openReadOnly(path)
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw TesseraError(path: path, stage: .open, code: "io.stat", "cannot stat: \(SystemCall.lastError())")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw TesseraError(path: path, stage: .open, code: "io.not-a-file", "not a regular file")
        }
        let size = Int(info.st_size)
        guard size <= limit else {
            throw TesseraError(path: path, stage: .read, code: tooLargeCode, "file is \(size) bytes, over the limit of \(limit)")
        }
        if size > FileContents.readThreshold {
            mapping = try MappedFile(path: path)
            storage = nil
            count = 0
            return
        }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(size, 1), alignment: 16)
        do {
            count = try SystemCall.readAt(fd, into: buffer, count: size, offset: 0, path: path)
        } catch {
            buffer.deallocate()
            throw error
        }
        storage = buffer
        mapping = nil
    }

    deinit { storage?.deallocate() }

    /// The file's bytes.
    public var bytes: UnsafeRawBufferPointer {
        if let mapping { return mapping.bytes }
        return UnsafeRawBufferPointer(start: storage, count: count)
    }
}
