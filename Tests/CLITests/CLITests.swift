import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TesseraCore
import TesseraTestSupport

/// The built `tessera` binary, beside the test bundle in the build folder.
let tesseraBinary: String = {
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    var candidates = [bundle.appendingPathComponent("tessera").path]
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    candidates += [url.path + "/.build/debug/tessera", url.path + "/.build/release/tessera"]
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
}()

let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

@discardableResult
func tessera(_ arguments: [String], binary: String = tesseraBinary) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}


/// An ingest in which every sample fails still writes its (empty) dataset and error report, but exits with
/// status 1 so that a script does not go on as if it had data.
@Suite struct IngestOfNothingTests {
    @Test func anIngestWhereEverySampleFailsExitsWithStatusOne() throws {
        let inputs = try temporaryFolder("all-bad")
        for name in ["noise.png", "truncated.jpg"] {
            try FileManager.default.copyItem(atPath: packageRoot + "/fixtures/corpus/bad/" + name, toPath: inputs + "/" + name)
        }
        let out = try temporaryFolder("all-bad-out")
        let result = try tessera(["ingest", inputs, "--out", out, "--overwrite", "--quiet"])
        #expect(result.status == 1 && result.stderr.contains("none of the 2 samples could be ingested"), "\(result.stderr)")
        let errors = try String(contentsOfFile: out + "/errors.jsonl", encoding: .utf8)
        #expect(errors.contains("image.unknown-format") && errors.contains("image.truncated"))
        #expect(FileManager.default.fileExists(atPath: out + "/manifest.json"))
    }
}

/// Transforms whose samples no dataset or machine could hold are refused before anything is allocated (a
/// 65536 x 65536 pad asked ingest for 3 TB and aborted it; `decode` grew to 24 GB and was killed).
@Suite struct IngestLimitsTests {
    @Test func oversizedSamplesAndShardsAreRefusedUpFront() throws {
        let out = try temporaryFolder("too-large")
        let huge = ["--image-resize", "pad", "--image-width", "65536", "--image-height", "65536"]
        var result = try tessera(["ingest", packageRoot + "/fixtures/corpus/coco", "--out", out, "--overwrite", "--quiet"] + huge)
        #expect(result.status == 1 && result.stderr.contains("is over 2 GiB"), "\(result.stderr)")
        result = try tessera(["decode", packageRoot + "/fixtures/images/photos/chelsea.png", "--out", out + "/one.safetensors"] + huge)
        #expect(result.status == 1 && result.stderr.contains("is over 2 GiB"), "\(result.stderr)")
        // An image that `decode` may make (2 GiB) but a dataset may not hold (1 GiB per tensor, what its loader reads).
        result = try tessera(["ingest", packageRoot + "/fixtures/corpus/coco", "--out", out, "--overwrite", "--quiet", "--image-resize", "pad",
                              "--image-width", "26500", "--image-height", "26500"])
        #expect(result.status == 1 && result.stderr.contains("at most 1 GiB per tensor and sample"), "\(result.stderr)")
        // Normalisation that would put pixels beyond float32 (infinities in the tensor before).
        result = try tessera(["decode", packageRoot + "/fixtures/images/photos/chelsea.png", "--image-mean", "1e308", "--image-std", "1e-308",
                              "--image-dtype", "float32", "--out", out + "/one.safetensors"])
        #expect(result.status == 1 && result.stderr.contains("beyond float32's range"), "\(result.stderr)")
        // Audio: a 100,000 s clip (6 GiB of waveform), and 200 s at hop 1 (3.2M frames: 3.3 GB of spectra), are refused.
        let clip = packageRoot + "/fixtures/audio/derived/3_jackson_12.flac"
        result = try tessera(["decode", clip, "--audio-seconds", "100000", "--hop", "1", "--out", out + "/clip.safetensors"])
        #expect(result.status == 1 && result.stderr.contains("at most 2 GiB"), "\(result.stderr)")
        result = try tessera(["decode", clip, "--audio-seconds", "200", "--hop", "1", "--out", out + "/clip.safetensors"])
        #expect(result.status == 1 && result.stderr.contains("raise --hop"), "\(result.stderr)")
        // 183 MiB per sample: a shard of 256 (47 GiB) is over half the memory of any machine under 94 GiB.
        result = try tessera(["ingest", packageRoot + "/fixtures/corpus/coco", "--out", out, "--overwrite", "--quiet", "--image-size", "8000"])
        #expect(result.status == 1 && result.stderr.contains("lower --shard-size"), "\(result.stderr)")
    }
}

/// A file whose name is not valid UTF-8 is reported as such ("cannot open: No such file" before, since its
/// path was spelt with U+FFFD), and the rest of the folder is ingested.
@Suite struct IngestNamesTests {
    @Test func aNameThatIsNotUTF8IsAClearErrorOfItsOwn() throws {
        let root = try temporaryFolder("names")
        try FileManager.default.copyItem(atPath: packageRoot + "/fixtures/images/photos/chelsea.png", toPath: root + "/good.png")
        let bad = (Array((root + "/").utf8) + [0xFF, 0xFE] + Array("bad.png".utf8) + [0]).map { CChar(bitPattern: $0) }
        #expect(link(root + "/good.png", bad) == 0)
        let out = try temporaryFolder("names-out")
        let result = try tessera(["ingest", root, "--out", out, "--overwrite", "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        let errors = try String(contentsOfFile: out + "/errors.jsonl", encoding: .utf8)
        #expect(errors.contains("ingest.bad-name") && errors.contains("not valid UTF-8"), "\(errors)")
        let manifest = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: out + "/manifest.json"))))
        #expect(manifest["splits"]?["train"]?["samples"]?.intValue == 1)
    }
}

/// An output folder that is, or holds, an input folder is refused before anything is written: `--overwrite`
/// removed its `train/` (here the user's own files) and shards were written among the inputs.
@Suite struct IngestOutputTests {
    @Test func anOutputFolderHoldingInputsIsRefusedAndTheInputsStay() throws {
        let root = try temporaryFolder("holds-inputs")
        try FileManager.default.createDirectory(atPath: root + "/train", withIntermediateDirectories: true)
        for ext in ["jpg", "txt"] {
            try FileManager.default.copyItem(atPath: packageRoot + "/fixtures/corpus/coco/000_790." + ext, toPath: root + "/train/000_790." + ext)
        }
        for out in [root, root + "/train"] {
            let result = try tessera(["ingest", root, "--out", out, "--overwrite", "--quiet"])
            #expect(result.status == 1 && result.stderr.contains("the output folder holds input files"), "\(result.stderr)")
        }
        #expect(FileManager.default.fileExists(atPath: root + "/train/000_790.jpg"))
        #expect(!FileManager.default.fileExists(atPath: root + "/manifest.json"))
        // A folder beside or below the inputs is fine, and a second ingest there does not count the first's
        // shards and manifest among its inputs.
        var inputs: [JSONValue?] = []
        for again in [false, true] {
            let result = try tessera(["ingest", root, "--out", root + "/shards", "--quiet"] + (again ? ["--overwrite"] : []))
            #expect(result.status == 0, "\(result.stderr)")
            inputs.append(try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: root + "/shards/manifest.json"))))["inputs"])
        }
        #expect(inputs[0] != nil && inputs[0] == inputs[1], "\(inputs)")
    }
}
