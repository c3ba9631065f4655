import Foundation
import Testing
@testable import TesseraCore
import TesseraTestSupport

/// Builds a safetensors file by hand: the length prefix (or a forced one), the header text, the data.
private func rawFile(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    let headerBytes = Array(header.utf8)
    var bytes = withUnsafeBytes(of: (declaredLength ?? UInt64(headerBytes.count)).littleEndian) { Array($0) }
    bytes += headerBytes + data
    return bytes
}

private func write(_ bytes: [UInt8], named name: String) throws -> String {
    let path = try temporaryFolder("st") + "/" + name
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return path
}

/// Opens `bytes` as a file and returns the code of the error it raises (nil when it opens).
private func errorCode(_ bytes: [UInt8]) throws -> TesseraError? {
    let path = try write(bytes, named: "bad.safetensors")
    do {
        _ = try SafetensorsFile(path: path)
        return nil
    } catch let error as TesseraError {
        #expect(error.path == path, "the error names the file")
        #expect(!error.message.isEmpty)
        return error
    }
}

@Suite struct SafetensorsTests {
    func sampleTensors() throws -> [(name: String, tensor: Tensor)] {
        [
            ("len", try Tensor(shape: [3], scalars: [3, 1, 2] as [Int32])),
            ("image", try Tensor(shape: [2, 2, 4, 4], scalars: (0..<64).map { UInt8($0 * 3) })),
            ("mel", try Tensor(shape: [2, 8], scalars: (0..<16).map { Float($0) * 0.25 - 1 })),
            ("half", try Tensor(shape: [5], scalars: [0, 1, -2, 0.5, 65504] as [Float16])),
            ("double", try Tensor(shape: [1, 1], scalars: [Double.pi])),
            ("empty", try Tensor(zeros: .float32, shape: [0, 4])),
        ]
    }

    @Test func roundTripsEveryTensorAndMetadata() throws {
        let folder = try temporaryFolder()
        let path = folder + "/round.safetensors"
        let tensors = try sampleTensors()
        try SafetensorsWriter.write(tensors, metadata: ["keys": "[\"a\",\"b\"]", "format": "tessera"], to: path)
        let file = try SafetensorsFile(path: path)
        #expect(file.metadata == ["keys": "[\"a\",\"b\"]", "format": "tessera"])
        #expect(Set(file.names) == Set(tensors.map(\.name)))
        for (name, tensor) in tensors {
            let read = try file.tensor(name)
            #expect(read == tensor, "tensor \(name)")
            #expect(read.isMappedView || read.byteCount == 0)
        }
        // No temporary file is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["round.safetensors"])
    }

    @Test func alignsDataAndEveryTensorWhoseSizeAllows() throws {
        let bytes = try SafetensorsWriter.encode(try sampleTensors())
        let layout = try bytes.withUnsafeBytes { try SafetensorsHeader.parse($0, path: nil) }
        #expect((8 + layout.headerByteCount) % 64 == 0)
        for entry in layout.entries {
            if entry.byteCount % 64 == 0 { #expect(entry.dataRange.lowerBound % 64 == 0, "\(entry.name)") }
            #expect(entry.dataRange.lowerBound % entry.dtype.byteSize == 0, "\(entry.name) is naturally aligned")
        }
    }

    @Test func viewsOutliveTheFileValue() throws {
        let path = try temporaryFolder() + "/v.safetensors"
        try SafetensorsWriter.write([("x", try Tensor(shape: [2], scalars: [7, 8] as [Int32]))], to: path)
        var view: Tensor?
        do { view = try SafetensorsFile(path: path).tensor("x") }
        #expect(try view?.scalars(as: Int32.self) == [7, 8])
        var copy = try #require(view)
        try copy.withMutableScalars(Int32.self) { $0[1] = 9 }
        #expect(try view?.scalars(as: Int32.self) == [7, 8], "writing a mapped view copies it first")
    }

    @Test func refusesDuplicateNames() throws {
        let t = try Tensor(shape: [1], scalars: [1] as [UInt8])
        #expect(throws: TesseraError.self) { try SafetensorsWriter.encode([("a", t), ("a", t)]) }
        #expect(throws: TesseraError.self) { try SafetensorsWriter.encode([("__metadata__", t)]) }
    }

    /// A header longer than readers accept (100 MB) is never written: an error, and no file or temporary left.
    @Test func refusesToWriteAHeaderNoReaderAccepts() throws {
        let folder = try temporaryFolder()
        let t = try Tensor(shape: [1], scalars: [1] as [UInt8])
        let error = try #require(throws: TesseraError.self) {
            try SafetensorsWriter.write([("a", t)], metadata: ["keys": String(repeating: "k", count: 100_000_000)], to: folder + "/big.safetensors")
        }
        #expect(error.code == "safetensors.header-too-large")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty)
    }

