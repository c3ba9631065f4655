// How much memory a job may plan for. The machine's memory is not the only bound: a shell's `ulimit -v`,
// a batch scheduler's data limit or a container's memory limit (its control group) ends the process far
// earlier, as an allocation failure (a crash) or the kernel's OOM killer, not as an error that names the cause.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The tightest memory bound on this process, and what sets it.
public struct MemoryLimit: Sendable, Equatable {
    /// Bytes the process may still take under this bound.
    public let bytes: Int
    /// What sets the bound, e.g. "this machine's memory" or "the address-space limit, ulimit -v".
    public let source: String

    public init(bytes: Int, source: String) {
        self.bytes = bytes
        self.source = source
    }

    /// "this process may use at most 3.9 GiB (the address-space limit, ulimit -v)": for error messages.
    public var description: String { "this process may use at most \(byteCount(Double(bytes))) (\(source))" }

    /// The smallest of: the machine's memory, the address-space and data-segment limits less what the process
    /// already uses of each, and the memory limit of the process's control group. Nil when none is known.
    public static func current() -> MemoryLimit? {
        var candidates: [MemoryLimit] = []
        let physical = SystemCall.physicalMemoryBytes
        if physical > 0 { candidates.append(MemoryLimit(bytes: physical, source: "this machine's memory")) }
        #if canImport(Glibc)
        if let room = resourceRoom(__rlimit_resource_t(RLIMIT_AS.rawValue), used: statusKilobytes("VmSize")) {
            candidates.append(MemoryLimit(bytes: room, source: "the address-space limit, ulimit -v"))
        }
        if let room = resourceRoom(__rlimit_resource_t(RLIMIT_DATA.rawValue), used: statusKilobytes("VmData")) {
            candidates.append(MemoryLimit(bytes: room, source: "the data-segment limit, ulimit -d"))
        }
        #endif
        if let group = controlGroupLimit() { candidates.append(group) }
        return candidates.min { $0.bytes < $1.bytes }
    }

    #if canImport(Glibc)
    /// A resource limit less `used` bytes; nil when unlimited (RLIM_INFINITY is all ones, above Int.max).
    private static func resourceRoom(_ resource: __rlimit_resource_t, used: Int?) -> Int? {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0, limit.rlim_cur < UInt64(Int.max) else { return nil }
        return max(Int(limit.rlim_cur) - (used ?? 0), 0)
    }
    #endif

    /// A "Name:\t  1234 kB" line of /proc/self/status, in bytes.
    private static func statusKilobytes(_ name: String) -> Int? {
        guard let status = readPseudoFile("/proc/self/status") else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix(name + ":") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, let kilobytes = Int(fields[1]) else { return nil }
            return kilobytes * 1024
        }
        return nil
    }

    /// The memory limit of this process's control group (v2 `memory.max`, v1 `memory.limit_in_bytes`),
    /// looked up under the group's path and, inside a container that mounts only its own group, at the root.
    static func controlGroupLimit(procSelfCgroup: String = "/proc/self/cgroup", root: String = "/sys/fs/cgroup") -> MemoryLimit? {
        guard let groups = readPseudoFile(procSelfCgroup) else { return nil }
        var files: [String] = []
        for line in groups.split(separator: "\n") {
            // "hierarchy-id:controllers:path"; the path may itself hold colons.
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let path = fields[2] == "/" ? "" : String(fields[2])
            if fields[0] == "0" && fields[1].isEmpty {
                files += [root + path + "/memory.max", root + "/memory.max"]
            } else if fields[1].split(separator: ",").contains("memory") {
                files += [root + "/memory" + path + "/memory.limit_in_bytes", root + "/memory/memory.limit_in_bytes"]
            }
        }
        var tightest: MemoryLimit?
        // A group at the root ("/") names the root's file twice: read it once.
        var seen = Set<String>()
        for file in files where seen.insert(file).inserted {
            guard let contents = readPseudoFile(file) else { continue }
            let text = contents.split(whereSeparator: { $0 == "\n" || $0 == " " }).first.map(String.init) ?? ""
            // "max" (v2) and values near 2^63 (v1's "unlimited") set no bound.
            guard let limit = Int(text), limit > 0, limit < 1 << 60, limit < tightest?.bytes ?? .max else { continue }
            tightest = MemoryLimit(bytes: limit, source: "the control group's memory limit in \(file)")
        }
        return tightest
    }

    /// The text of a /proc or /sys file (whose size `stat` reports as 0), at most 1 MiB; nil when unreadable.
    private static func readPseudoFile(_ path: String) -> String? {
        guard let fd = try? SystemCall.openReadOnly(path) else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let got = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { break }
            bytes += chunk[0..<got]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
