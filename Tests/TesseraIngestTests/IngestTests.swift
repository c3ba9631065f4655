import Foundation
import Testing
import TesseraCore
import TesseraShards
@testable import TesseraIngest
import TesseraTestSupport

let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

let corpus = packageRoot + "/fixtures/corpus"
let bertTokenizer = packageRoot + "/fixtures/text/tokenizers/bert-wordpiece.json"


func sampleConfig(_ inputs: [String] = [corpus]) -> IngestConfig {
    var config = IngestConfig()
    config.inputs = inputs
    config.text.tokenizer = bertTokenizer
    config.valFraction = 0.2
    config.shardSize = 8
    return config
}

@discardableResult
func ingest(_ config: IngestConfig, to out: String, jobs: Int = 2, overwrite: Bool = false, resume: Bool = false) throws -> IngestSummary {
    let runner = IngestRunner(config: config, output: out)
    runner.jobs = jobs
    runner.overwrite = overwrite
    runner.resume = resume
    return try runner.run()
}

/// Every file below `folder`, relative path -> bytes.
func contents(_ folder: String) throws -> [String: Data] {
    var out: [String: Data] = [:]
    for case let relative as String in FileManager.default.enumerator(atPath: folder) ?? FileManager.DirectoryEnumerator() {
        var isFolder: ObjCBool = false
        let path = folder + "/" + relative
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), !isFolder.boolValue {
            out[relative] = try Data(contentsOf: URL(fileURLWithPath: path))
        }
    }
    return out
}

func errorLines(_ out: String) throws -> [IngestErrorRecord] {
    let text = try String(contentsOfFile: out + "/errors.jsonl", encoding: .utf8)
    return text.split(separator: "\n").compactMap { try? JSONValue.parse(String($0)) }.compactMap(IngestErrorRecord.init(json:))
}

