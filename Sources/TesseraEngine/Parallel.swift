// The engine's own threads (element-wise passes, blocks of a convolution, halves of a product); OpenBLAS
// runs each product on the thread that issues it.
import Dispatch
import Synchronization
import TesseraBLAS

/// How many threads the engine uses, for its own loops and its products.
public enum EngineThreads {
    @usableFromInline nonisolated(unsafe) static var count = 1
    /// The most threads a command accepts: every thread holds its own convolution scratch.
    public static let maximum = 256

    /// Sets the engine's thread count, and OpenBLAS's to one: the engine splits its products itself
    /// (halves of a large product, blocks of a convolution, `gemmsInHalves`, `forEachItemDealt`) at cuts
    /// that depend only on the shapes. OpenBLAS's own threading gives other bits on two threads than on one
    /// (in 3,286 of 8,288 elements of a 259x32x128 product, say), so a product left to it made a small
    /// model's weights depend on `--threads`.
    public static func configure(_ threads: Int) {
        count = max(1, threads)
        BLAS.setThreads(1)
    }

    @inlinable public static var current: Int { count }

    /// Records how many engine threads issue products side by side (for the sgemm profile).
    @usableFromInline static func setConcurrentProductCallers(_ callers: Int) {
        BLAS.concurrentCallers = callers
    }
}

/// The next item to hand out, shared by the threads of `forEachItemDealt`.
@usableFromInline final class ItemCounter: Sendable {
    @usableFromInline let next = Atomic<Int>(0)
    @usableFromInline init() {}
    @inlinable func take() -> Int { next.add(1, ordering: .relaxed).oldValue }
}

/// Runs `body(item, worker)` for every item in `0..<n`, handed out one at a time to `workers` threads as
/// each comes free (`worker`, in `0..<workers`, names the thread's scratch), each thread's products on
/// single-threaded OpenBLAS, side by side. Which thread takes an item varies from run to run, so an
/// item must write only its own outputs; one worker takes the items in order. Items dealt out as threads
/// come free, rather than a fixed share per thread, absorb the uneven speed of this VM's cores: with fixed
/// halves of the batch, the first thread done waited 8-10 ms per W2 step for the other.
@inlinable
func forEachItemDealt(_ n: Int, workers: Int, _ body: (_ item: Int, _ worker: Int) -> Void) {
    let workers = min(workers, n)
    guard workers > 1 else {
        for item in 0..<n { body(item, 0) }
        return
    }
    let counter = ItemCounter()
    EngineThreads.setConcurrentProductCallers(workers)
    withoutActuallyEscaping(body) { body in
        nonisolated(unsafe) let work = body
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var item = counter.take()
            while item < n {
                work(item, worker)
                item = counter.take()
            }
        }
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
