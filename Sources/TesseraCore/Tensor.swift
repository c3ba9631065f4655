// The tensor every Tessera module exchanges: a dtype, a shape and contiguous row-major bytes.

/// A contiguous, row-major, n-dimensional array. Storage is either owned memory or a zero-copy view into
/// a memory-mapped file (read from a safetensors file); writing to a view first copies it
/// (copy-on-write), so a mapped file is never modified.
public struct Tensor: Sendable {
    /// The element type.
    public let dtype: DType
    /// The extent of each dimension; `[]` is a scalar.
    public let shape: [Int]
    private(set) var storage: TensorStorage

    /// The number of elements (the product of the shape).
    public var count: Int { shape.reduce(1, *) }
    /// The number of bytes of data.
    public var byteCount: Int { storage.byteCount }
    /// Whether the data is a view into a memory-mapped file.
    public var isMappedView: Bool { storage.isMapped }

    /// A zero-filled tensor. Throws when the byte size overflows or a dimension is negative.
    public init(zeros dtype: DType, shape: [Int]) throws {
        let bytes = try Tensor.byteSize(dtype: dtype, shape: shape)
        self.dtype = dtype
        self.shape = shape
        storage = TensorStorage(zeroedByteCount: bytes)
    }

    /// A tensor holding a copy of `scalars` with the given shape.
    public init<T: TensorScalar>(shape: [Int], scalars: [T]) throws {
        let bytes = try Tensor.byteSize(dtype: T.dtype, shape: shape)
        guard bytes == scalars.count * T.dtype.byteSize else {
            throw TesseraError(stage: .config, code: "tensor.shape-mismatch",
                               "shape \(shape) holds \(bytes / T.dtype.byteSize) elements, not \(scalars.count)")
        }
        dtype = T.dtype
        self.shape = shape
        storage = scalars.withUnsafeBytes { TensorStorage(copying: $0) }
    }

    /// A tensor holding a copy of raw little-endian bytes. Throws when their count does not fit the shape.
    public init(dtype: DType, shape: [Int], copying bytes: UnsafeRawBufferPointer) throws {
        let expected = try Tensor.byteSize(dtype: dtype, shape: shape)
        guard expected == bytes.count else {
            throw TesseraError(stage: .config, code: "tensor.shape-mismatch",
                               "shape \(shape) of \(dtype.displayName) needs \(expected) bytes, got \(bytes.count)")
        }
        self.dtype = dtype
        self.shape = shape
        storage = TensorStorage(copying: bytes)
    }

    /// Wraps existing storage (used by the safetensors reader for mapped views).
    init(dtype: DType, shape: [Int], storage: TensorStorage) {
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
    }

    /// The byte size of a tensor, checking for negative dimensions and Int64 overflow.
    public static func byteSize(dtype: DType, shape: [Int]) throws -> Int {
        var total = dtype.byteSize
        for dimension in shape {
            guard dimension >= 0 else {
                throw TesseraError(stage: .config, code: "tensor.negative-dimension", "negative dimension in shape \(shape)")
            }
            let (product, overflow) = total.multipliedReportingOverflow(by: dimension)
            guard !overflow else {
                throw TesseraError(stage: .config, code: "tensor.overflow", "shape \(shape) overflows a 64-bit byte count")
            }
            total = product
        }
        return total
    }

    /// The same data seen with another shape of the same element count (no copy).
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        let bytes = try Tensor.byteSize(dtype: dtype, shape: newShape)
        guard bytes == byteCount else {
            throw TesseraError(stage: .config, code: "tensor.shape-mismatch", "cannot reshape \(shape) to \(newShape)")
        }
        return Tensor(dtype: dtype, shape: newShape, storage: storage)
    }

    /// Read-only access to the raw bytes.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(storage.rawBuffer)
    }

    /// Mutable access to the raw bytes; copies first if the storage is shared or mapped.
    public mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        if storage.isMapped || !isKnownUniquelyReferenced(&storage) {
            storage = TensorStorage(copying: storage.rawBuffer)
        }
        return try body(UnsafeMutableRawBufferPointer(start: storage.base, count: storage.byteCount))
    }

    /// Typed read-only access. Throws when `T` is not the tensor's dtype. Data that is not aligned for `T`
    /// (possible in files from other writers) is copied to aligned memory first.
    public func withScalars<T: TensorScalar, R>(_ type: T.Type, _ body: (UnsafeBufferPointer<T>) throws -> R) throws -> R {
        try checkType(T.self)
        let raw = storage.rawBuffer
        if let base = raw.baseAddress, Int(bitPattern: base) % MemoryLayout<T>.alignment != 0 {
            let aligned = TensorStorage(copying: raw)
            return try body(aligned.rawBuffer.assumingMemoryBound(to: T.self))
        }
        return try body(raw.assumingMemoryBound(to: T.self))
    }

    /// Typed mutable access (copy-on-write). Throws when `T` is not the tensor's dtype.
    public mutating func withMutableScalars<T: TensorScalar, R>(_ type: T.Type, _ body: (UnsafeMutableBufferPointer<T>) throws -> R) throws -> R {
        try checkType(T.self)
        return try withUnsafeMutableBytes { try body($0.assumingMemoryBound(to: T.self)) }
    }

    /// The elements as an array of `T`; throws when `T` is not the tensor's dtype.
    public func scalars<T: TensorScalar>(as type: T.Type) throws -> [T] {
        try withScalars(T.self) { Array($0) }
    }

    /// The element at a flat index, converted to Double (any dtype). Throws when out of range.
    public func double(at index: Int) throws -> Double {
        guard index >= 0 && index < count else {
            throw TesseraError(stage: .config, code: "tensor.index", "index \(index) out of range for \(count) elements")
        }
        return storage.rawBuffer.baseAddress.map { ScalarDecoding.double(dtype, at: $0 + index * dtype.byteSize) } ?? 0
    }

    /// Every element converted to Double, for tests, statistics and printing.
    public func doubles() -> [Double] {
        guard let base = storage.rawBuffer.baseAddress else { return [] }
        let size = dtype.byteSize
        return (0..<count).map { ScalarDecoding.double(dtype, at: base + $0 * size) }
    }

    private func checkType<T: TensorScalar>(_ type: T.Type) throws {
        guard T.dtype == dtype else {
            throw TesseraError(stage: .config, code: "tensor.dtype-mismatch",
                               "tensor is \(dtype.displayName), accessed as \(T.dtype.displayName)")
        }
    }
}

