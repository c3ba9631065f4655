import Foundation
import Testing
import TesseraCore
import TesseraTestSupport

/// Kills `tessera ingest` with SIGKILL at ten seeded moments and resumes each time: the final output must be
/// byte-identical to an uninterrupted run.
@Suite struct IngestKillResumeTests {
    /// The sample corpus's COCO samples, eight times over under new keys (320 samples).
    static func makeCorpus() throws -> String {
        let root = try temporaryFolder("kill-corpus")
        let source = packageRoot + "/fixtures/corpus/coco"
        for copy in 0..<8 {
            let folder = root + "/copy\(copy)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for name in try FileManager.default.contentsOfDirectory(atPath: source) {
                try FileManager.default.linkItem(atPath: source + "/" + name, toPath: folder + "/" + name)
            }
        }
        return root
    }

    static func files(_ folder: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for case let relative as String in FileManager.default.enumerator(atPath: folder) ?? FileManager.DirectoryEnumerator() {
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: folder + "/" + relative, isDirectory: &isFolder), !isFolder.boolValue {
                out[relative] = try Data(contentsOf: URL(fileURLWithPath: folder + "/" + relative))
            }
        }
        return out
    }

    @Test(.timeLimit(.minutes(10)))
    func sigkillAtTenMomentsThenResumeGivesTheSameBytes() throws {
        let corpus = try IngestKillResumeTests.makeCorpus()
        let tokenizer = packageRoot + "/fixtures/text/tokenizers/bert-wordpiece.json"
        func arguments(_ out: String) -> [String] {
            ["ingest", corpus, "--out", out, "--tokenizer", tokenizer, "--val-fraction", "0.2", "--shard-size", "8", "--quiet"]
        }
        let reference = try temporaryFolder("kill-reference")
        let clean = try tessera(arguments(reference) + ["--overwrite"])
        #expect(clean.status == 0, "\(clean.stderr)")
        let shards = try IngestKillResumeTests.files(reference).keys.filter { $0.hasSuffix(".safetensors") }.count
        #expect(shards >= 30)

        // Ten runs, each killed at a seeded moment after it has journaled more shards than the last one
        // (so every run makes progress, whatever the machine's speed): mid-decode, mid-write or mid-journal.
        let out = try temporaryFolder("kill-out")
        var rng = SeededRandom(seed: 2026)
        var killed = 0
        for run in 0..<10 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: tesseraBinary)
            process.arguments = arguments(out) + ["--resume"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let target = (run + 1) * shards / 12
            while process.isRunning {
                let journals = ((try? FileManager.default.contentsOfDirectory(atPath: out + "/.ingest")) ?? []).filter { $0.hasSuffix(".json") && $0 != "state.json" }
                if journals.count >= target { break }
                usleep(2_000)
            }
            usleep(UInt32(rng.nextInt(below: 40_000)))
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                killed += 1
            }
            process.waitUntilExit()
        }
        #expect(killed >= 8, "the runs were interrupted (\(killed) of 10)")
        let journals = (try? FileManager.default.contentsOfDirectory(atPath: out + "/.ingest")) ?? []
        #expect(journals.contains { $0.hasPrefix("train-") }, "the interrupted runs left finished shards to resume from")
        let final = try tessera(arguments(out) + ["--resume"])
        #expect(final.status == 0, "\(final.stderr)")
        let expected = try IngestKillResumeTests.files(reference)
        let got = try IngestKillResumeTests.files(out)
        #expect(Set(got.keys) == Set(expected.keys), "same files")
        for (name, data) in expected { #expect(got[name] == data, "\(name) is byte-identical") }
    }
}
