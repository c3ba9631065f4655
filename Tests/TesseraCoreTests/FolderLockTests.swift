import Foundation
import Testing
import TesseraCore
import TesseraTestSupport

/// One writer per output folder: a second lock on a locked folder is refused by name, and the lock goes with
/// the value that holds it.
@Suite struct FolderLockTests {
    @Test func aLockedFolderRefusesASecondWriterUntilReleased() throws {
        let folder = try temporaryFolder("lock") + "/out/run"
        var first: FolderLock? = try FolderLock(folder: folder)
        #expect(FileManager.default.fileExists(atPath: folder), "the folder is created")
        #expect { _ = try FolderLock(folder: folder) } throws: { error in
            let error = error as? TesseraError
            return error?.code == "io.busy" && error?.path == folder
        }
        withExtendedLifetime(first) {}
        first = nil
        let second = try FolderLock(folder: folder)
        withExtendedLifetime(second) {}
        #expect(throws: TesseraError.self) { _ = try FolderLock(folder: "/proc/no-such-folder/run") }
    }
}