extension Tensor: Equatable {
    /// Exact equality: same dtype, same shape and the same bytes.
    public static func == (lhs: Tensor, rhs: Tensor) -> Bool {
        guard lhs.dtype == rhs.dtype, lhs.shape == rhs.shape else { return false }
        return lhs.withUnsafeBytes { a in rhs.withUnsafeBytes { b in a.elementsEqual(b) } }
    }
}

extension Tensor {
    /// The largest absolute difference between corresponding elements, as Double. Throws when the
    /// shapes differ; NaN on either side counts as an infinite difference unless both are NaN.
    public static func maxAbsDifference(_ lhs: Tensor, _ rhs: Tensor) throws -> Double {
        guard lhs.shape == rhs.shape else {
            throw TesseraError(stage: .config, code: "tensor.shape-mismatch", "shapes differ: \(lhs.shape) vs \(rhs.shape)")
        }
        var worst = 0.0
        for (a, b) in zip(lhs.doubles(), rhs.doubles()) {
            if a.isNaN || b.isNaN {
                if !(a.isNaN && b.isNaN) { return .infinity }
                continue
            }
            if a == b { continue }
            worst = max(worst, abs(a - b))
        }
        return worst
    }
}

/// Reads one little-endian element of any dtype as a Double.
enum ScalarDecoding {
    static func double(_ dtype: DType, at pointer: UnsafeRawPointer) -> Double {
        switch dtype {
        case .bool: return pointer.load(as: UInt8.self) != 0 ? 1 : 0
        case .uint8: return Double(pointer.load(as: UInt8.self))
        case .int8: return Double(pointer.load(as: Int8.self))
        case .uint16: return Double(pointer.loadUnaligned(as: UInt16.self))
        case .int16: return Double(pointer.loadUnaligned(as: Int16.self))
        case .uint32: return Double(pointer.loadUnaligned(as: UInt32.self))
        case .int32: return Double(pointer.loadUnaligned(as: Int32.self))
        case .uint64: return Double(pointer.loadUnaligned(as: UInt64.self))
        case .int64: return Double(pointer.loadUnaligned(as: Int64.self))
        case .float16: return Double(Float16(bitPattern: pointer.loadUnaligned(as: UInt16.self)))
        case .bfloat16:
            return Double(Float(bitPattern: UInt32(pointer.loadUnaligned(as: UInt16.self)) << 16))
        case .float32: return Double(pointer.loadUnaligned(as: Float.self))
        case .float64: return pointer.loadUnaligned(as: Double.self)
        case .float8E4M3: return float8E4M3(pointer.load(as: UInt8.self))
        case .float8E5M2:
            return Double(Float16(bitPattern: UInt16(pointer.load(as: UInt8.self)) << 8))
        }
    }

    /// OCP FP8 E4M3 ("fn" variant: no infinities, 0x7F/0xFF are NaN), exponent bias 7.
    static func float8E4M3(_ bits: UInt8) -> Double {
        let sign: Double = bits & 0x80 != 0 ? -1 : 1
        let exponent = Int((bits >> 3) & 0x0F)
        let mantissa = Double(bits & 0x07)
        if exponent == 0x0F && bits & 0x07 == 0x07 { return .nan }
        if exponent == 0 { return sign * mantissa / 8 * 0x1p-6 }
        return sign * (1 + mantissa / 8) * Double(sign: .plus, exponent: exponent - 7, significand: 1)
    }
}