@Suite struct IngestTests {
    @Test func sampleCorpusCountsErrorsAndVerifies() throws {
        let out = try temporaryFolder()
        let summary = try ingest(sampleConfig(), to: out)
        #expect(summary.samplesFound == 46)
        #expect(summary.samplesWritten == 40)
        let manifest = try DatasetManifest.load(folder: out)
        #expect(manifest.sampleCount == 40)
        #expect(manifest.inputs["samples_found"]?.intValue == 46)
        #expect(manifest.modalities == ["image", "audio", "text"])
        #expect(Set(manifest.schema.map(\.name)) == ["image", "audio_mel", "text_ids", "text_len", "mask_image", "mask_audio", "mask_text"])
        // Every bad file has its line, and the counts add up.
        let errors = try errorLines(out)
        let bad = ["bad/truncated.jpg", "bad/silent.wav", "bad/noise.png", "bad/folder.jpg", "bad/latin1.txt", "bad/misnamed.wav"]
        for name in bad { #expect(errors.contains { $0.path.hasSuffix(name) }, "\(name) has an error line") }
        #expect(Set(errors.map(\.key)).count == summary.samplesFound - manifest.sampleCount)
        #expect(manifest.inputs["unknown_extensions"]?[".md"]?.intValue == 2)  // README.md and bad/notes.md
        // Five samples lack a modality and are kept with a mask.
        #expect(manifest.statistics["presence"]?["audio"]?.intValue == 37)
        #expect(manifest.statistics["presence"]?["image"]?.intValue == 38)
        #expect(manifest.statistics["presence"]?["text"]?.intValue == 38)
        let (problems, shards) = try DatasetVerifier.verify(folder: out)
        #expect(problems.isEmpty, "\(problems)")
        #expect(shards == manifest.splits.reduce(0) { $0 + $1.shards.count })
        #expect(!FileManager.default.fileExists(atPath: out + "/.ingest"), "journals are removed at the end")
    }

    /// A named pipe among the inputs (here one per modality) is a bad file with its error line, not a
    /// run that waits forever for a writer.
    @Test func namedPipesAreBadFilesNotAHang() throws {
        let root = try temporaryFolder("fifo")
        for ext in ["jpg", "flac", "txt"] {
            try FileManager.default.copyItem(atPath: corpus + "/coco/000_790." + ext, toPath: root + "/good." + ext)
        }
        for name in ["pipe.png", "pipe.wav", "pipe.txt"] { #expect(mkfifo(root + "/" + name, 0o644) == 0) }
        let out = try temporaryFolder()
        let summary = try ingest(sampleConfig([root]), to: out)
        #expect(summary.samplesFound == 2)
        #expect(summary.samplesWritten == 1)
        let errors = try errorLines(out)
        for name in ["pipe.png", "pipe.wav", "pipe.txt"] {
            #expect(errors.contains { $0.path.hasSuffix(name) && $0.message.contains("not a regular file") }, "\(name): \(errors)")
        }
    }

    @Test func outputIsTheSameBytesForAnyJobCount() throws {
        let one = try temporaryFolder(), two = try temporaryFolder(), three = try temporaryFolder()
        try ingest(sampleConfig(), to: one, jobs: 1)
        try ingest(sampleConfig(), to: two, jobs: 2)
        try ingest(sampleConfig(), to: three, jobs: 3)
        let reference = try contents(one)
        #expect(reference.count > 5)
        // Bools, not comparisons inside #expect: on failure the macro would diff every file's bytes.
        let twoSame = try contents(two) == reference, threeSame = try contents(three) == reference
        #expect(twoSame && threeSame)
    }

    @Test func everyFlippedByteIsReportedByVerify() throws {
        let out = try temporaryFolder()
        try ingest(sampleConfig(), to: out)
        let manifest = try DatasetManifest.load(folder: out)
        let shards = manifest.splits.flatMap(\.shards)
        var rng = SeededRandom(seed: 99)
        for trial in 0..<12 {
            let shard = shards[rng.nextInt(below: shards.count)]
            let path = out + "/" + shard.file
            let original = try Data(contentsOf: URL(fileURLWithPath: path))
            var bytes = original
            // The header length, the last byte, anywhere: every single flipped bit is caught.
            let at = trial == 0 ? 3 : (trial == 1 ? bytes.count - 1 : rng.nextInt(below: bytes.count))
            bytes[at] ^= UInt8(1 << rng.nextInt(below: 8))
            try bytes.write(to: URL(fileURLWithPath: path))
            let (problems, _) = try DatasetVerifier.verify(folder: out)
            #expect(problems.contains { $0.file == path }, "a flipped byte at \(at) of \(shard.file) is reported")
            #expect(problems.allSatisfy { $0.file == path }, "only that shard is reported")
            try original.write(to: URL(fileURLWithPath: path))
        }
        #expect(try DatasetVerifier.verify(folder: out).problems.isEmpty)
    }

    /// Resuming from any shard boundary, in the first split or deep in the second, gives the bytes of an
    /// uninterrupted run (statistics included, which must be summed in the same order).
    @Test func resumingFromEveryShardBoundaryGivesTheSameBytes() throws {
        var config = sampleConfig()
        config.shardSize = 1
        let reference = try temporaryFolder()
        try ingest(config, to: reference, overwrite: true)
        let expected = try contents(reference)
        let shards = expected.keys.filter { $0.hasSuffix(".safetensors") }.count
        #expect(shards >= 8 && expected.keys.contains { $0.hasPrefix("val/shard-000002") })
        for stop in 1..<shards {
            let out = try temporaryFolder()
            let interrupted = IngestRunner(config: config, output: out)
            interrupted.stopAfterShards = stop
            #expect(throws: TesseraError.self) { try interrupted.run() }
            try ingest(config, to: out, resume: true)
            #expect(try contents(out) == expected, "resumed after \(stop) of \(shards) shards")
        }
    }

    @Test func nonEmptyOutputIsRefusedUnlessOverwriteOrResume() throws {
        let out = try temporaryFolder()
        try Data("x".utf8).write(to: URL(fileURLWithPath: out + "/something"))
        let error = try #require(throws: TesseraError.self) { try ingest(sampleConfig(), to: out) }
        #expect(error.code == "ingest.output-not-empty")
        try ingest(sampleConfig(), to: out, overwrite: true)
        // Resuming a finished job changes nothing.
        let before = try contents(out)
        let summary = try ingest(sampleConfig(), to: out, resume: true)
        #expect(summary.alreadyComplete)
        let unchanged = try contents(out) == before
        #expect(unchanged)
        var other = sampleConfig()
        other.seed = 5
        #expect(throws: TesseraError.self) { try ingest(other, to: out, resume: true) }
    }

    @Test func splitsAreStableWhenFilesAreAdded() throws {
        // A subset of the corpus, then all of it: every key keeps its split.
        let small = try temporaryFolder("subset")
        let files = try FileManager.default.contentsOfDirectory(atPath: corpus + "/coco").sorted()
        for name in files.prefix(60) { try FileManager.default.copyItem(atPath: corpus + "/coco/" + name, toPath: small + "/" + name) }
        let a = try temporaryFolder(), b = try temporaryFolder()
        try ingest(sampleConfig([small]), to: a)
        try ingest(sampleConfig([corpus + "/coco"]), to: b)
        func splits(_ out: String) throws -> [String: String] {
            var map: [String: String] = [:]
            let manifest = try DatasetManifest.load(folder: out)
            for split in manifest.splits {
                for shard in split.shards {
                    let file = try SafetensorsFile(path: out + "/" + shard.file)
                    for key in try JSONValue.parse(file.metadata["keys"] ?? "[]").arrayValue?.compactMap(\.stringValue) ?? [] { map[key] = split.name }
                }
            }
            return map
        }
        let first = try splits(a), second = try splits(b)
        #expect(!first.isEmpty)
        for (key, split) in first { #expect(second[key] == split, "\(key) stays in \(split)") }
    }

    @Test func requireAndDropModality() throws {
        var config = sampleConfig()
        config.require = [.image, .audio]
        let out = try temporaryFolder()
        try ingest(config, to: out)
        let manifest = try DatasetManifest.load(folder: out)
        #expect(manifest.statistics["presence"]?["image"]?.intValue == manifest.sampleCount)
        #expect(manifest.statistics["presence"]?["audio"]?.intValue == manifest.sampleCount)
        #expect(try errorLines(out).contains { $0.stage == "require" && $0.code == "ingest.missing-required" })
        // drop-modality keeps samples whose only failure is an optional modality.
        var lenient = sampleConfig()
        lenient.onError = .dropModality
        let out2 = try temporaryFolder()
        let summary = try ingest(lenient, to: out2)
        #expect(summary.samplesWritten > 40)
    }

    @Test func maxErrorsStopsTheRun() throws {
        var config = sampleConfig()
        config.maxErrors = 2
        let out = try temporaryFolder()
        let error = try #require(throws: TesseraError.self) { try ingest(config, to: out) }
        #expect(error.code == "ingest.max-errors")
        #expect(FileManager.default.fileExists(atPath: out + "/errors.jsonl"))
        #expect(!FileManager.default.fileExists(atPath: out + "/manifest.json"))
        config.maxErrors = 0.5
        try ingest(config, to: try temporaryFolder())
    }

    /// A walked folder takes every audio container libsndfile reads by its usual extension: MP3 and Ogg Opus
    /// (as Common Voice and others ship speech) beside WAV and FLAC; and WebP images.
    @Test func compressedMediaIsFoundAndDecoded() throws {
        let folder = try temporaryFolder("compressed")
        let derived = packageRoot + "/fixtures/audio/derived/"
        for (source, name) in [("3_jackson_12.mp3", "a.mp3"), ("3_jackson_12.opus", "b.opus"), ("3_jackson_12.flac", "c.flac"), ("bass.ogg", "d.oga")] {
            try FileManager.default.copyItem(atPath: derived + source, toPath: folder + "/" + name)
        }
        try FileManager.default.copyItem(atPath: packageRoot + "/fixtures/images/webp/chelsea-lossy.webp", toPath: folder + "/a.webp")
        var config = IngestConfig()
        config.inputs = [folder]
        let out = try temporaryFolder()
        let summary = try ingest(config, to: out)
        let errors = try errorLines(out)
        #expect(summary.samplesWritten == 4, "\(errors)")
        let manifest = try DatasetManifest.load(folder: out)
        #expect(manifest.statistics["presence"]?["audio"]?.intValue == 4)
        #expect(manifest.statistics["presence"]?["image"]?.intValue == 1)
        #expect(manifest.inputs["unknown_extensions"]?.objectValue?.members.isEmpty ?? true)
    }

    /// WebDataset's `.cls` files label their samples: ids when all hold integers, else class names numbered in
    /// sorted order; a sample without one is unlabelled (-1); a damaged one fails its sample by name.
    @Test func classFilesLabelTheirSamples() throws {
        let folder = try temporaryFolder("cls")
        let image = packageRoot + "/fixtures/digits/train/0_george_5.png"
        for name in ["a", "b", "c", "d"] { try FileManager.default.copyItem(atPath: image, toPath: folder + "/\(name).png") }
        try Data("3\n".utf8).write(to: URL(fileURLWithPath: folder + "/a.cls"))
        try Data(" 7 ".utf8).write(to: URL(fileURLWithPath: folder + "/b.cls"))
        try Data([0xFF, 0xFE, 0x00]).write(to: URL(fileURLWithPath: folder + "/d.cls"))
        var config = IngestConfig()
        config.inputs = [folder]
        config.valFraction = 0
        config.testFraction = 0
        var out = try temporaryFolder()
        #expect(try ingest(config, to: out).samplesWritten == 3)
        let errors = try errorLines(out)
        #expect(errors.count == 1 && errors[0].key == "d" && errors[0].code == "ingest.bad-label", "\(errors)")
        func labels(_ out: String) throws -> [String: Int32] {
            let manifest = try DatasetManifest.load(folder: out)
            let shard = try SafetensorsFile(path: out + "/" + (manifest.split("train")?.shards.first?.file ?? ""))
            let keys = try JSONValue.parse(Array((shard.metadata["keys"] ?? "").utf8)).arrayValue?.compactMap(\.stringValue) ?? []
            return Dictionary(uniqueKeysWithValues: zip(keys, try shard.tensor("label").scalars(as: Int32.self)))
        }
        #expect(try labels(out) == ["a": 3, "b": 7, "c": -1])
        #expect(try DatasetManifest.load(folder: out).tensor("label")?.extra["names"] == nil)
        // Names: numbered in sorted order and listed in the schema.
        try Data("tabby".utf8).write(to: URL(fileURLWithPath: folder + "/b.cls"))
        try FileManager.default.removeItem(atPath: folder + "/d.cls")
        out = try temporaryFolder()
        #expect(try ingest(config, to: out).samplesWritten == 4)
        #expect(try labels(out) == ["a": 0, "b": 1, "c": -1, "d": -1])
        #expect(try DatasetManifest.load(folder: out).tensor("label")?.extra["names"] == .array([.string("3"), .string("tabby")]))
        // --label-from-folder labels by folder; the class files are then only unknown files.
        config.labelFromFolder = true
        out = try temporaryFolder()
        #expect(try ingest(config, to: out).samplesWritten == 4)
        #expect(try DatasetManifest.load(folder: out).inputs["unknown_extensions"]?[".cls"]?.intValue == 2)
    }

    @Test func csvAndJSONLManifestsWithLabelsAndSplits() throws {
        let folder = try temporaryFolder("list")
        try FileManager.default.createDirectory(atPath: folder + "/media", withIntermediateDirectories: true)
        for name in ["000_790.jpg", "000_790.txt", "001_62554.jpg", "001_62554.ogg", "002_78499.jpg", "002_78499.wav"] {
            try FileManager.default.copyItem(atPath: corpus + "/coco/" + name, toPath: folder + "/media/" + name)
        }
        let csv = """
            key,image,audio,text,split,label
            a,media/000_790.jpg,,media/000_790.txt,train,3
            "b, quoted",media/001_62554.jpg,media/001_62554.ogg,,val,1
            c,media/002_78499.jpg,media/002_78499.wav,,,0
            d,../outside.jpg,,,,2

            """
        try Data(csv.utf8).write(to: URL(fileURLWithPath: folder + "/list.csv"))
        var config = IngestConfig()
        config.manifestFile = folder + "/list.csv"
        config.shardSize = 4
        let out = try temporaryFolder()
        let summary = try ingest(config, to: out)
        #expect(summary.samplesWritten == 3)
        let errors = try errorLines(out)
        #expect(errors.count == 1 && errors[0].code == "ingest.outside-path" && errors[0].key == "d")
        let manifest = try DatasetManifest.load(folder: out)
        #expect(manifest.split("val")?.samples == 1)
        #expect(manifest.tensor("label") != nil)
        let file = try SafetensorsFile(path: out + "/" + (manifest.split("val")?.shards.first?.file ?? ""))
        #expect(try file.tensor("label").scalars(as: Int32.self) == [1])
        #expect(file.metadata["keys"] == #"["b, quoted"]"#)
        // The same as JSONL.
        let jsonl = [#"{"key": "a", "image": "media/000_790.jpg", "label": 3}"#, #"{"key": "c", "audio": "media/002_78499.wav", "split": "test"}"#]
        try Data(jsonl.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: folder + "/list.jsonl"))
        config.manifestFile = folder + "/list.jsonl"
        let out2 = try temporaryFolder()
        #expect(try ingest(config, to: out2).samplesWritten == 2)
        #expect(try DatasetManifest.load(folder: out2).split("test")?.samples == 1)
        // Class names as labels: numbered in sorted order and listed in the schema, as folder labels are.
        let named = """
            key,image,split,label
            a,media/000_790.jpg,val,tabby
            b,media/001_62554.jpg,val,
            c,media/002_78499.jpg,val,dog

            """
        try Data(named.utf8).write(to: URL(fileURLWithPath: folder + "/named.csv"))
        config.manifestFile = folder + "/named.csv"
        let out3 = try temporaryFolder()
        #expect(try ingest(config, to: out3).samplesWritten == 3)
        let namedManifest = try DatasetManifest.load(folder: out3)
        #expect(namedManifest.tensor("label")?.extra["names"] == .array([.string("dog"), .string("tabby")]))
        let valShard = try SafetensorsFile(path: out3 + "/" + (namedManifest.split("val")?.shards.first?.file ?? ""))
        let labels = try valShard.tensor("label").scalars(as: Int32.self)
        let keys = try JSONValue.parse(Array((valShard.metadata["keys"] ?? "").utf8)).arrayValue?.compactMap(\.stringValue) ?? []
        #expect(Dictionary(uniqueKeysWithValues: zip(keys, labels)) == ["a": 1, "b": -1, "c": 0])
        // Integer labels as pandas writes a column with gaps ("3.0") are ids, not names.
        try Data("key,image,label\na,media/000_790.jpg,3.0\nb,media/001_62554.jpg,\nc,media/002_78499.jpg,1\n".utf8)
            .write(to: URL(fileURLWithPath: folder + "/floats.csv"))
        config.manifestFile = folder + "/floats.csv"
        let floats = try temporaryFolder()
        #expect(try ingest(config, to: floats).samplesWritten == 3)
        #expect(try DatasetManifest.load(folder: floats).tensor("label")?.extra["names"] == nil)
        // As a spreadsheet saves it ("CSV UTF-8": a byte-order mark, CRLF, capitalised column names).
        let spreadsheet = "\u{FEFF}Key,Image,Label\r\na,media/000_790.jpg,tabby\r\nc,media/002_78499.jpg,dog\r\n"
        try Data(spreadsheet.utf8).write(to: URL(fileURLWithPath: folder + "/excel.csv"))
        config.manifestFile = folder + "/excel.csv"
        let out4 = try temporaryFolder()
        #expect(try ingest(config, to: out4).samplesWritten == 2)
        #expect(try DatasetManifest.load(folder: out4).tensor("label")?.extra["names"] == .array([.string("dog"), .string("tabby")]))
        // A header without a key or any modality column is named as the problem, with the columns it has.
        for header in ["name,image", "key,img"] {
            try Data("\(header)\na,media/000_790.jpg\n".utf8).write(to: URL(fileURLWithPath: folder + "/bad.csv"))
            config.manifestFile = folder + "/bad.csv"
            let error = try #require(throws: TesseraError.self) { try ingest(config, to: try temporaryFolder()) }
            #expect(error.message.contains("header row needs a key column") && error.message.contains("it has: \(header.replacingOccurrences(of: ",", with: ", "))"),
                    "\(error.message)")
        }
    }

    /// Planned samples stay small (their count is what a larger corpus adds to peak memory), and the
    /// compact form gives back every path as spelt on disk: lower case, upper case, mixed case.
    @Test func plannedSamplesAreSmallAndKeepEachPath() throws {
        #expect(MemoryLayout<SampleSource>.stride <= 40)
        let root = try temporaryFolder("spellings"), other = try temporaryFolder("spellings")
        let names = ["a.jpg", "a.WAV", "a.txt", "b.Png", "b.ids", "c/d.JPEG", "c/d.Flac"]
        try FileManager.default.createDirectory(atPath: root + "/c", withIntermediateDirectories: true)
        for name in names { try Data([1]).write(to: URL(fileURLWithPath: root + "/" + name)) }
        try Data([1]).write(to: URL(fileURLWithPath: other + "/e.JPG"))
        for inputs in [[root], [root, other]] {
            let found = try SampleDiscovery.walk(inputs, labelFromFolder: false)
            var paths: [String] = []
            for sample in found.samples { paths += sample.modalities.compactMap { sample.path($0) } }
            let expected = names.map { root + "/" + $0 } + (inputs.count > 1 ? [other + "/e.JPG"] : [])
            #expect(paths.sorted() == expected.sorted())
            let keys = ["a", "b", "c/d"].map { inputs.count > 1 ? FilePath.split(root).name + "/" + $0 : $0 }
                + (inputs.count > 1 ? [FilePath.split(other).name + "/e"] : [])
            #expect(found.samples.map(\.key) == keys.sorted())
        }
        var sample = SampleSource(key: "k")
        sample.label = 7
        sample.split = "val"
        #expect(sample.label == 7 && sample.split == "val" && sample.modalities.isEmpty)
    }

    /// Input folders of the same name (`a/data`, `b/data`) get prefixes that tell them apart: `data/x` twice
    /// made two samples one key before.
    @Test func inputFoldersOfOneNameGiveDistinctKeys() throws {
        let root = try temporaryFolder("same-name")
        for side in ["a", "b"] {
            try FileManager.default.createDirectory(atPath: root + "/\(side)/data", withIntermediateDirectories: true)
            try Data([1]).write(to: URL(fileURLWithPath: root + "/\(side)/data/x.jpg"))
        }
        let found = try SampleDiscovery.walk([root + "/a/data", root + "/b/data"], labelFromFolder: false)
        #expect(found.samples.map(\.key) == ["a/data/x", "b/data/x"])
        #expect(SampleDiscovery.keyPrefixes(["w1", "other/w2"]) == ["w1/", "w2/"])
        #expect(SampleDiscovery.keyPrefixes(["only"]) == [""])
    }

    @Test func labelsFromFolders() throws {
        let root = try temporaryFolder("labels")
        for (folder, names) in [("cats", ["000_790", "001_62554"]), ("dogs", ["002_78499"])] {
            try FileManager.default.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true)
            for name in names { try FileManager.default.copyItem(atPath: corpus + "/coco/\(name).jpg", toPath: root + "/\(folder)/\(name).jpg") }
        }
        var config = IngestConfig()
        config.inputs = [root]
        config.labelFromFolder = true
        let out = try temporaryFolder()
        try ingest(config, to: out)
        let manifest = try DatasetManifest.load(folder: out)
        #expect(manifest.tensor("label")?.extra["names"] == .array([.string("cats"), .string("dogs")]))
        let file = try SafetensorsFile(path: out + "/" + (manifest.split("train")?.shards.first?.file ?? ""))
        let keys = try JSONValue.parse(file.metadata["keys"] ?? "[]").arrayValue?.compactMap(\.stringValue) ?? []
        let labels = try file.tensor("label").scalars(as: Int32.self)
        for (key, label) in zip(keys, labels) { #expect(label == (key.hasPrefix("cats/") ? 0 : 1)) }
    }

    @Test func pythonReaderAgreesWithTesseraDecode() throws {
        let out = try temporaryFolder()
        try ingest(sampleConfig(), to: out)
        let binary = packageRoot + "/.build/debug/tessera"
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            Issue.record("build the tessera binary first (swift build)")
            return
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", packageRoot + "/tools/interop/check_dataset.py", out, binary, corpus, "--tokenizer", bertTokenizer]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(output)")
        #expect(output.contains("checked 40 samples: OK"))
    }

    @Test func loaderNormalisesHWCAndCHWIngestsAlike() throws {
        var chwConfig = sampleConfig()
        chwConfig.image.layout = .chw
        var hwcConfig = sampleConfig()
        hwcConfig.image.layout = .hwc
        let chw = try temporaryFolder(), hwc = try temporaryFolder()
        try ingest(chwConfig, to: chw)
        try ingest(hwcConfig, to: hwc)
        let manifest = try DatasetManifest.load(folder: hwc)
        #expect(manifest.tensor("image")?.normalize?.axis == 2)
        var config = LoaderConfig()
        config.shuffle = .none
        config.batchSize = 64
        config.epochs = 1
        let a = try ShardLoader(folder: chw, config: config), b = try ShardLoader(folder: hwc, config: config)
        let batchA = try #require(try a.next()), batchB = try #require(try b.next())
        #expect(batchA.count == batchB.count && batchA.keys == batchB.keys && batchA.count > 0)
        let shape = try #require(batchA.field("image")?.shape)
        let (channels, height, width) = (shape[0], shape[1], shape[2])
        let x = try #require(batchA.floats("image")), y = try #require(batchB.floats("image"))
        var worst: Float = 0
        for n in 0..<batchA.count {
            for c in 0..<channels {
                for h in 0..<height {
                    for w in 0..<width {
                        let u = x[((n * channels + c) * height + h) * width + w]
                        let v = y[((n * height + h) * width + w) * channels + c]
                        worst = max(worst, abs(u - v))
                    }
                }
            }
        }
        #expect(worst <= 1e-6)
        // Normalised with the dataset's own statistics: each channel is near mean 0, std 1.
        let plane = height * width
        for c in 0..<channels {
            var sum = 0.0, squares = 0.0, n = 0.0
            let masks = try #require(batchA.bytes("mask_image"))
            for s in 0..<batchA.count where masks[s] != 0 {
                for i in 0..<plane {
                    let v = Double(x[(s * channels + c) * plane + i])
                    sum += v
                    squares += v * v
                    n += 1
                }
            }
            #expect(abs(sum / n) < 0.35 && abs((squares / n - (sum / n) * (sum / n)).squareRoot() - 1) < 0.35, "channel \(c)")
        }
    }
}

