// Process-level facts and settings: a monotonic clock, peak memory, the allocator policy.
#if canImport(Glibc)
import Glibc
internal import CMalloc
#endif

/// Seconds on the monotonic clock (only differences mean anything).
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// This process's peak resident set size so far, in bytes (`VmHWM` of /proc/self/status; 0 if unknown).
public func peakResidentBytes() -> Int {
    let fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return 0 }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 8192)
    let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard count > 0 else { return 0 }
    let text = String(decoding: buffer.prefix(count), as: UTF8.self)
    guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return 0 }
    return (line.split(separator: " ").compactMap { Int($0) }.first ?? 0) * 1024
}

/// Makes glibc's allocator keep memory steady. By default glibc raises its mmap threshold each time a large
/// block is freed (up to 32 MB), after which decode buffers of a few hundred KB come from per-thread heaps
/// that fragment: measured, the same 20,000-sample ingest peaked anywhere between 70 and 370 MB from run to
/// run. A fixed threshold (which also turns the adjustment off) of 1 MB sends shard-sized buffers (3-8 MB,
/// made and freed once per shard) to mmap: at 4 MB, the 3 MB image batch stayed in the heap and the same
/// ingest peaked at 60 or 300 MB depending on nothing more than the length of its command line. Fixing the
/// mmap threshold also fixes the trim threshold at 128 kB, so every decode buffer freed at the top of a
/// heap went back to the kernel and faulted in again on the next sample (sys time was a fifth of W1's
/// ingest); 4 MB keeps those pages.
public func useSteadyAllocator() {
    #if canImport(Glibc)
    _ = mallopt(M_MMAP_THRESHOLD, 1 << 20)
    _ = mallopt(M_TRIM_THRESHOLD, 4 << 20)
    #endif
}

/// Hands the allocator's free pages back to the kernel, holes between live blocks included (glibc's
/// `malloc_trim`). For the end of a phase whose garbage scales with the input (ingest's walk and plan:
/// without it a 20,000-sample corpus started decoding 2 MB higher than a 2,000-sample one). Not for
/// every shard: it also returns the decode workers' free buffers, which then fault in again (measured
/// 5-8% slower).
public func returnFreeMemory() {
    #if canImport(Glibc)
    _ = malloc_trim(0)
    #endif
}
