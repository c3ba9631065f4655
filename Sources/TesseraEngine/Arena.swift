// Activation and scratch memory, planned once from the batch size while a model is built and reused by
// every step: nothing is allocated inside a training step.

/// Where one buffer lives in an `Arena`.
public struct ArenaSlot: Sendable, Equatable {
    public let offset: Int
    public let count: Int
}

/// One block of memory for all activations, their gradients and layer workspaces.
public final class Arena<T: EngineScalar>: @unchecked Sendable {
    // @unchecked: the block is touched only by the step that owns the model.
    public private(set) var count = 0
    @usableFromInline var base: UnsafeMutablePointer<T>?

    public init() {}

    deinit { base?.deallocate() }

    /// Reserves `count` elements, rounded up to 16 (64 bytes in float32) so each buffer starts on a cache line.
    public func reserve(_ count: Int) -> ArenaSlot {
        precondition(base == nil, "buffers are reserved while the model is built")
        let slot = ArenaSlot(offset: self.count, count: count)
        self.count += (max(count, 0) + 15) / 16 * 16
        return slot
    }

    /// Allocates the block (zeroed), 64-byte aligned.
    public func finalize() {
        guard base == nil else { return }
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<T>.stride, alignment: 64)
        let typed = raw.bindMemory(to: T.self, capacity: max(count, 1))
        typed.initialize(repeating: 0, count: max(count, 1))
        base = typed
    }

    /// The buffer of a slot; the arena must be finalised.
    @inlinable @inline(__always) public func pointer(_ slot: ArenaSlot) -> UnsafeMutablePointer<T> {
        guard let base else { preconditionFailure("Arena.finalize() is called before the first step") }
        return base + slot.offset
    }

    /// Bytes held.
    public var byteCount: Int { count * MemoryLayout<T>.stride }
}
