// Optimisers over the flat parameter and gradient buffers, with their state in flat buffers too:
// one pass over memory per step, as PyTorch's formulas.
import CTesseraKernels

/// Which optimiser, and its settings.
public struct OptimizerConfig: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case sgd, adam, adamw }
    public var kind: Kind = .adam
    public var learningRate: Double = 1e-3
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var epsilon: Double = 1e-8
    /// L2 penalty for SGD and Adam; decoupled decay for AdamW.
    public var weightDecay: Double = 0
    /// SGD momentum.
    public var momentum: Double = 0
    /// Clip the global gradient norm to this (nil: no clipping).
    public var clipNorm: Double?

    public init() {}
}

/// SGD (with momentum), Adam and AdamW, exactly as `torch.optim` defines them.
public final class Optimizer<T: EngineScalar>: @unchecked Sendable {
    public let config: OptimizerConfig
    public let count: Int
    /// First moment (Adam) or momentum buffer (SGD).
    public let first: UnsafeMutablePointer<T>
    /// Second moment (Adam).
    public let second: UnsafeMutablePointer<T>
    /// Per-block sums of the gradient norm, allocated once.
    @usableFromInline let normScratch: UnsafeMutablePointer<Double>
    /// Updates made so far.
    public var step: Int { stepCount }
    @usableFromInline var stepCount = 0

    public init(_ config: OptimizerConfig, parameters count: Int) {
        self.config = config
        self.count = count
        first = .allocate(capacity: max(count, 1))
        first.initialize(repeating: 0, count: max(count, 1))
        second = .allocate(capacity: max(count, 1))
        second.initialize(repeating: 0, count: max(count, 1))
        normScratch = .allocate(capacity: max(Optimizer.normBlocks(count), 1))
    }

    deinit {
        first.deallocate()
        second.deallocate()
        normScratch.deallocate()
    }

    /// Restores the step counter (resuming from a checkpoint; the moments are restored by the caller).
    public func restore(step: Int) { stepCount = step }

    /// The global L2 norm of the gradients, summed in double precision over fixed blocks (in parallel), then
    /// over the blocks in order: the same value for any thread count.
    @inlinable public static func gradientNorm(_ grads: UnsafePointer<T>, count: Int) -> Double {
        let partial = UnsafeMutablePointer<Double>.allocate(capacity: max(normBlocks(count), 1))
        defer { partial.deallocate() }
        return gradientNorm(grads, count: count, scratch: partial)
    }

    @inlinable static func normBlocks(_ count: Int) -> Int { (count + normBlock - 1) / normBlock }
    @usableFromInline static var normBlock: Int { 1 << 16 }

    /// The same, with the per-block sums in `scratch` (normBlocks(count) elements): no allocation.
    @inlinable static func gradientNorm(_ grads: UnsafePointer<T>, count: Int, scratch: UnsafeMutablePointer<Double>) -> Double {
        let block = normBlock
        let blocks = normBlocks(count)
        do {
            nonisolated(unsafe) let (out, g) = (scratch, grads)
            parallelFor(blocks) { range in
                for k in range {
                    var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
                    var i = k * block
                    let end = min(count, i + block)
                    while i + 4 <= end {
                        let a = Double(g[i]), b = Double(g[i + 1]), c = Double(g[i + 2]), d = Double(g[i + 3])
                        s0 += a * a; s1 += b * b; s2 += c * c; s3 += d * d
                        i += 4
                    }
                    while i < end { s0 += Double(g[i]) * Double(g[i]); i += 1 }
                    out[k] = (s0 + s1) + (s2 + s3)
                }
            }
        }
        var total = 0.0
        for k in 0..<blocks { total += scratch[k] }
        return total.squareRoot()
    }

