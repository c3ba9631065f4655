// Crash-safe file writing: a temporary name in the same folder, fsync, rename, fsync the folder.
// A reader therefore sees either the old file or the complete new one, never a half-written one.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Writes one file durably. Bytes go to a hidden temporary file beside the target (`.NAME.tmp-PID-N`);
/// `commit()` fsyncs it, renames it over the target and fsyncs the folder. If the writer is dropped
/// without `commit()`, the temporary file is removed and the target is untouched.
public final class DurableFileWriter {
    /// The final path.
    public let path: String
    /// The temporary path being written.
    public let temporaryPath: String
    private var fd: Int32
    private var committed = false
    /// Bytes written so far.
    public private(set) var bytesWritten = 0
    /// The SHA-256 of the bytes written, when asked for at creation: computed from the bytes on their way
    /// out rather than by reading the file back.
    private let hashing: Bool
    private var digest = SHA256Digest()

    private static let counter = Atomic<Int>(0)

    /// Prefix of every temporary file name, so that walkers and `--resume` can recognise leftovers.
    public static let temporaryMarker = ".tmp-"

    /// Creates the temporary file beside `path`; with `hashing`, `sha256()` gives the SHA-256 of what was
    /// written.
    public init(path: String, hashing: Bool = false) throws {
        self.path = path
        self.hashing = hashing
        let (folder, name) = FilePath.split(path)
        let serial = DurableFileWriter.counter.add(1, ordering: .relaxed).newValue
        temporaryPath = FilePath.join(folder, ".\(name)\(DurableFileWriter.temporaryMarker)\(getpid())-\(serial)")
        var opened: Int32 = -1
        while true {
            opened = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if opened >= 0 || errno != EINTR { break }
        }
        guard opened >= 0 else {
            throw TesseraError(path: path, stage: .write, code: "io.create", "cannot create a temporary file in \(folder): \(SystemCall.lastError())")
        }
        fd = opened
    }

    /// Appends bytes.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try SystemCall.writeAll(fd, bytes, path: path)
        if hashing { digest.update(bytes) }
        bytesWritten += bytes.count
    }

    /// The SHA-256 of all bytes written (64 hex digits); only for a writer created with `hashing`.
    public func sha256() -> String? { hashing ? digest.takeHexDigest() : nil }

    /// Appends bytes.
    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Makes the file durable under its final name.
    public func commit() throws {
        try SystemCall.fsyncOrThrow(fd, path: path)
        close(fd)
        fd = -1
        guard rename(temporaryPath, path) == 0 else {
            let reason = SystemCall.lastError()
            unlink(temporaryPath)
            throw TesseraError(path: path, stage: .write, code: "io.rename", "cannot rename the temporary file into place: \(reason)")
        }
        committed = true
        try FilePath.syncDirectory(FilePath.split(path).folder)
    }

    deinit {
        if fd >= 0 { close(fd) }
        if !committed { unlink(temporaryPath) }
    }
}

/// One-shot durable writes.
public enum DurableFile {
    /// Writes `bytes` to `path` durably (temporary name, fsync, rename, fsync folder).
    public static func write(_ bytes: [UInt8], to path: String) throws {
        let writer = try DurableFileWriter(path: path)
        try writer.write(bytes)
        try writer.commit()
    }

    /// Writes a UTF-8 string to `path` durably.
    public static func write(_ text: String, to path: String) throws {
        try write(Array(text.utf8), to: path)
    }
}

/// Small path helpers (string paths, as the CLI receives them).
public enum FilePath {
    /// Splits `a/b/c.txt` into (`a/b`, `c.txt`); a bare name has folder `.`.
    public static func split(_ path: String) -> (folder: String, name: String) {
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        guard let slash = trimmed.lastIndex(of: "/") else { return (".", trimmed) }
        let folder = String(trimmed[..<slash])
        return (folder.isEmpty ? "/" : folder, String(trimmed[trimmed.index(after: slash)...]))
    }

    /// Joins two path parts with one slash.
    public static func join(_ folder: String, _ name: String) -> String {
        if folder.isEmpty || folder == "." { return name }
        return folder.hasSuffix("/") ? folder + name : folder + "/" + name
    }

