// Temporary folders for the tests, all inside one folder per test process that is removed when the process
// exits. Each test used to leave its runs, ingests and datasets behind in the system's temporary folder
// (60 GB of them had piled up on the development machine, until a benchmark's write failed).
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// This test process's folder of temporary folders, made (and the folders of test processes no longer
/// running removed) on first use.
public let testScratchRoot: String = {
    let prefix = "tessera-tests-"
    let temporary = NSTemporaryDirectory()
    for name in (try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? [] where name.hasPrefix(prefix) {
        // A process that is gone (killed, or crashed before its exit handler) leaves its folder for the next.
        guard let pid = Int32(name.dropFirst(prefix.count)), kill(pid, 0) != 0, errno == ESRCH else { continue }
        try? FileManager.default.removeItem(atPath: temporary + name)
    }
    let root = temporary + prefix + "\(getpid())"
    try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: testScratchRoot) }
    return root
}()

/// A fresh folder for one test, removed with the others when the test process exits.
public func temporaryFolder(_ label: String = "test") throws -> String {
    let path = testScratchRoot + "/\(label)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