    /// One update of `params` from their gradients, at learning rate `lr` (defaults to the config's).
    /// Returns the gradient norm before clipping; when it is not finite, nothing is updated. Element-wise, in parallel over blocks: memory-bound, and
    /// the same result for any thread count.
    @discardableResult
    @inlinable public func update(_ params: ParameterSet<T>, learningRate lr: Double? = nil) -> Double {
        nonisolated(unsafe) let (p, g, m1, m2) = (params.values, params.grads, first, second)
        let count = self.count
        let norm = Optimizer.gradientNorm(g, count: count, scratch: normScratch)
        // A non-finite gradient would poison every weight: leave them (and the step count) as they are.
        guard norm.isFinite else { return norm }
        // torch.nn.utils.clip_grad_norm_ multiplies the gradients by min(1, max_norm / (norm + 1e-6)).
        var clipScale: T = 1
        if let clip = config.clipNorm { clipScale = T(min(1, clip / (norm + 1e-6))) }
        let scale = clipScale
        stepCount += 1
        let rate = lr ?? config.learningRate
        let chunk = 1 << 15
        switch config.kind {
        case .sgd:
            let mu = T(config.momentum), wd = T(config.weightDecay), r = T(rate)
            let firstStep = stepCount == 1
            parallelFor((count + chunk - 1) / chunk) { chunks in
                for i in (chunks.lowerBound * chunk)..<min(count, chunks.upperBound * chunk) {
                    // torch.optim.SGD: d = g + wd p; buf = first ? d : mu buf + d; p -= lr buf
                    var d = g[i] * scale
                    if wd != 0 { d += wd * p[i] }
                    if mu != 0 {
                        m1[i] = firstStep ? d : mu * m1[i] + d
                        d = m1[i]
                    }
                    p[i] -= r * d
                }
            }
        case .adam, .adamw:
            let b2 = T(config.beta2), eps = T(config.epsilon)
            let bias1 = 1 - pow(config.beta1, Double(stepCount)), bias2 = 1 - pow(config.beta2, Double(stepCount))
            let stepSize = T(rate / bias1), rootBias2 = T(bias2.squareRoot())
            let decoupled = config.kind == .adamw
            let decay = T(decoupled ? 1 - rate * config.weightDecay : 1)
            let l2 = T(decoupled ? 0 : config.weightDecay)
            let (oneMinusB1, oneMinusB2) = (T(1 - config.beta1), T(1 - config.beta2))
            if T.self == Float.self {
                // The same arithmetic in C, vectorised for the machine (the loop below stays scalar in Swift).
                var constants = tessera_adam_step(gradient_scale: Float(scale), decay: Float(decay), l2: Float(l2), one_minus_beta1: Float(oneMinusB1),
                                                  beta2: Float(b2), one_minus_beta2: Float(oneMinusB2), step_size: Float(stepSize),
                                                  root_bias2: Float(rootBias2), epsilon: Float(eps), decoupled: decoupled ? 1 : 0)
                nonisolated(unsafe) let pf = UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self)
                nonisolated(unsafe) let gf = UnsafeMutableRawPointer(g).assumingMemoryBound(to: Float.self)
                nonisolated(unsafe) let mf = UnsafeMutableRawPointer(m1).assumingMemoryBound(to: Float.self)
                nonisolated(unsafe) let vf = UnsafeMutableRawPointer(m2).assumingMemoryBound(to: Float.self)
                withUnsafePointer(to: &constants) { k in
                    nonisolated(unsafe) let k = k
                    parallelFor((count + chunk - 1) / chunk) { chunks in
                        let lo = chunks.lowerBound * chunk, hi = min(count, chunks.upperBound * chunk)
                        tessera_adam_f32(pf + lo, gf + lo, mf + lo, vf + lo, hi - lo, k)
                    }
                }
                return norm
            }
            parallelFor((count + chunk - 1) / chunk) { chunks in
                for i in (chunks.lowerBound * chunk)..<min(count, chunks.upperBound * chunk) {
                    // torch.optim.Adam(W), single-tensor path, operation for operation:
                    // p *= 1 - lr wd (AdamW); d = g + wd p (Adam); m.lerp_(d, 1 - b1); v = v b2 + (1 - b2) d d;
                    // p += -(lr / bias1) * (m / (sqrt(v) / sqrt(bias2) + eps))
                    var d = g[i] * scale
                    var w = p[i]
                    if decoupled { w *= decay } else if l2 != 0 { d += l2 * w }
                    let m = m1[i] + oneMinusB1 * (d - m1[i])
                    let v = m2[i] * b2 + oneMinusB2 * d * d
                    m1[i] = m
                    m2[i] = v
                    p[i] = w - stepSize * (m / (v.squareRoot() / rootBias2 + eps))
                }
            }
        }
        return norm
    }
}

#if canImport(Glibc)
import Glibc
#endif
