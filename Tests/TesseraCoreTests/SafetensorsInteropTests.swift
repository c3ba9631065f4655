import Foundation
import Testing
@testable import TesseraCore
import TesseraTestSupport

/// Interop both ways with the reference implementation (Python `safetensors` + numpy).
@Suite struct SafetensorsInteropTests {
    @Test(arguments: ["python_numpy", "python_torch"])
    func readsFilesThatPythonWrote(_ stem: String) throws {
        let folder = packageRoot + "/fixtures/safetensors/"
        let file = try SafetensorsFile(path: folder + stem + ".safetensors")
        let expectedBytes = try FilePath.readAll(folder + stem + ".expected.json")
        let expected = try #require(try JSONValue.parse(expectedBytes).objectValue)
        #expect(Set(file.names) == Set(expected.keys))
        for (name, spec) in expected.members {
            let tensor = try file.tensor(name)
            #expect(tensor.dtype.rawValue == spec["dtype"]?.stringValue, "\(name) dtype")
            #expect(tensor.shape == spec["shape"]?.arrayValue?.compactMap(\.intValue), "\(name) shape")
            let want = spec["values"]?.arrayValue?.compactMap(\.doubleValue) ?? []
            let got = tensor.doubles()
            #expect(got.count == want.count, "\(name) count")
            for (i, (g, w)) in zip(got, want).enumerated() where !(g == w || (g.isNaN && w.isNaN)) {
                Issue.record("\(stem) \(name)[\(i)]: read \(g), Python wrote \(w)")
                break
            }
        }
        if stem == "python_numpy" {
            #expect(file.metadata["written_by"] == "safetensors.numpy")
            #expect(file.metadata["note"] == "unicode ✓ and \"quotes\"")
        }
    }

    @Test func pythonReadsWhatTesseraWrote() throws {
        let folder = try temporaryFolder("interop")
        var rng = SeededRandom(seed: 11)
        let tensors: [(name: String, tensor: Tensor)] = [
            ("image", try Tensor(shape: [3, 3, 8, 8], scalars: (0..<576).map { _ in UInt8(truncatingIfNeeded: rng.next()) })),
            ("text_ids", try Tensor(shape: [3, 7], scalars: (0..<21).map { Int32($0 * 1000 - 7000) })),
            ("text_len", try Tensor(shape: [3], scalars: [7, 2, 0] as [Int32])),
            ("audio_mel", try Tensor(shape: [3, 4, 5], scalars: (0..<60).map { _ in Float(rng.nextGaussian()) })),
            ("half", try Tensor(shape: [4], scalars: [0.333, -2, 65504, 0.0001] as [Float16])),
            ("double", try Tensor(shape: [2], scalars: [1.0 / 3.0, -1e300])),
            ("special", try Tensor(shape: [3], scalars: [Float.nan, .infinity, -0.0])),
            ("mask", try Tensor(shape: [3], scalars: [1, 0, 1] as [UInt8])),
            ("nothing", try Tensor(zeros: .int32, shape: [0])),
        ]
        let path = folder + "/tessera.safetensors"
        let metadata = ["keys": #"["k1","k2","k3"]"#, "tool": "tessera ✓"]
        try SafetensorsWriter.write(tensors, metadata: metadata, to: path)
        var expected = JSONObject()
        for (name, tensor) in tensors {
            expected[name] = .object(JSONObject([
                ("dtype", .string(tensor.dtype.rawValue)),
                ("shape", .array(tensor.shape.map { .int($0) })),
                ("values", .array(tensor.doubles().map { $0.isNaN ? .number("NaN") : $0.isInfinite ? .number($0 > 0 ? "Infinity" : "-Infinity") : .double($0) })),
            ]))
        }
        expected["__metadata__"] = .object(JSONObject(metadata.map { ($0.key, .string($0.value)) }))
        let expectedPath = folder + "/expected.json"
        try DurableFile.write(JSONValue.object(expected).serialized(), to: expectedPath)
        let result = try runProcess(python3, [packageRoot + "/tools/interop/check_safetensors.py", path, expectedPath])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
    }
}
