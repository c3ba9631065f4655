// One writer per folder, and no writer while a dataset is read: two processes ingesting or training into the
// same folder would delete or overwrite each other's files (`--overwrite`, `--resume`'s clean-up of temporary
// files), and a dataset ingested again under a running training would pull its shards from under it.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An advisory lock (`flock`) on a folder itself, held while this value lives and released by the kernel when
/// the process ends however it ends, so a killed run never leaves a stale lock behind. Writers hold it
/// exclusively; readers of a dataset (train, eval, encode, verify) share it.
public final class FolderLock {
    public enum Use { case writing, reading }

    private let descriptor: Int32

    /// Locks `folder` for `use`, creating it first when writing; throws `io.busy`, naming the folder, when
    /// another process holds a lock that excludes this one.
    public init(folder: String, for use: Use = .writing) throws {
        if use == .writing { try FilePath.createDirectories(folder) }
        let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw TesseraError(path: folder, stage: .open, code: "io.open", "cannot open folder to lock it: \(SystemCall.lastError())")
        }
        // A file system without flock (ENOLCK, EOPNOTSUPP on some network mounts) leaves the folder unlocked
        // rather than unusable: the lock is a safeguard, not a condition of working.
        if flock(fd, (use == .writing ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0 && errno == EWOULDBLOCK {
            close(fd)
            throw TesseraError(path: folder, stage: .open, code: "io.busy", use == .writing
                ? "another tessera process is using this folder (writing it, or reading it as a dataset); wait for it to finish or choose another folder"
                : "another tessera process is writing this dataset; wait for it to finish")
        }
        descriptor = fd
    }

    deinit { close(descriptor) }
}
