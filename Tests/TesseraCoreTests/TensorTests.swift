import Testing
@testable import TesseraCore

@Suite struct TensorTests {
    @Test func typedAccessAndShape() throws {
        let t = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6] as [Float])
        #expect(t.dtype == .float32)
        #expect(t.count == 6)
        #expect(t.byteCount == 24)
        #expect(try t.scalars(as: Float.self) == [1, 2, 3, 4, 5, 6])
        #expect(throws: TesseraError.self) { try t.scalars(as: Int32.self) }
        #expect(try t.reshaped([3, 2]).shape == [3, 2])
        #expect(throws: TesseraError.self) { try t.reshaped([4, 2]) }
    }

    @Test func everySupportedDTypeHasTypedAccess() throws {
        #expect(try Tensor(shape: [2], scalars: [1, 255] as [UInt8]).doubles() == [1, 255])
        #expect(try Tensor(shape: [2], scalars: [-7, 7] as [Int32]).doubles() == [-7, 7])
        #expect(try Tensor(shape: [2], scalars: [0.5, -1024] as [Float16]).doubles() == [0.5, -1024])
        #expect(try Tensor(shape: [1], scalars: [0.1] as [Double]).doubles() == [0.1])
        #expect(try Tensor(shape: [1], scalars: [Int64.min] as [Int64]).doubles() == [-9.223372036854775808e18])
    }

    @Test func copyOnWriteLeavesOtherCopiesAlone() throws {
        let a = try Tensor(shape: [3], scalars: [1, 2, 3] as [Int32])
        var b = a
        try b.withMutableScalars(Int32.self) { $0[0] = 42 }
        #expect(try a.scalars(as: Int32.self) == [1, 2, 3])
        #expect(try b.scalars(as: Int32.self) == [42, 2, 3])
    }

    @Test func equalityAndDifference() throws {
        let a = try Tensor(shape: [3], scalars: [1, 2, 3] as [Float])
        let b = try Tensor(shape: [3], scalars: [1, 2.5, 3] as [Float])
        #expect(a == a)
        #expect(a != b)
        #expect(try Tensor.maxAbsDifference(a, b) == 0.5)
        let nan = try Tensor(shape: [3], scalars: [1, .nan, 3] as [Float])
        #expect(try Tensor.maxAbsDifference(a, nan) == .infinity)
        #expect(throws: TesseraError.self) { try Tensor.maxAbsDifference(a, try a.reshaped([3, 1])) }
    }

    @Test func rejectsImpossibleShapes() {
        #expect(throws: TesseraError.self) { try Tensor(zeros: .float32, shape: [-1]) }
        #expect(throws: TesseraError.self) { try Tensor(zeros: .float32, shape: [1 << 31, 1 << 31, 4]) }
    }

    @Test func seededRandomIsReproducible() {
        var a = SeededRandom(seed: 7), b = SeededRandom(seed: 7), c = SeededRandom(seed: 7, stream: 1)
        let first = (0..<5).map { _ in a.next() }
        #expect(first == (0..<5).map { _ in b.next() })
        #expect(first != (0..<5).map { _ in c.next() })
        var items = Array(0..<100)
        a.shuffle(&items)
        #expect(items.sorted() == Array(0..<100))
    }

    /// The byte-level extension finder agrees with the plain definition (last dot of the last path
    /// component, not a leading one, lower-cased) on awkward names.
    @Test func pathExtensionMatchesItsDefinition() {
        func reference(_ path: String) -> String {
            let name = FilePath.split(path).name
            guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return "" }
            return name[name.index(after: dot)...].lowercased()
        }
        let paths = ["cat01.JPG", "a/b/c.png", "/x/.hidden", ".png", "..png", "a.", "noext", "dir.d/file", "a.png/", "a.png//",
                     "/", "", "x/y.Tar.GZ", "é/ü.WAV", "a.ÉXT", "photo.Jpeg", "a/.b.txt", "./c.txt", "a//b.ids"]
        for path in paths {
            #expect(FilePath.pathExtension(path) == reference(path), "\(path)")
        }
    }

    @Test func sha256OfKnownInput() {
        #expect(SHA256Digest.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256Digest.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        // The per-key number of splits and crop seeds: the value of the digest's first 16 hex digits.
        #expect(SHA256Digest.leadingWord(of: "abc") == 0xba78_16bf_8f01_cfea)
        #expect(SHA256Digest.leadingWord(of: "") == 0xe3b0_c442_98fc_1c14)
        for key in ["cat01", "a/b/é", String(repeating: "x", count: 1000)] {
            let hex = SHA256Digest.hex(Array(key.utf8))
            #expect(SHA256Digest.leadingWord(of: key) == UInt64(hex.prefix(16), radix: 16))
        }
    }
}
