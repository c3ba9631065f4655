import Foundation
import Testing
import TesseraCore
import TesseraTestSupport

/// One writer per folder, and none while a dataset is read: a lock that the folder's other lock excludes is
/// refused by name, and a lock goes with the value that holds it.
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
        var second: FolderLock? = try FolderLock(folder: folder)
        withExtendedLifetime(second) {}
        second = nil
        #expect(throws: TesseraError.self) { _ = try FolderLock(folder: "/proc/no-such-folder/run") }
        // Readers share a folder; a writer excludes them and they exclude a writer.
        let reader = try FolderLock(folder: folder, for: .reading), another = try FolderLock(folder: folder, for: .reading)
        #expect { _ = try FolderLock(folder: folder) } throws: { ($0 as? TesseraError)?.code == "io.busy" }
        withExtendedLifetime((reader, another)) {}
        let writer = try FolderLock(folder: folder + "/../run2")
        #expect { _ = try FolderLock(folder: folder + "/../run2", for: .reading) } throws: { ($0 as? TesseraError)?.code == "io.busy" }
        withExtendedLifetime(writer) {}
    }
}
