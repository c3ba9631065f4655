// Element-wise activations. Forward passes may run in place (y == x); backward passes use the output.

public enum Activation: String, Sendable, Codable, CaseIterable {
    case identity, relu, leakyRelu = "leaky_relu", sigmoid, tanh

    /// Runs `body(offset, count)` over `count` elements: in blocks on the engine's threads from 64K elements
    /// (an element-wise pass gives the same values however it is split), else at once.
    @inlinable static func elementwise(count: Int, _ body: (Int, Int) -> Void) {
        let block = 1 << 14
        guard count >= 1 << 16, EngineThreads.current > 1 else {
            body(0, count)
            return
        }
        parallelFor((count + block - 1) / block) { blocks in
            let lo = blocks.lowerBound * block, hi = min(count, blocks.upperBound * block)
            body(lo, hi - lo)
        }
    }

    /// y = f(x) for `count` elements (y may equal x).
    @inlinable public func forward<T: EngineScalar>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, count: Int) {
        nonisolated(unsafe) let (x, y) = (x, y)
        Activation.elementwise(count: count) { offset, part in forwardBlock(x + offset, y + offset, count: part) }
    }

    @inlinable func forwardBlock<T: EngineScalar>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, count: Int) {
        switch self {
        case .identity:
            if UnsafePointer(y) != x { y.update(from: x, count: count) }
        case .relu:
            for i in 0..<count { y[i] = x[i] > 0 ? x[i] : 0 }
        case .leakyRelu:
            for i in 0..<count { y[i] = x[i] > 0 ? x[i] : x[i] * Activation.leakySlope() }
        case .sigmoid:
            for i in 0..<count { y[i] = Activation.sigmoid(x[i]) }
        case .tanh:
            for i in 0..<count { y[i] = T.tanh(x[i]) }
        }
    }

    /// dx (+)= dy * f'(x), written from the output y = f(x) (dx may equal dy).
    @inlinable public func backward<T: EngineScalar>(output y: UnsafePointer<T>, _ dy: UnsafePointer<T>, _ dx: UnsafeMutablePointer<T>, count: Int,
                                                     accumulate: Bool = false) {
        nonisolated(unsafe) let (y, dy, dx) = (y, dy, dx)
        Activation.elementwise(count: count) { offset, part in
            backwardBlock(output: y + offset, dy + offset, dx + offset, count: part, accumulate: accumulate)
        }
    }

    @inlinable func backwardBlock<T: EngineScalar>(output y: UnsafePointer<T>, _ dy: UnsafePointer<T>, _ dx: UnsafeMutablePointer<T>, count: Int,
                                                   accumulate: Bool) {
        switch self {
        case .identity:
            if accumulate {
                for i in 0..<count { dx[i] += dy[i] }
            } else if UnsafePointer(dx) != dy {
                dx.update(from: dy, count: count)
            }
        case .relu:
            T.rectifierGradient(output: y, dy, dx, count: count, accumulate: accumulate, negativeSlope: 0)
        case .leakyRelu:
            T.rectifierGradient(output: y, dy, dx, count: count, accumulate: accumulate, negativeSlope: Activation.leakySlope())
        case .sigmoid:
            if accumulate { for i in 0..<count { dx[i] += dy[i] * y[i] * (1 - y[i]) } } else { for i in 0..<count { dx[i] = dy[i] * y[i] * (1 - y[i]) } }
        case .tanh:
            if accumulate { for i in 0..<count { dx[i] += dy[i] * (1 - y[i] * y[i]) } } else { for i in 0..<count { dx[i] = dy[i] * (1 - y[i] * y[i]) } }
        }
    }

    /// nn.LeakyReLU's default negative slope.
    @inlinable @inline(__always) static func leakySlope<T: EngineScalar>() -> T { T(0.01) }

    @inlinable @inline(__always) static func sigmoid<T: EngineScalar>(_ x: T) -> T {
        x >= 0 ? 1 / (1 + T.exp(-x)) : T.exp(x) / (1 + T.exp(x))
    }
}

/// Concatenates feature blocks [B, f_i] into [B, Σf_i] (and splits them back: `split` is its adjoint).
public enum FeatureConcat {
    @inlinable public static func concat<T: EngineScalar>(_ parts: [(UnsafePointer<T>, Int)], into y: UnsafeMutablePointer<T>, batch: Int) {
        let total = parts.reduce(0) { $0 + $1.1 }
        for b in 0..<batch {
            var offset = 0
            for (x, width) in parts {
                (y + b * total + offset).update(from: x + b * width, count: width)
                offset += width
            }
        }
    }

    /// The adjoint of `concat`: each block's rows written to (or added to) its gradient.
    @inlinable public static func split<T: EngineScalar>(_ dy: UnsafePointer<T>, into parts: [(UnsafeMutablePointer<T>, Int)], batch: Int,
                                              accumulate: Bool = false) {
        let total = parts.reduce(0) { $0 + $1.1 }
        for b in 0..<batch {
            var offset = 0
            for (dx, width) in parts {
                let from = dy + b * total + offset, to = dx + b * width
                if accumulate { for i in 0..<width { to[i] += from[i] } } else { to.update(from: from, count: width) }
                offset += width
            }
        }
    }
}
