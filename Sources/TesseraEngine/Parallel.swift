// The engine's own threads (im2col, col2im, per-sample loops), sized by the same setting as OpenBLAS's.
import Dispatch
import TesseraBLAS

/// How many threads the engine uses, for its own loops and for OpenBLAS alike.
public enum EngineThreads {
    @usableFromInline nonisolated(unsafe) static var count = 1

    /// Sets both the engine's and OpenBLAS's thread count. The engine's loops and BLAS calls run one after
    /// the other, never together, so the two pools do not oversubscribe the cores.
    public static func configure(_ threads: Int) {
        count = max(1, threads)
        BLAS.setThreads(count)
    }

    @inlinable public static var current: Int { count }

    /// Sets OpenBLAS to one thread (its thread count is global, not per call) while `callers` engine
    /// threads issue products side by side, or back to the engine's count when `callers` is 1.
    @usableFromInline static func setConcurrentProductCallers(_ callers: Int) {
        BLAS.setThreads(callers > 1 ? 1 : count)
        BLAS.concurrentCallers = callers
    }
}

/// Runs `body(0)`, ..., `body(n - 1)` on `n` threads at once, each issuing single-threaded products.
@inlinable
func sideBySide(_ n: Int, _ body: (Int) -> Void) {
    EngineThreads.setConcurrentProductCallers(n)
    withoutActuallyEscaping(body) { body in
        nonisolated(unsafe) let work = body
        DispatchQueue.concurrentPerform(iterations: n) { work($0) }
    }
    EngineThreads.setConcurrentProductCallers(1)
}

/// Runs `body(chunk)` for `0..<n` split into contiguous chunks over the engine's threads. The closure does
/// not escape, so a call allocates nothing.
@inlinable
func parallelFor(_ n: Int, minimumPerThread: Int = 1, threads available: Int = EngineThreads.current, _ body: (Range<Int>) -> Void) {
    let threads = min(available, max(1, n / max(minimumPerThread, 1)))
    if threads <= 1 || n <= 1 {
        body(0..<n)
        return
    }
    withoutActuallyEscaping(body) { body in
        nonisolated(unsafe) let work = body
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            let lo = n * t / threads, hi = n * (t + 1) / threads
            if lo < hi { work(lo..<hi) }
        }
    }
}
