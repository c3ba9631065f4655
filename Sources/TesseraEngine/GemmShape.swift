// The matrix products a layer issues, so a benchmark can time plain sgemm at exactly the same shapes.

/// One GEMM call: C[m, n] (+)= op(A)[m, k] · op(B)[k, n].
public struct GemmShape: Sendable, Hashable, CustomStringConvertible {
    public let transA: Bool, transB: Bool
    public let m: Int, n: Int, k: Int
    public init(transA: Bool, transB: Bool, m: Int, n: Int, k: Int) {
        (self.transA, self.transB, self.m, self.n, self.k) = (transA, transB, m, n, k)
    }
    public var flops: Double { 2 * Double(m) * Double(n) * Double(k) }
    /// Elements of A, B and C.
    public var sizes: (a: Int, b: Int, c: Int) { (m * k, k * n, m * n) }
    public var lda: Int { transA ? m : k }
    public var ldb: Int { transB ? k : n }
    public var description: String { "\(m)x\(n)x\(k)\(transA ? " Aᵀ" : "")\(transB ? " Bᵀ" : "")" }
}

/// A layer whose cost is its matrix products.
public protocol GemmLayer {
    /// The GEMMs of a forward pass over `batch` samples.
    func forwardGemms(batch: Int) -> [GemmShape]
    /// The GEMMs of a backward pass; `inputGradient` false for a first layer, whose input needs none.
    func backwardGemms(batch: Int, inputGradient: Bool) -> [GemmShape]
}

extension Linear: GemmLayer {
    public func forwardGemms(batch: Int) -> [GemmShape] {
        [GemmShape(transA: false, transB: true, m: batch, n: outFeatures, k: inFeatures)]
    }
    public func backwardGemms(batch: Int, inputGradient: Bool) -> [GemmShape] {
        [GemmShape(transA: true, transB: false, m: outFeatures, n: inFeatures, k: batch)]
            + (inputGradient ? [GemmShape(transA: false, transB: false, m: batch, n: inFeatures, k: outFeatures)] : [])
    }
}

extension Conv2d: GemmLayer {
    public func forwardGemms(batch: Int) -> [GemmShape] {
        [GemmShape(transA: false, transB: false, m: outChannels, n: batch * outHeight * outWidth, k: geometry.patch)]
    }
    public func backwardGemms(batch: Int, inputGradient: Bool) -> [GemmShape] {
        let n = batch * outHeight * outWidth
        return [GemmShape(transA: false, transB: true, m: outChannels, n: geometry.patch, k: n)]
            + (inputGradient ? [GemmShape(transA: true, transB: false, m: geometry.patch, n: n, k: outChannels)] : [])
    }
}

extension ConvTranspose2d: GemmLayer {
    public func forwardGemms(batch: Int) -> [GemmShape] {
        [GemmShape(transA: true, transB: false, m: geometry.patch, n: batch * inHeight * inWidth, k: inChannels)]
    }
    public func backwardGemms(batch: Int, inputGradient: Bool) -> [GemmShape] {
        let n = batch * inHeight * inWidth
        return [GemmShape(transA: false, transB: true, m: inChannels, n: geometry.patch, k: n)]
            + (inputGradient ? [GemmShape(transA: false, transB: false, m: inChannels, n: n, k: geometry.patch)] : [])
    }
}

/// A convolution (or transposed convolution): forward and backward through a workspace planned per batch.
/// The workspace is every thread's scratch for one block of samples, and every block's gradient sums;
/// nothing in it is carried from forward to backward. The shapes above are those of a whole batch: the
/// layers issue the same products sample by sample (`BlockPlan`).
public protocol ConvolutionLayer: GemmLayer {
    associatedtype Scalar: EngineScalar
    /// Workspace elements for `batch` samples.
    func workspace(batch: Int) -> Int
    func outputCount(batch: Int) -> Int
    func forward(_ x: UnsafePointer<Scalar>, _ y: UnsafeMutablePointer<Scalar>, batch: Int, _ p: ParameterSet<Scalar>,
                 workspace: UnsafeMutablePointer<Scalar>)
    func backward(_ x: UnsafePointer<Scalar>, _ dy: UnsafePointer<Scalar>, _ dx: UnsafeMutablePointer<Scalar>?, accumulate: Bool, batch: Int,
                  _ p: ParameterSet<Scalar>, workspace: UnsafeMutablePointer<Scalar>)
}

extension Conv2d: ConvolutionLayer {}
extension ConvTranspose2d: ConvolutionLayer {}

/// Products of at least this many multiply-adds run as two halves (`gemmInHalves`); below it, waking a
/// second thread costs more than it saves.
@usableFromInline let halvedProductMinimum = 1 << 20

/// C = alpha op(A) op(B) + beta C as two halves of C, split across its longer side, when the product is
/// large enough: side by side on two engine threads, each on single-threaded OpenBLAS (over W2's linear
/// layers, 13% less time than each whole product on two OpenBLAS threads: docs/PERFORMANCE.md), else one
/// after the other. Three or four parts dealt as threads come free measured no faster on W2. The split
/// depends only on the shape, so the results do not depend on the thread count.
@inlinable
func gemmInHalves<T: EngineScalar>(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: T, a: UnsafePointer<T>, lda: Int,
                                   b: UnsafePointer<T>, ldb: Int, beta: T, c: UnsafeMutablePointer<T>, ldc: Int) {
    let splitColumns = n >= m, long = max(m, n)
    guard m * n * k >= halvedProductMinimum, long >= 2 else {
        T.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        return
    }
    forEachItemDealt(2, workers: EngineThreads.current) { half, _ in
        let start = half == 0 ? 0 : long / 2, count = half == 0 ? long / 2 : long - long / 2
        if splitColumns {
            T.gemm(transA: transA, transB: transB, m: m, n: count, k: k, alpha: alpha, a: a, lda: lda,
                   b: b + (transB ? start * ldb : start), ldb: ldb, beta: beta, c: c + start, ldc: ldc)
        } else {
            T.gemm(transA: transA, transB: transB, m: count, n: n, k: k, alpha: alpha,
                   a: a + (transA ? start : start * lda), lda: lda, b: b, ldb: ldb, beta: beta, c: c + start * ldc, ldc: ldc)
        }
    }
}
