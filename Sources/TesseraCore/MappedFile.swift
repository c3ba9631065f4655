// Read-only memory maps of whole files: how shards and checkpoints are read without copying.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory (`mmap` with `PROT_READ`, `MAP_PRIVATE`). Unmapped when the
/// last reference goes. An empty file maps to an empty buffer.
public final class MappedFile: @unchecked Sendable {
    // @unchecked: the mapping is read-only and immutable for its whole life.
    /// The path the file was opened with.
    public let path: String
    /// The file's bytes.
    public let bytes: UnsafeRawBufferPointer

    /// Opens and maps `path`. Throws a `TesseraError` (stage `.open`) naming the file when it cannot.
    public init(path: String) throws {
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
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let address, address != MAP_FAILED else {
            throw TesseraError(path: path, stage: .open, code: "io.mmap", "cannot map \(size) bytes: \(SystemCall.lastError())")
        }
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    /// Hints the kernel that the file will be read front to back.
    public func adviseSequential() {
        if let base = bytes.baseAddress {
            _ = madvise(UnsafeMutableRawPointer(mutating: base), bytes.count, MADV_SEQUENTIAL)
        }
    }

    deinit {
        if let base = bytes.baseAddress {
            munmap(UnsafeMutableRawPointer(mutating: base), bytes.count)
        }
    }
}
