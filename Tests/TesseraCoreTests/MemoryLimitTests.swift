import Foundation
import Testing
@testable import TesseraCore
import TesseraTestSupport

/// The memory bound a job plans against: the machine's, or a tighter one set by a control group.
@Suite struct MemoryLimitTests {
    /// A fake /proc/self/cgroup and /sys/fs/cgroup, as a container (v2) or an older host (v1) shows them.
    private func limit(cgroup: String, files: [String: String]) throws -> MemoryLimit? {
        let root = try temporaryFolder("cgroup")
        try cgroup.write(toFile: root + "/self-cgroup", atomically: true, encoding: .utf8)
        for (path, contents) in files {
            let full = root + "/fs" + path
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try contents.write(toFile: full, atomically: true, encoding: .utf8)
        }
        return MemoryLimit.controlGroupLimit(procSelfCgroup: root + "/self-cgroup", root: root + "/fs")
    }

    @Test func controlGroupLimitsAreFoundUnderTheGroupsPathOrAtTheRoot() throws {
        // v2, the group's own folder.
        var found = try limit(cgroup: "0::/user.slice/job-7\n", files: ["/user.slice/job-7/memory.max": "4294967296\n"])
        #expect(found?.bytes == 4 << 30 && found?.source.contains("/user.slice/job-7/memory.max") == true)
        // v2 inside a container that mounts only its own group: the file is at the root.
        found = try limit(cgroup: "0::/docker/abc\n", files: ["/memory.max": "2147483648\n"])
        #expect(found?.bytes == 2 << 30)
        // "max" sets no bound.
        found = try limit(cgroup: "0::/\n", files: ["/memory.max": "max\n"])
        #expect(found == nil)
        // v1 (with a hybrid v2 line beside it), and v1's "unlimited" (about 2^63).
        found = try limit(cgroup: "4:memory:/process_api/9\n0::/\n", files: ["/memory/process_api/9/memory.limit_in_bytes": "1073741824\n",
                                                                        "/memory.max": "max\n"])
        #expect(found?.bytes == 1 << 30)
        found = try limit(cgroup: "4:cpu,memory:/\n", files: ["/memory/memory.limit_in_bytes": "9223372036854771712\n"])
        #expect(found == nil)
        // Nothing readable: no bound rather than an error.
        #expect(try limit(cgroup: "garbage", files: [:]) == nil)
    }

    @Test func theCurrentLimitIsAtMostTheMachinesMemory() {
        let current = MemoryLimit.current()
        #expect(current != nil && current!.bytes > 0 && current!.bytes <= SystemCall.physicalMemoryBytes)
    }
}
