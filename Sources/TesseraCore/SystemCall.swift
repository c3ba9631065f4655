// Thin wrappers over the POSIX calls Tessera makes, retrying on EINTR and naming the failing call.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The few system calls whose failures must become clear errors rather than crashes.
public enum SystemCall {
    /// Bytes of physical memory (0 when the system does not say).
    public static var physicalMemoryBytes: Int {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, size > 0 else { return 0 }
        let (bytes, overflow) = pages.multipliedReportingOverflow(by: size)
        return overflow ? .max : bytes
    }

    /// `strerror(errno)` of the last failing call.
    public static func lastError() -> String {
        String(cString: strerror(errno))
    }

    /// `open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)`, retried on EINTR.
    public static func openReadOnly(_ path: String) throws -> Int32 {
        while true {
            // O_NONBLOCK: opening a FIFO (a named pipe among the inputs) must not wait for a writer; the
            // callers then refuse anything that is not a regular file. Regular files ignore the flag.
            let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
            if fd >= 0 { return fd }
            if errno == EINTR { continue }
            let reason = lastError()
            let code = errno == ENOENT ? "io.not-found" : "io.open"
            throw TesseraError(path: path, stage: .open, code: code, "cannot open: \(reason)")
        }
    }

    /// Writes all of `bytes` to `fd`, retrying short writes and EINTR.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        guard var pointer = bytes.baseAddress else { return }
        var remaining = bytes.count
        while remaining > 0 {
            let written = write(fd, pointer, remaining)
            if written < 0 {
                if errno == EINTR { continue }
                throw TesseraError(path: path, stage: .write, code: "io.write", "cannot write: \(lastError())")
            }
            pointer += written
            remaining -= written
        }
    }

    /// Reads up to `count` bytes at `offset` (pread), retrying EINTR; returns how many were read.
    public static func readAt(_ fd: Int32, into buffer: UnsafeMutableRawPointer, count: Int, offset: Int, path: String) throws -> Int {
        var done = 0
        while done < count {
            let got = pread(fd, buffer + done, count - done, off_t(offset + done))
            if got < 0 {
                if errno == EINTR { continue }
                throw TesseraError(path: path, stage: .read, code: "io.read", "cannot read: \(lastError())")
            }
            if got == 0 { break }
            done += got
        }
        return done
    }

    /// `fsync(fd)`, retried on EINTR.
    public static func fsyncOrThrow(_ fd: Int32, path: String) throws {
        while fsync(fd) != 0 {
            if errno == EINTR { continue }
            throw TesseraError(path: path, stage: .write, code: "io.fsync", "cannot fsync: \(lastError())")
        }
    }

    /// The size of the file at `path`, or nil when it does not exist or cannot be read.
    public static func fileSize(_ path: String) -> Int? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Int(info.st_size)
    }
}