    // The bad-input matrix: one test each, each with its own error code and no crash.

    @Test func emptyFile() throws {
        #expect(try errorCode([])?.code == "safetensors.empty")
    }

    @Test func truncatedLengthPrefix() throws {
        #expect(try errorCode([0x10, 0, 0])?.code == "safetensors.truncated-length")
    }

    @Test func truncatedHeader() throws {
        let full = rawFile(header: #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, data: [1])
        #expect(try errorCode(Array(full.prefix(30)))?.code == "safetensors.header-past-end")
    }

    @Test func headerLengthPastEndOfFile() throws {
        #expect(try errorCode(rawFile(header: "{}", declaredLength: 5000))?.code == "safetensors.header-past-end")
    }

    @Test func headerLengthTwoToThe63() throws {
        let error = try errorCode(rawFile(header: "{}", declaredLength: 1 << 63))
        #expect(error?.code == "safetensors.header-too-large")
        #expect(error?.message.contains("9223372036854775808") == true)
    }

    @Test func invalidJSON() throws {
        #expect(try errorCode(rawFile(header: #"{"a": [1, 2"#))?.code == "safetensors.invalid-json")
    }

    @Test func jsonThatIsNotAnObject() throws {
        #expect(try errorCode(rawFile(header: "[1, 2, 3]"))?.code == "safetensors.header-not-object")
    }

    @Test func unknownDType() throws {
        let error = try errorCode(rawFile(header: #"{"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}}"#, data: [0]))
        #expect(error?.code == "safetensors.unknown-dtype")
        #expect(error?.message.contains("Q7") == true)
    }

    @Test func shapeAndOffsetsDisagree() throws {
        let header = #"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}"#
        #expect(try errorCode(rawFile(header: header, data: Array(repeating: 0, count: 12)))?.code == "safetensors.shape-offsets-mismatch")
    }

    @Test func overlappingTensors() throws {
        let header = #"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}"#
        #expect(try errorCode(rawFile(header: header, data: Array(repeating: 0, count: 6)))?.code == "safetensors.overlap")
    }

    @Test func offsetsPastTheEnd() throws {
        let header = #"{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}}"#
        #expect(try errorCode(rawFile(header: header, data: Array(repeating: 0, count: 4)))?.code == "safetensors.offsets-past-end")
    }

    @Test func dimensionProductOverflowsInt64() throws {
        let header = #"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#
        #expect(try errorCode(rawFile(header: header, data: [0, 0, 0, 0]))?.code == "safetensors.shape-overflow")
        let huge = #"{"a":{"dtype":"U8","shape":[99999999999999999999],"data_offsets":[0,4]}}"#
        #expect(try errorCode(rawFile(header: huge, data: [0, 0, 0, 0]))?.code == "safetensors.shape-overflow")
    }

    @Test func negativeDimension() throws {
        let header = #"{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}"#
        #expect(try errorCode(rawFile(header: header))?.code == "safetensors.bad-shape")
    }

    @Test func gapAndTrailingBytesAsTheReferenceReaderRefusesThem() throws {
        let gap = #"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}"#
        #expect(try errorCode(rawFile(header: gap, data: Array(repeating: 0, count: 6)))?.code == "safetensors.gap")
        let trailing = #"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#
        #expect(try errorCode(rawFile(header: trailing, data: Array(repeating: 0, count: 5)))?.code == "safetensors.trailing-bytes")
    }

    @Test func badMetadataAndEntries() throws {
        #expect(try errorCode(rawFile(header: #"{"__metadata__":{"k":1}}"#))?.code == "safetensors.bad-metadata")
        #expect(try errorCode(rawFile(header: #"{"a":5}"#))?.code == "safetensors.bad-entry")
        #expect(try errorCode(rawFile(header: #"{"a":{"dtype":"U8","shape":[0],"data_offsets":[0]}}"#))?.code == "safetensors.bad-offsets")
        let duplicate = #"{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}"#
        #expect(try errorCode(rawFile(header: duplicate))?.code == "safetensors.invalid-json")
    }

    @Test func missingFileNamesIt() throws {
        #expect(throws: TesseraError.self) { try SafetensorsFile(path: "/nonexistent/x.safetensors") }
    }

    @Test func headerLimitIsConfigurable() throws {
        let bytes = try SafetensorsWriter.encode(try sampleTensors())
        #expect(throws: TesseraError.self) {
            try bytes.withUnsafeBytes { try SafetensorsHeader.parse($0, limits: SafetensorsLimits(maxHeaderBytes: 16), path: nil) }
        }
    }
}
