// Linear layers and embeddings with masked mean pooling.
import TesseraCore

/// y = x Wᵀ + b, x [B, in], W [out, in] (PyTorch layout), b [out].
public final class Linear<T: EngineScalar> {
    public let inFeatures: Int
    public let outFeatures: Int
    public let weight: ParameterRef
    public let bias: ParameterRef?

    public init(_ params: ParameterSet<T>, _ name: String, in inFeatures: Int, out outFeatures: Int, bias: Bool = true) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = params.add(name + ".weight", shape: [outFeatures, inFeatures])
        self.bias = bias ? params.add(name + ".bias", shape: [outFeatures]) : nil
    }

    public func initialize(_ params: ParameterSet<T>, _ rng: inout SeededRandom) {
        params.pytorchDefault(weight: weight, bias: bias, fanIn: inFeatures, &rng)
    }

    public func flops(batch: Int) -> Double { 2 * Double(batch * inFeatures * outFeatures) }

    /// Threads for an element-wise pass over a [batch, outFeatures] matrix: one below 64K elements, where
    /// waking a second thread costs more than it saves.
    @inlinable func passThreads(batch: Int) -> Int { batch * outFeatures >= 1 << 16 ? EngineThreads.current : 1 }

    @inlinable public func forward(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, batch: Int, _ p: ParameterSet<T>) {
        guard let bias else {
            // y = x @ Wᵀ
            gemmsInHalves(GemmCall(transA: false, transB: true, m: batch, n: outFeatures, k: inFeatures, alpha: 1, a: x, lda: inFeatures,
                                   b: p.value(weight), ldb: inFeatures, beta: 0, c: y, ldc: outFeatures))
            return
        }
        // y = b + x @ Wᵀ, as PyTorch's addmm: the rows start as the bias and the product is added onto them
        // (one pass over y; a product with beta 0 zeroes y first, and adding the bias after is another pass).
        nonisolated(unsafe) let (rows, b, width) = (y, UnsafePointer(p.value(bias)), outFeatures)
        parallelFor(batch, threads: passThreads(batch: batch)) { range in
            for r in range { (rows + r * width).update(from: b, count: width) }
        }
        gemmsInHalves(GemmCall(transA: false, transB: true, m: batch, n: outFeatures, k: inFeatures, alpha: 1, a: x, lda: inFeatures,
                               b: p.value(weight), ldb: inFeatures, beta: 1, c: y, ldc: outFeatures))
    }

    /// Accumulates dW and db; writes (or adds to, with `accumulate`) dx when given.
    @inlinable public func backward(_ x: UnsafePointer<T>, _ dy: UnsafePointer<T>, _ dx: UnsafeMutablePointer<T>?, accumulate: Bool = false,
                         batch: Int, _ p: ParameterSet<T>) {
        if let bias {
            // Each column summed over the rows in order, whichever thread takes it: the same sums for any
            // thread count.
            nonisolated(unsafe) let (db, g, width) = (p.grad(bias), dy, outFeatures)
            parallelFor(outFeatures, minimumPerThread: 64, threads: passThreads(batch: batch)) { columns in
                for r in 0..<batch {
                    let row = g + r * width
                    for j in columns { db[j] += row[j] }
                }
            }
        }
        // dW += dyᵀ @ x and dx (+)= dy @ W, their halves dealt together
        let weightGradient = GemmCall(transA: true, transB: false, m: outFeatures, n: inFeatures, k: batch, alpha: 1, a: dy, lda: outFeatures,
                                      b: x, ldb: inFeatures, beta: 1, c: p.grad(weight), ldc: inFeatures)
        let inputGradient = dx.map {
            GemmCall(transA: false, transB: false, m: batch, n: inFeatures, k: outFeatures, alpha: 1, a: dy, lda: outFeatures,
                     b: UnsafePointer(p.value(weight)), ldb: inFeatures, beta: accumulate ? 1 : 0, c: $0, ldc: inFeatures)
        }
        gemmsInHalves(weightGradient, inputGradient)
    }
}

/// Embedding rows averaged over each sequence's valid positions: ids [B, L], lengths [B] (positions below
/// the length are valid; a length of 0 gives zeros), W [vocab, dim] -> y [B, dim]. Ids outside the
/// vocabulary count as padding.
public final class EmbeddingMean<T: EngineScalar> {
    public let vocabulary: Int
    public let dimension: Int
    public let weight: ParameterRef

    public init(_ params: ParameterSet<T>, _ name: String, vocabulary: Int, dimension: Int) {
        self.vocabulary = vocabulary
        self.dimension = dimension
        weight = params.add(name + ".weight", shape: [vocabulary, dimension])
    }

    public func initialize(_ params: ParameterSet<T>, _ rng: inout SeededRandom) {
        params.normal(weight, &rng)
    }

    @inlinable @inline(__always) func valid(_ ids: UnsafePointer<Int32>, _ lengths: UnsafePointer<Int32>, _ b: Int, _ length: Int) -> Int {
        max(0, min(Int(lengths[b]), length))
    }

    @inlinable public func forward(ids: UnsafePointer<Int32>, lengths: UnsafePointer<Int32>, length: Int, _ y: UnsafeMutablePointer<T>,
                        batch: Int, _ p: ParameterSet<T>) {
        let w = p.value(weight)
        for b in 0..<batch {
            let out = y + b * dimension
            out.update(repeating: 0, count: dimension)
            let n = valid(ids, lengths, b, length)
            var used = 0
            for l in 0..<n {
                let id = Int(ids[b * length + l])
                guard id >= 0 && id < vocabulary else { continue }
                let row = w + id * dimension
                for d in 0..<dimension { out[d] += row[d] }
                used += 1
            }
            if used > 0 {
                let scale = 1 / T(used)
                for d in 0..<dimension { out[d] *= scale }
            }
        }
    }

    @inlinable public func backward(ids: UnsafePointer<Int32>, lengths: UnsafePointer<Int32>, length: Int, _ dy: UnsafePointer<T>,
                         batch: Int, _ p: ParameterSet<T>) {
        let dw = p.grad(weight)
        for b in 0..<batch {
            let n = valid(ids, lengths, b, length)
            var used = 0
            for l in 0..<n where (0..<vocabulary).contains(Int(ids[b * length + l])) { used += 1 }
            guard used > 0 else { continue }
            let scale = 1 / T(used)
            let g = dy + b * dimension
            for l in 0..<n {
                let id = Int(ids[b * length + l])
                guard id >= 0 && id < vocabulary else { continue }
                let row = dw + id * dimension
                for d in 0..<dimension { row[d] += g[d] * scale }
            }
        }
    }
}
