// Row-major GEMM through OpenBLAS, and the one place that sets OpenBLAS's thread count.
internal import COpenBLAS
#if canImport(Glibc)
import Glibc
#endif

/// Matrix products on OpenBLAS (cblas, row-major). `transA`/`transB` read A or B transposed in place:
/// no copies are made.
public enum BLAS {
    /// C = alpha * op(A) * op(B) + beta * C, with op(A) m x k, op(B) k x n, C m x n; single precision.
    @inline(__always)
    public static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        let start = profiling ? now() : 0
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        if profiling { record(seconds: now() - start, flops: 2 * Double(m) * Double(n) * Double(k)) }
    }

    /// When set, `sgemm` adds its wall time and FLOPs to `sgemmSeconds` and `sgemmFlops` (for the share of a
    /// training step spent in matrix products). While `concurrentCallers` threads issue products side by
    /// side, each call counts for that fraction of its time, so the seconds stay a share of wall time.
    nonisolated(unsafe) public static var profiling = false
    nonisolated(unsafe) public static var sgemmSeconds = 0.0
    nonisolated(unsafe) public static var sgemmFlops = 0.0
    /// How many threads are issuing products at the same time (set by the engine around such stretches).
    nonisolated(unsafe) public static var concurrentCallers = 1
    nonisolated(unsafe) private static let profileLock: UnsafeMutablePointer<pthread_mutex_t> = {
        let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
        return lock
    }()

    static func record(seconds: Double, flops: Double) {
        pthread_mutex_lock(profileLock)
        sgemmSeconds += seconds / Double(max(1, concurrentCallers))
        sgemmFlops += flops
        pthread_mutex_unlock(profileLock)
    }

    @inline(__always) static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }

    /// The same in double precision (gradient checks).
    @inline(__always)
    public static func dgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Double, a: UnsafePointer<Double>, lda: Int,
                             b: UnsafePointer<Double>, ldb: Int, beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int) {
        cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Sets how many threads OpenBLAS uses (`openblas_set_num_threads`). The engine keeps it at 1 and
    /// splits products over its own threads (`EngineThreads.configure`), ingest keeps it at 1 so it does
    /// not compete with the decoders, and the benches raise it to time OpenBLAS's own threading.
    public static func setThreads(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    /// The environment variable OpenBLAS reads, once, when it loads: how long (2^n cycles) an idle worker
    /// spins on `sched_yield` before it sleeps. Its default (2^28 cycles, about 0.1 s) keeps the workers
    /// spinning through every stretch of engine code between two matrix products, taking the cores the
    /// engine's own threads need: W2 training measured about 12% slower with it (docs/PERFORMANCE.md).
    public static let threadTimeoutVariable = "OPENBLAS_THREAD_TIMEOUT"

    /// The environment variable that overrides OpenBLAS's choice of kernels for this CPU.
    public static let coreTypeVariable = "OPENBLAS_CORETYPE"

    /// Sets up OpenBLAS for a process that alternates matrix products with its own threaded loops: idle
    /// workers sleep at once, and on CPUs where OpenBLAS's own choice of kernels measured slower, the
    /// faster ones (`preferredCoreType`). OpenBLAS reads both before any Swift code runs, so this sets them
    /// and re-executes the program (once: the timeout variable is then set); it does nothing when the user
    /// has set the timeout, or when re-execution is not possible (the program goes on with OpenBLAS's defaults).
    public static func restartWithEngineSettings() {
        guard getenv(threadTimeoutVariable) == nil else { return }
        setenv(threadTimeoutVariable, "4", 1)
        if let core = preferredCoreType() { setenv(coreTypeVariable, core, 1) }
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // Only reached when exec failed; carry on as we are.
    }

    /// The kernels to ask for instead of OpenBLAS's own pick, or nil to keep it (always nil when the user
    /// has chosen with `OPENBLAS_CORETYPE`). On an AMD CPU with AVX-512 (Zen 4), OpenBLAS 0.3.21 picks its
    /// Intel AVX-512 kernels (Cooperlake, SkylakeX); its Zen (AVX2) kernels measured 13% faster over W2's
    /// matrix shapes here (10 alternating runs, 8 wins) and W2 training 7.5% faster (5 runs, 4 wins):
    /// docs/PERFORMANCE.md.
    static func preferredCoreType() -> String? {
        guard getenv(coreTypeVariable) == nil else { return nil }
        let picked = coreName.lowercased()
        guard ["skylakex", "cooperlake", "sapphirerapids"].contains(where: { picked.contains($0) }), cpuVendor() == "AuthenticAMD" else { return nil }
        return "ZEN"
    }

    /// The `vendor_id` of /proc/cpuinfo ("GenuineIntel", "AuthenticAMD"), or nil.
    static func cpuVendor() -> String? {
        guard let file = fopen("/proc/cpuinfo", "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 256)
        for _ in 0..<64 {
            guard fgets(&line, Int32(line.count), file) != nil else { return nil }
            let text = String(cString: line)
            guard text.hasPrefix("vendor_id") else { continue }
            return text.split(separator: ":").last.map { String($0.filter { !$0.isWhitespace }) }
        }
        return nil
    }

    /// OpenBLAS's current thread count.
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// The CPU core type OpenBLAS picked at load time (e.g. "Cooperlake", "Haswell").
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }
}
