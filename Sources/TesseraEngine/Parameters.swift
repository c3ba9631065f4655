// All parameters in one flat buffer, all gradients in another (llm.c style); layers hold offsets into them.
import TesseraCore

/// Where one parameter tensor lives in the flat buffers.
public struct ParameterRef: Sendable, Equatable {
    public let offset: Int
    public let count: Int
}

/// The parameter tensors of a model: names and shapes in PyTorch's layouts, one flat value buffer and one
/// flat gradient buffer.
public final class ParameterSet<T: EngineScalar>: @unchecked Sendable {
    // @unchecked: the buffers are written only by the training loop, one step at a time.
    public struct Entry: Sendable {
        public let name: String
        public let shape: [Int]
        public let ref: ParameterRef
    }

    public private(set) var entries: [Entry] = []
    public private(set) var count = 0
    public private(set) var values: UnsafeMutablePointer<T>
    public private(set) var grads: UnsafeMutablePointer<T>
    private var finalized = false

    public init() {
        values = UnsafeMutablePointer<T>.allocate(capacity: 1)
        grads = UnsafeMutablePointer<T>.allocate(capacity: 1)
    }

    deinit {
        values.deallocate()
        grads.deallocate()
    }

    /// Registers a parameter tensor; allowed until `finalize()`.
    public func add(_ name: String, shape: [Int]) -> ParameterRef {
        precondition(!finalized, "parameters are added while the model is built")
        let size = shape.reduce(1, *)
        let ref = ParameterRef(offset: count, count: size)
        entries.append(Entry(name: name, shape: shape, ref: ref))
        count += size
        return ref
    }

    /// Allocates the flat buffers (zeroed).
    public func finalize() {
        guard !finalized else { return }
        finalized = true
        values.deallocate()
        grads.deallocate()
        values = UnsafeMutablePointer<T>.allocate(capacity: max(count, 1))
        values.initialize(repeating: 0, count: max(count, 1))
        grads = UnsafeMutablePointer<T>.allocate(capacity: max(count, 1))
        grads.initialize(repeating: 0, count: max(count, 1))
    }

    @inlinable @inline(__always) public func value(_ ref: ParameterRef) -> UnsafeMutablePointer<T> { values + ref.offset }
    @inlinable @inline(__always) public func grad(_ ref: ParameterRef) -> UnsafeMutablePointer<T> { grads + ref.offset }

    @inlinable public func zeroGrads() { grads.update(repeating: 0, count: count) }

    public func entry(_ name: String) -> Entry? { entries.first { $0.name == name } }

    /// Copies of the values (or gradients) as named float32 tensors in PyTorch's layouts. Checkpoints do not
    /// use it: they write straight from the buffers, without a second copy of a large model in memory.
    public func tensors(gradients: Bool = false) throws -> [(name: String, tensor: Tensor)] {
        try entries.map { entry in
            let start = (gradients ? grads : values) + entry.ref.offset
            let scalars: [Float]
            if T.self == Float.self {
                // A plain copy: the generic conversion below is not specialised across modules and took
                // most of a checkpoint's time (a value-witness call per parameter).
                scalars = Array(UnsafeBufferPointer(start: UnsafeRawPointer(start).assumingMemoryBound(to: Float.self), count: entry.ref.count))
            } else {
                scalars = (0..<entry.ref.count).map { Float(start[$0]) }
            }
            return (entry.name, try Tensor(shape: entry.shape, scalars: scalars))
        }
    }

    /// Loads values from named tensors (float32 or float64), checking every name and shape.
    public func load(_ tensors: [String: Tensor], source: String) throws {
        for entry in entries {
            guard let tensor = tensors[entry.name] else {
                throw TesseraError(path: source, stage: .read, code: "train.missing-parameter", "no tensor \"\(entry.name)\"")
            }
            guard tensor.shape == entry.shape else {
                throw TesseraError(path: source, stage: .read, code: "train.parameter-shape",
                                   "\"\(entry.name)\" is \(tensor.shape), the model needs \(entry.shape)")
            }
            if T.self == Float.self, tensor.dtype == .float32 {
                // Bytes as they are (what the conversion through Double gives, without its generic cost).
                try tensor.withScalars(Float.self) { source in
                    guard let from = source.baseAddress else { return }
                    UnsafeMutableRawPointer(values + entry.ref.offset).assumingMemoryBound(to: Float.self).update(from: from, count: entry.ref.count)
                }
                continue
            }
            let doubles = tensor.doubles()
            for i in 0..<entry.ref.count { values[entry.ref.offset + i] = T(doubles[i]) }
        }
        // A NaN or infinity would only surface as a non-finite loss later, far from its cause.
        for entry in entries {
            let loaded = UnsafeBufferPointer(start: values + entry.ref.offset, count: entry.ref.count)
            if let bad = loaded.firstIndex(where: { !$0.isFinite }) {
                throw TesseraError(path: source, stage: .read, code: "train.non-finite-parameter",
                                   "\"\(entry.name)\" holds \(loaded[bad]) at element \(bad): the weights are not usable")
            }
        }
    }
}