    /// The extension after the last dot of the last component, lower-cased ("" when none).
    public static func pathExtension(_ path: String) -> String {
        // On UTF-8 bytes for the common ASCII extension (a walk calls this for every file); anything
        // else takes the general path.
        let utf8 = path.utf8
        var end = utf8.endIndex
        if utf8.count > 1, utf8[utf8.index(before: end)] == UInt8(ascii: "/") { end = utf8.index(before: end) }  // as `split`
        var i = end, ascii = true
        while i > utf8.startIndex {
            let previous = utf8.index(before: i)
            let byte = utf8[previous]
            if byte == UInt8(ascii: "/") { return "" }
            if byte == UInt8(ascii: ".") {
                // A leading dot names a hidden file, not an extension.
                guard previous != utf8.startIndex, utf8[utf8.index(before: previous)] != UInt8(ascii: "/") else { return "" }
                guard ascii else { break }
                return String(decoding: utf8[i..<end].map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self)
            }
            if byte >= 0x80 { ascii = false }
            i = previous
        }
        let name = split(path).name
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return "" }
        return name[name.index(after: dot)...].lowercased()
    }

    /// fsyncs a folder so that a rename inside it survives a crash.
    public static func syncDirectory(_ folder: String) throws {
        let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw TesseraError(path: folder, stage: .write, code: "io.open", "cannot open folder to sync it: \(SystemCall.lastError())")
        }
        defer { close(fd) }
        try SystemCall.fsyncOrThrow(fd, path: folder)
    }

    /// The absolute path with symlinks, `.` and `..` resolved; nil when `path` does not exist.
    public static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// `mkdir -p`.
    public static func createDirectories(_ path: String) throws {
        var current = path.hasPrefix("/") ? "/" : ""
        for part in path.split(separator: "/") {
            current = current.isEmpty || current.hasSuffix("/") ? current + part : current + "/" + part
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw TesseraError(path: current, stage: .write, code: "io.mkdir", "cannot create folder: \(SystemCall.lastError())")
            }
        }
        guard isDirectory(path) else {
            throw TesseraError(path: path, stage: .write, code: "io.mkdir", "exists and is not a folder")
        }
    }

    /// Whether `path` is a folder (following symlinks).
    public static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Whether something exists at `path` (not following a final symlink).
    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// The whole file as bytes, with a size limit checked before reading.
    public static func readAll(_ path: String, limit: Int = 1 << 30) throws -> [UInt8] {
        let fd = try SystemCall.openReadOnly(path)
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw TesseraError(path: path, stage: .read, code: "io.stat", "cannot stat: \(SystemCall.lastError())")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw TesseraError(path: path, stage: .open, code: "io.not-a-file", "not a regular file")
        }
        let size = Int(info.st_size)
        guard size <= limit else {
            throw TesseraError(path: path, stage: .read, code: "io.too-large", "file is \(size) bytes, over the limit of \(limit)")
        }
        var bytes = [UInt8](repeating: 0, count: size)
        let got = try bytes.withUnsafeMutableBytes { buffer -> Int in
            guard let base = buffer.baseAddress else { return 0 }
            return try SystemCall.readAt(fd, into: base, count: size, offset: 0, path: path)
        }
        if got < size { bytes.removeLast(size - got) }
        return bytes
    }

    /// The first `count` bytes of a file (fewer if it is shorter).
    public static func readPrefix(_ path: String, count: Int) throws -> [UInt8] {
        let fd = try SystemCall.openReadOnly(path)
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: count)
        let got = try bytes.withUnsafeMutableBytes { buffer -> Int in
            guard let base = buffer.baseAddress else { return 0 }
            return try SystemCall.readAt(fd, into: base, count: count, offset: 0, path: path)
        }
        return Array(bytes.prefix(got))
    }

    /// Removes a file if present; errors other than "absent" are thrown.
    public static func removeFile(_ path: String) throws {
        if unlink(path) != 0 && errno != ENOENT {
            throw TesseraError(path: path, stage: .write, code: "io.unlink", "cannot remove: \(SystemCall.lastError())")
        }
    }

    /// The names in a folder (without `.` and `..`), unsorted.
    public static func listDirectory(_ path: String) throws -> [String] {
        try readEntries(path).map(\.name)
    }

    /// The entries of a folder (not "." and ".."), in no particular order, each with whether it is a
    /// folder: from the listing itself where the file system says, else from `stat` (which follows a
    /// symlink, so a link to a folder counts as a folder). A walk of a large flat folder then costs no
    /// `stat` per file.
    /// `validName` is false for a name that is not valid UTF-8, which `name` then shows with U+FFFD in place
    /// of the bad bytes (such a path does not open: Tessera's paths are Swift strings).
    public static func listDirectoryEntries(_ path: String) throws -> [(name: String, isDirectory: Bool, validName: Bool)] {
        try readEntries(path).map { entry in
            let known = entry.type != Int32(DT_UNKNOWN) && entry.type != Int32(DT_LNK)
            return (entry.name, known ? entry.type == Int32(DT_DIR) : FilePath.isDirectory(join(path, entry.name)), entry.valid)
        }
    }

    /// `readdir`'s names, types (`DT_*`) and whether each name is valid UTF-8; "." and ".." left out.
    private static func readEntries(_ path: String) throws -> [(name: String, type: Int32, valid: Bool)] {
        guard let dir = opendir(path) else {
            throw TesseraError(path: path, stage: .open, code: "io.opendir", "cannot list folder: \(SystemCall.lastError())")
        }
        defer { closedir(dir) }
        var entries: [(name: String, type: Int32, valid: Bool)] = []
        while let entry = readdir(dir) {
            let (name, valid) = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                let bytes = raw.prefix(while: { $0 != 0 })
                let checked = String(validating: bytes, as: UTF8.self)
                return (checked ?? String(decoding: bytes, as: UTF8.self), checked != nil)
            }
            if name != "." && name != ".." { entries.append((name, Int32(entry.pointee.d_type), valid)) }
        }
        return entries
    }
}
