// One writer per output folder: two processes ingesting or training into the same folder would delete or
// overwrite each other's files (`--overwrite`, `--resume`'s clean-up of temporary files).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive advisory lock (`flock`) on a folder itself, held while this value lives and released by the
/// kernel when the process ends however it ends, so a killed run never leaves a stale lock behind.
public final class FolderLock {
    private let descriptor: Int32

    /// Creates `folder` when missing and locks it; throws `io.busy`, naming the folder, when another process
    /// holds the lock.
    public init(folder: String) throws {
        try FilePath.createDirectories(folder)
        let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw TesseraError(path: folder, stage: .open, code: "io.open", "cannot open folder to lock it: \(SystemCall.lastError())")
        }
        // A file system without flock (ENOLCK, EOPNOTSUPP on some network mounts) leaves the folder unlocked
        // rather than unusable: the lock is a safeguard, not a condition of writing.
        if flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK {
            close(fd)
            throw TesseraError(path: folder, stage: .open, code: "io.busy",
                               "another tessera process is writing to this folder; wait for it to finish or choose another folder")
        }
        descriptor = fd
    }

    deinit { close(descriptor) }
}
