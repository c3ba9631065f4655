// The bytes behind a tensor: either memory this process owns, or a read-only window into a mapped file.

/// Contiguous, immutable-once-shared bytes. Owned storage is freed when the last tensor using it goes;
/// a mapped view keeps its `MappedFile` alive instead, so zero-copy tensors stay valid after the
/// reader that produced them is gone.
public final class TensorStorage: @unchecked Sendable {
    // @unchecked: the bytes are written only while the storage is uniquely referenced (copy-on-write in
    // `Tensor`), and mapped storage is never written, so sharing across threads is safe.
    let base: UnsafeMutableRawPointer?
    let byteCount: Int
    private let mapping: MappedFile?

    /// Allocates `byteCount` zeroed bytes, 64-byte aligned.
    init(zeroedByteCount byteCount: Int) {
        self.byteCount = byteCount
        if byteCount > 0 {
            let memory = UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 64)
            memory.initializeMemory(as: UInt8.self, repeating: 0, count: byteCount)
            base = memory
        } else {
            base = nil
        }
        mapping = nil
    }

    /// Copies `bytes` into new owned storage.
    init(copying bytes: UnsafeRawBufferPointer) {
        byteCount = bytes.count
        if let source = bytes.baseAddress, bytes.count > 0 {
            let memory = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 64)
            memory.copyMemory(from: source, byteCount: bytes.count)
            base = memory
        } else {
            base = nil
        }
        mapping = nil
    }

    /// A view of `byteCount` bytes at `offset` inside a mapped file. The caller has checked the range.
    init(mapping: MappedFile, offset: Int, byteCount: Int) {
        self.mapping = mapping
        self.byteCount = byteCount
        base = byteCount > 0 ? mapping.bytes.baseAddress.map { UnsafeMutableRawPointer(mutating: $0 + offset) } : nil
    }

    deinit {
        if mapping == nil { base?.deallocate() }
    }

    /// Whether the bytes live in a memory-mapped file (read-only) rather than in owned memory.
    var isMapped: Bool { mapping != nil }

    var rawBuffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: byteCount) }
}
