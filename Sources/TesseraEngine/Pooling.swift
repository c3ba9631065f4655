// Max pooling (with the argmax kept for the backward pass) and nearest-neighbour upsampling.

/// MaxPool2d(kernel, stride) without padding: x [B, C, H, W] -> y [B, C, H', W']. Ties keep the first
/// maximum in scan order, as PyTorch does.
public final class MaxPool2d<T: EngineScalar> {
    public let channels: Int, inHeight: Int, inWidth: Int, kernel: Int, stride: Int
    @inlinable public var outHeight: Int { (inHeight - kernel) / stride + 1 }
    @inlinable public var outWidth: Int { (inWidth - kernel) / stride + 1 }
    /// Flat input index of each output's maximum, for the largest batch planned.
    @usableFromInline var argmax: [Int32]

    public init(channels: Int, inputHeight: Int, inputWidth: Int, kernel: Int, stride: Int? = nil, maxBatch: Int) {
        self.channels = channels
        inHeight = inputHeight
        inWidth = inputWidth
        self.kernel = kernel
        let step = stride ?? kernel
        self.stride = step
        let outH = (inputHeight - kernel) / step + 1, outW = (inputWidth - kernel) / step + 1
        argmax = [Int32](repeating: 0, count: maxBatch * channels * outH * outW)
    }

    @inlinable public func outputCount(batch: Int) -> Int { batch * channels * outHeight * outWidth }

    @inlinable public func forward(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, batch: Int) {
        let outH = outHeight, outW = outWidth, plane = inHeight * inWidth
        argmax.withUnsafeMutableBufferPointer { arg in
            for pl in 0..<(batch * channels) {
                let src = x + pl * plane
                for oh in 0..<outH {
                    for ow in 0..<outW {
                        var best = -T.infinity
                        var where_ = (oh * stride) * inWidth + ow * stride
                        for i in 0..<kernel {
                            for j in 0..<kernel {
                                let index = (oh * stride + i) * inWidth + ow * stride + j
                                let v = src[index]
                                if v > best || v.isNaN { best = v; where_ = index }
                            }
                        }
                        let o = (pl * outH + oh) * outW + ow
                        y[o] = best
                        arg[o] = Int32(where_)
                    }
                }
            }
        }
    }

    @inlinable public func backward(_ dy: UnsafePointer<T>, _ dx: UnsafeMutablePointer<T>, accumulate: Bool = false, batch: Int) {
        let plane = inHeight * inWidth, out = outHeight * outWidth
        if !accumulate { dx.update(repeating: 0, count: batch * channels * plane) }
        argmax.withUnsafeBufferPointer { arg in
            for pl in 0..<(batch * channels) {
                for o in 0..<out { dx[pl * plane + Int(arg[pl * out + o])] += dy[pl * out + o] }
            }
        }
    }
}

/// Nearest-neighbour upsampling by an integer factor: x [B, C, H, W] -> y [B, C, sH, sW].
public final class Upsample<T: EngineScalar> {
    public let channels: Int, inHeight: Int, inWidth: Int, scale: Int
    @inlinable public var outHeight: Int { inHeight * scale }
    @inlinable public var outWidth: Int { inWidth * scale }

    public init(channels: Int, inputHeight: Int, inputWidth: Int, scale: Int) {
        self.channels = channels
        inHeight = inputHeight
        inWidth = inputWidth
        self.scale = scale
    }

    @inlinable public func outputCount(batch: Int) -> Int { batch * channels * outHeight * outWidth }

    @inlinable public func forward(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, batch: Int) {
        let outW = outWidth
        for pl in 0..<(batch * channels) {
            let src = x + pl * inHeight * inWidth, dst = y + pl * outHeight * outW
            for h in 0..<outHeight {
                let srcRow = src + (h / scale) * inWidth, dstRow = dst + h * outW
                for w in 0..<outW { dstRow[w] = srcRow[w / scale] }
            }
        }
    }

    @inlinable public func backward(_ dy: UnsafePointer<T>, _ dx: UnsafeMutablePointer<T>, accumulate: Bool = false, batch: Int) {
        if !accumulate { dx.update(repeating: 0, count: batch * channels * inHeight * inWidth) }
        let outW = outWidth
        for pl in 0..<(batch * channels) {
            let src = dy + pl * outHeight * outW, dst = dx + pl * inHeight * inWidth
            for h in 0..<outHeight {
                let dstRow = dst + (h / scale) * inWidth, srcRow = src + h * outW
                for w in 0..<outW { dstRow[w / scale] += srcRow[w] }
            }
        }
    }
}
