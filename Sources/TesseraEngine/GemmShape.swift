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

/// Products of at least this many multiply-adds run as two halves (`gemmsInHalves`); below it, waking a
/// second thread costs more than it saves.
@usableFromInline let halvedProductMinimum = 1 << 20

/// One matrix product's arguments: C = alpha op(A) op(B) + beta C (see `EngineScalar.gemm`).
@usableFromInline struct GemmCall<T: EngineScalar> {
    @usableFromInline let transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: T, a: UnsafePointer<T>, lda: Int
    @usableFromInline let b: UnsafePointer<T>, ldb: Int, beta: T, c: UnsafeMutablePointer<T>, ldc: Int

    @inlinable init(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: T, a: UnsafePointer<T>, lda: Int, b: UnsafePointer<T>, ldb: Int,
                    beta: T, c: UnsafeMutablePointer<T>, ldc: Int) {
        (self.transA, self.transB, self.m, self.n, self.k, self.alpha, self.a, self.lda) = (transA, transB, m, n, k, alpha, a, lda)
        (self.b, self.ldb, self.beta, self.c, self.ldc) = (b, ldb, beta, c, ldc)
    }

    /// Two halves when the product is large enough, else one whole.
    @inlinable var parts: Int { m * n * k >= halvedProductMinimum && max(m, n) >= 2 ? 2 : 1 }

    /// Computes part `part` of `parts` of C, cut across its longer side.
    @inlinable func run(part: Int, of parts: Int) {
        let long = max(m, n), start = long * part / parts, count = long * (part + 1) / parts - start
        if n >= m {
            T.gemm(transA: transA, transB: transB, m: m, n: count, k: k, alpha: alpha, a: a, lda: lda,
                   b: b + (transB ? start * ldb : start), ldb: ldb, beta: beta, c: c + start, ldc: ldc)
        } else {
            T.gemm(transA: transA, transB: transB, m: count, n: n, k: k, alpha: alpha,
                   a: a + (transA ? start : start * lda), lda: lda, b: b, ldb: ldb, beta: beta, c: c + start * ldc, ldc: ldc)
        }
    }
}

/// Runs one or two independent products, each as two halves of its output when it is large enough: the
/// halves side by side on the engine's threads, each on single-threaded OpenBLAS (W2's linear products ran
/// 0.97-1.50x the rate of each whole on two OpenBLAS threads, `tools/bench/gemm_side_by_side.c`), dealt
/// as threads come free, so that two products (a layer's weight and input gradients) share one stretch.
/// Three or four parts per product measured no faster on W2. The cuts depend only on the shapes, so the
/// results depend neither on the schedule nor on the thread count.
@inlinable
func gemmsInHalves<T: EngineScalar>(_ first: GemmCall<T>, _ second: GemmCall<T>? = nil) {
    let firstParts = first.parts, secondParts = second?.parts ?? 0
    forEachItemDealt(firstParts + secondParts, workers: EngineThreads.current) { item, _ in
        if item < firstParts {
            first.run(part: item, of: firstParts)
        } else if let second {
            second.run(part: item - firstParts, of: secondParts)
        }
    }
}
