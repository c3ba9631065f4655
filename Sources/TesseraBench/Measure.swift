// Timing, thread fan-out and machine facts for benchmarks. Benchmarks always print a peer or a physical
// limit measured in the same run beside each figure; this file only measures.
import Foundation
import Synchronization
import TesseraCore

/// A throughput measured over one or more passes.
public struct Throughput: Sendable {
    public var items: Int
    public var seconds: Double
    public var perSecond: Double { seconds > 0 ? Double(items) / seconds : 0 }
}

/// Runs `work(index)` for every index in `0..<count` on `threads` threads (indices handed out in order by an
/// atomic counter), repeating whole passes until at least `minSeconds` have passed after one warm-up pass.
/// Returns the best pass's throughput (the least disturbed by other processes on a shared machine).
public func measureThroughput(count: Int, threads: Int, minSeconds: Double = 1.5, maxPasses: Int = 20,
                              _ work: @escaping @Sendable (Int) -> Void) -> Throughput {
    func pass() -> Double {
        let next = Atomic<Int>(0)
        let start = monotonicSeconds()
        runOnThreads(threads) { _ in
            while true {
                let index = next.add(1, ordering: .relaxed).oldValue
                if index >= count { break }
                work(index)
            }
        }
        return monotonicSeconds() - start
    }
    _ = pass()
    var best = Double.infinity, total = 0.0, passes = 0
    while (total < minSeconds || passes < 2) && passes < maxPasses {
        let t = pass()
        best = min(best, t)
        total += t
        passes += 1
    }
    return Throughput(items: count, seconds: best)
}

/// Runs `body(threadIndex)` on `count` threads and waits for all of them.
public func runOnThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    if count <= 1 {
        body(0)
        return
    }
    let group = DispatchGroup()
    for index in 0..<count {
        let thread = Thread { body(index); group.leave() }
        thread.stackSize = 8 << 20
        group.enter()
        thread.start()
    }
    group.wait()
}

/// CPU time used by other processes while a benchmark ran, to flag contaminated runs on shared machines.
public struct BackgroundLoad {
    private var startTotal: Double
    private var startSelf: Double
    private var startWall: Double

    public init() {
        startTotal = BackgroundLoad.machineBusySeconds()
        startSelf = BackgroundLoad.selfSeconds()
        startWall = monotonicSeconds()
    }

    /// The average number of cores other processes kept busy since `init` (0 = idle machine).
    public func otherCores() -> Double {
        let wall = monotonicSeconds() - startWall
        guard wall > 0 else { return 0 }
        let others = (BackgroundLoad.machineBusySeconds() - startTotal) - (BackgroundLoad.selfSeconds() - startSelf)
        return max(0, others / wall)
    }

    static func machineBusySeconds() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") }) else { return 0 }
        let fields = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard fields.count >= 5 else { return 0 }
        // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
        let busy = fields.enumerated().filter { $0.offset != 3 && $0.offset != 4 && $0.offset < 8 }.map(\.element).reduce(0, +)
        return busy / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func selfSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        var children = rusage()
        getrusage(RUSAGE_CHILDREN.rawValue, &children)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime) + seconds(children.ru_utime) + seconds(children.ru_stime)
    }
}

/// One line describing the machine: CPU model, cores, memory.
public func machineDescription() -> String {
    var model = "unknown CPU"
    if let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
       let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
       let colon = line.firstIndex(of: ":") {
        model = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    let memory = Double(SystemCall.physicalMemoryBytes) / Double(1 << 30)
    return "\(model), \(ProcessInfo.processInfo.activeProcessorCount) cores, \(Int(memory.rounded())) GiB"
}

/// Formats a rate with a unit and sensible precision.
public func formatRate(_ value: Double, _ unit: String) -> String {
    if value >= 100 { return "\(Int(value.rounded())) \(unit)" }
    if value >= 10 { return String(format: "%.1f %@", value, unit) }
    return String(format: "%.2f %@", value, unit)
}

/// Formats a ratio as `1.23x`.
public func formatRatio(_ value: Double) -> String { String(format: "%.2fx", value) }
