// Losses with PyTorch's default mean reduction; each returns the loss and writes d(loss)/d(input).
import CTesseraKernels

public enum Loss {
    /// Mean squared error over the elements of the samples whose weight is non-zero (`sampleWeights` nil:
    /// every sample). Absent samples (weight 0) get zero gradient and do not count in the mean.
    @inlinable public static func mse<T: EngineScalar>(_ prediction: UnsafePointer<T>, _ target: UnsafePointer<T>, _ gradient: UnsafeMutablePointer<T>,
                                            batch: Int, perSample: Int, sampleWeights: UnsafePointer<T>? = nil) -> T {
        var present = 0
        for b in 0..<batch where (sampleWeights?[b] ?? 1) != 0 { present += 1 }
        let n = T(present * perSample)
        // The sum in double precision, four partial sums at a time: a float running sum over a batch of W1
        // images (786,432 terms) read 3e-4 low at batch 64 (against PyTorch's), 2e-5 at batch 8.
        var total = 0.0
        for b in 0..<batch {
            let w = sampleWeights?[b] ?? 1
            let base = b * perSample
            if w == 0 || present == 0 {
                (gradient + base).update(repeating: 0, count: perSample)
                continue
            }
            var sums: (Double, Double, Double, Double) = (0, 0, 0, 0)
            var i = 0
            while i + 4 <= perSample {
                let d0 = prediction[base + i] - target[base + i], d1 = prediction[base + i + 1] - target[base + i + 1]
                let d2 = prediction[base + i + 2] - target[base + i + 2], d3 = prediction[base + i + 3] - target[base + i + 3]
                sums.0 += Double(d0 * d0); sums.1 += Double(d1 * d1); sums.2 += Double(d2 * d2); sums.3 += Double(d3 * d3)
                gradient[base + i] = 2 * d0 / n; gradient[base + i + 1] = 2 * d1 / n
                gradient[base + i + 2] = 2 * d2 / n; gradient[base + i + 3] = 2 * d3 / n
                i += 4
            }
            while i < perSample {
                let d = prediction[base + i] - target[base + i]
                sums.0 += Double(d * d)
                gradient[base + i] = 2 * d / n
                i += 1
            }
            total += (sums.0 + sums.1) + (sums.2 + sums.3)
        }
        return present == 0 ? 0 : T(total / Double(present * perSample))
    }

    /// Binary cross-entropy on logits, mean over all elements: max(x, 0) - x t + log(1 + e^-|x|).
    @inlinable public static func bceWithLogits<T: EngineScalar>(_ logits: UnsafePointer<T>, _ target: UnsafePointer<T>, _ gradient: UnsafeMutablePointer<T>,
                                                      count: Int) -> T {
        guard count > 0 else { return 0 }
        let n = T(count)
        var total: T = 0
        for i in 0..<count {
            let x = logits[i], t = target[i]
            total += max(x, 0) - x * t + T.log1p(T.exp(-abs(x)))
            gradient[i] = (Activation.sigmoid(x) - t) / n
        }
        return total / n
    }

    /// Softmax cross-entropy over `rows` rows of `classes` logits, averaged over the valid rows (the others,
    /// padding, get zero gradient): -log softmax(x)[target]. Rows run in parallel; the loss is summed per
    /// block of rows and then over blocks in order, the same whatever the thread count.
    @inlinable public static func softmaxCrossEntropy<T: EngineScalar>(_ logits: UnsafePointer<T>, targets: UnsafePointer<Int32>, valid: UnsafePointer<UInt8>,
                                                            _ gradient: UnsafeMutablePointer<T>, rows: Int, classes: Int) -> T {
        var count = 0
        for r in 0..<rows where valid[r] != 0 && targets[r] >= 0 && Int(targets[r]) < classes { count += 1 }
        let n = T(max(count, 1))
        let block = 16, blocks = (rows + block - 1) / block
        guard blocks > 0 else { return 0 }
        let total = withUnsafeTemporaryAllocation(of: T.self, capacity: blocks) { buffer -> T in
            guard let partial = buffer.baseAddress else { return 0 }
            nonisolated(unsafe) let (partials, x0, g0) = (partial, logits, gradient)
            parallelFor(blocks, minimumPerThread: max(1, 4096 / max(classes, 1))) { range in
                for blockIndex in range {
                    var sum: T = 0
                    for r in (blockIndex * block)..<min(rows, (blockIndex + 1) * block) {
                        sum += crossEntropyRow(x0 + r * classes, target: Int(targets[r]), valid: valid[r] != 0, g0 + r * classes, classes: classes, n: n)
                    }
                    partials[blockIndex] = sum
                }
            }
            var total: T = 0
            for i in 0..<blocks { total += partial[i] }
            return total
        }
        return count == 0 ? 0 : total / n
    }

    /// One row of `softmaxCrossEntropy`: writes the row's gradient and returns its loss (0 for padding).
    @inlinable static func crossEntropyRow<T: EngineScalar>(_ x: UnsafePointer<T>, target t: Int, valid: Bool, _ g: UnsafeMutablePointer<T>,
                                                           classes: Int, n: T) -> T {
        guard valid, t >= 0, t < classes else {
            g.update(repeating: 0, count: classes)
            return 0
        }
        if T.self == Float.self {
            // Vectorised in C (a polynomial exp; the Swift loop below calls libm's expf per element).
            let loss = tessera_softmax_cross_entropy_row(UnsafeRawPointer(x).assumingMemoryBound(to: Float.self),
                                                         UnsafeMutableRawPointer(g).assumingMemoryBound(to: Float.self),
                                                         classes, t, Float(1 / n))
            return T(loss)
        }
        return crossEntropyRowReference(x, target: t, g, classes: classes, n: n)
    }

    /// The plain row (libm's exp, one element at a time), for Double and for the tests.
    @inlinable static func crossEntropyRowReference<T: EngineScalar>(_ x: UnsafePointer<T>, target t: Int, _ g: UnsafeMutablePointer<T>,
                                                                    classes: Int, n: T) -> T {
        var m = x[0]
        for c in 1..<classes where x[c] > m { m = x[c] }
        var sum: T = 0
        for c in 0..<classes {
            let e = T.exp(x[c] - m)
            g[c] = e
            sum += e
        }
        let inv = 1 / (sum * n)
        for c in 0..<classes { g[c] *= inv }
        g[t] -= 1 / n
        return T.log(sum) + m - x[t]
    }
}
