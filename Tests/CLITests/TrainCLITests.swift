import Foundation
import Testing
import TesseraCore
import TesseraTestSupport

/// The release binary when `make test` (or `swift build -c release`) built it: training runs of a few hundred
/// steps take minutes in a debug build, where the engine's generic code is neither specialised nor vectorised.
let trainingBinary: String = {
    let release = packageRoot + "/.build/release/tessera"
    return FileManager.default.isExecutableFile(atPath: release) ? release : tesseraBinary
}()

@discardableResult
func train(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    try tessera(arguments, binary: trainingBinary)
}

/// `tessera train`, `encode` and `eval` end to end, through the binary.
@Suite(.serialized) struct TrainCLITests {
    /// The sample corpus ingested with W1's transforms (64x64 images, 64x65 log-mels, 32 W1 BPE ids).
    static func ingestCorpus(_ arguments: [String]) throws -> String {
        let out = try temporaryFolder("train-data")
        let absolute = arguments.map { $0.hasPrefix("fixtures/") ? packageRoot + "/" + $0 : $0 }
        let result = try train(["ingest"] + absolute + ["--out", out, "--quiet", "--overwrite"])
        #expect(result.status == 0, "\(result.stderr)")
        return out
    }

    static func digits() throws -> String {
        try ingestCorpus(["--manifest", "fixtures/digits/triad.csv", "--tokenizer", "fixtures/text/tokenizers/w1.json", "--image-size", "32"])
    }

    /// Starts `tessera train` in the background, its stdout to `output` (else discarded), stderr discarded.
    static func startTraining(_ arguments: [String], output: Pipe? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: trainingBinary)
        process.arguments = ["train"] + arguments
        process.standardOutput = output ?? FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Waits (two minutes at most) until the run has logged `steps` metric lines, or has ended.
    static func waitForSteps(_ steps: Int, of run: String, _ process: Process) {
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let lines = (try? String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8))?.split(separator: "\n").count ?? 0
            if lines >= steps || !process.isRunning { return }
            usleep(20_000)
        }
    }

    static func metrics(_ run: String) throws -> [JSONValue] {
        let text = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONValue.parse(String($0)) }
    }

    /// The bar: from the same initial weights and with --shuffle none, M1's first 10 training losses on
    /// W1-transformed shards match its PyTorch twin's (tools/train/tessera_twin.py) within 1e-3 relative. The
    /// same for `small` on 28x22 images (output padding [1, 0]) and `seed-conv` on grey float32 30x22 images
    /// (unit scale from the manifest's recorded normalisation); goldens by tools/fixtures/make_train_parity.py.
    @Test(arguments: ["m1", "small_odd", "seed_conv_grey"])
    func lossesMatchThePyTorchTwin(_ name: String) throws {
        let file = packageRoot + "/fixtures/train/\(name)_parity.json"
        let golden = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: file))))
        let ingestList = golden["ingest"]?.arrayValue?.compactMap { $0.stringValue }
        let ingest = try #require(ingestList)
        let preset = try #require(golden["preset"]?.stringValue)
        let dataset = try Self.ingestCorpus(ingest)
        let manifest = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: dataset + "/manifest.json"))))
        let shards = manifest["splits"]?["train"]?["shards"]?.arrayValue?.compactMap { $0["sha256"]?.stringValue }
        let expected = golden["train_shards_sha256"]?.arrayValue?.compactMap { $0.stringValue }
        try #require(shards == expected,
                     "the ingest no longer makes the shards the goldens were made from: run tools/fixtures/make_train_parity.py")
        let seed = golden["seed"]?.intValue ?? 7, batch = golden["batch_size"]?.intValue ?? 8, steps = golden["steps"]?.intValue ?? 10
        // Tessera's initial weights for the seed, written by a 0-step run, then trained from that file.
        let initRun = try temporaryFolder("\(name)-init")
        var result = try train(["train", dataset, "--out", initRun, "--preset", preset, "--steps", "0", "--seed", "\(seed)",
                                  "--batch-size", "\(batch)", "--overwrite", "--no-eval", "--no-pictures", "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        let run = try temporaryFolder("\(name)-run")
        result = try train(["train", dataset, "--out", run, "--preset", preset, "--init", initRun + "/weights.safetensors", "--seed", "99",
                              "--shuffle", "none", "--steps", "\(steps)", "--batch-size", "\(batch)", "--overwrite", "--no-eval", "--no-pictures", "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        let ours = try Self.metrics(run)
        let theirs = try #require(golden["losses"]?.arrayValue)
        #expect(ours.count == theirs.count)
        for (mine, twin) in zip(ours, theirs) {
            let keys = twin.objectValue?.members.map(\.key).filter { $0.hasPrefix("loss") } ?? []
            #expect(keys.contains("loss"))
            for key in keys {
                let a = try #require(mine[key]?.doubleValue), b = try #require(twin[key]?.doubleValue)
                #expect(abs(a - b) <= 1e-3 * abs(b), "step \(mine["step"]?.intValue ?? 0) \(key): \(a) vs PyTorch \(b)")
            }
        }
    }

    /// SIGTERM mid-run saves a checkpoint and exits 143; --resume then ends with the bytes of an uninterrupted run.
    @Test func sigtermThenResumeGivesTheUninterruptedWeights() throws {
        let dataset = try Self.digits()
        let common = ["--preset", "small", "--steps", "40", "--batch-size", "8", "--modality-dropout", "0.5", "--seed", "3",
                      "--no-eval", "--no-pictures", "--checkpoint-every", "7"]
        let straight = try temporaryFolder("straight")
        var result = try train(["train", dataset, "--out", straight, "--overwrite", "--quiet"] + common)
        #expect(result.status == 0, "\(result.stderr)")

        let interrupted = try temporaryFolder("interrupted")
        let process = try Self.startTraining([dataset, "--out", interrupted, "--overwrite", "--quiet"] + common)
        // Wait until a dozen steps are done, then ask it to stop.
        Self.waitForSteps(12, of: interrupted, process)
        process.terminate()
        process.waitUntilExit()
        #expect(process.terminationStatus == 143, "exit status after SIGTERM")
        let stoppedAt = try Self.metrics(interrupted).count
        #expect(stoppedAt >= 12 && stoppedAt < 40)
        #expect(FileManager.default.fileExists(atPath: interrupted + "/checkpoint.safetensors"))

        result = try train(["train", dataset, "--out", interrupted, "--resume", "--quiet"] + common)
        #expect(result.status == 0, "\(result.stderr)")
        let a = try Data(contentsOf: URL(fileURLWithPath: straight + "/weights.safetensors"))
        let b = try Data(contentsOf: URL(fileURLWithPath: interrupted + "/weights.safetensors"))
        let same = a == b  // a Bool: on failure #expect would diff two multi-megabyte values
        #expect(same, "resumed weights differ from the uninterrupted run's")
        let losses = { (run: String) in try Self.metrics(run).map { $0["loss"]?.doubleValue ?? .nan } }
        #expect(try losses(straight) == losses(interrupted), "the metrics of a resumed run are those of the uninterrupted one")
    }

    /// One SIGTERM delivered twice (as `timeout` delivers it, to the process and then to its group) is one
    /// request: the run still saves its checkpoint and says so, instead of dying at the second.
    @Test func aSignalDeliveredTwiceStillSavesTheCheckpoint() throws {
        let dataset = try Self.digits()
        let run = try temporaryFolder("twice")
        let output = Pipe()
        let process = try Self.startTraining([dataset, "--out", run, "--steps", "100000", "--batch-size", "8", "--no-eval", "--no-pictures", "--quiet",
                                              "--checkpoint-every", "5"], output: output)
        Self.waitForSteps(8, of: run, process)
        kill(process.processIdentifier, SIGTERM)
        usleep(50_000)  // the first is handled by now; the second still counts as the same request
        kill(process.processIdentifier, SIGTERM)
        let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 143)
        #expect(said.contains("interrupted at step"), "stdout: \(said)")
        let steps = try Self.metrics(run).count
        #expect(said.contains("interrupted at step \(steps);"), "the checkpoint is of the last step logged (\(steps)): \(said)")
    }

    /// A second `train` into the folder of a running one is refused by name (with --overwrite it would delete
    /// the running one's files), and so is an `ingest` into it, or into the dataset the run reads.
    @Test func aRunningJobsFolderIsNotTakenOver() throws {
        let dataset = try Self.digits()
        let run = try temporaryFolder("busy")
        let process = try Self.startTraining([dataset, "--out", run, "--steps", "1000000", "--batch-size", "8", "--no-eval", "--no-pictures", "--quiet"])
        defer { if process.isRunning { process.terminate(); process.waitUntilExit() } }
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && process.isRunning && !FileManager.default.fileExists(atPath: run + "/metrics.jsonl") { usleep(20_000) }
        for arguments in [["--overwrite"], ["--resume"]] {
            let result = try train(["train", dataset, "--out", run, "--steps", "2", "--quiet"] + arguments)
            #expect(result.status == 1 && result.stderr.contains("another tessera process is using this folder"), "\(arguments): \(result.stderr)")
        }
        #expect(process.isRunning, "the first run goes on")
        #expect(FileManager.default.fileExists(atPath: run + "/model.json"))
        let ingest = try train(["ingest", packageRoot + "/fixtures/corpus/coco", "--out", run, "--overwrite", "--quiet"])
        #expect(ingest.status == 1 && ingest.stderr.contains("another tessera process"), "\(ingest.stderr)")
        // The dataset it reads cannot be ingested again under it; reading it beside the run is fine.
        let again = try train(["ingest", "--manifest", packageRoot + "/fixtures/digits/triad.csv", "--out", dataset, "--overwrite", "--quiet"])
        #expect(again.status == 1 && again.stderr.contains("another tessera process is using this folder"), "\(again.stderr)")
        #expect(try train(["verify", dataset]).status == 0)
        process.terminate()
        process.waitUntilExit()
        // Once it has stopped, the folder is free again.
        let after = try train(["train", dataset, "--out", run, "--steps", "2", "--batch-size", "8", "--no-eval", "--no-pictures", "--quiet", "--overwrite"])
        #expect(after.status == 0, "\(after.stderr)")
    }

    /// The bar: `small` trained on a fixture corpus (the spoken-digit triad's small subset) for a few hundred
    /// steps; every modality's val loss falls (to below 80% of the untrained model's).
    @Test func smallLearnsEveryModality() throws {
        let dataset = try Self.digits()
        let run = try temporaryFolder("small")
        let result = try train(["train", dataset, "--out", run, "--preset", "small", "--steps", "300", "--batch-size", "16",
                                "--modality-dropout", "0.3", "--eval-every", "100", "--no-pictures", "--quiet", "--overwrite"])
        #expect(result.status == 0, "\(result.stderr)")
        let val = try Self.metrics(run).filter { $0["split"]?.stringValue == "val" }
        let first = try #require(val.first), last = try #require(val.last)
        #expect(first["step"]?.intValue == 0 && last["step"]?.intValue == 300)
        for name in ["image", "audio", "text"] {
            let before = try #require(first["loss_\(name)"]?.doubleValue), after = try #require(last["loss_\(name)"]?.doubleValue)
            #expect(after < 0.8 * before, "\(name) val loss \(before) -> \(after)")
        }
    }

    /// The bar: the image-only convolutional autoencoder (`seed-conv`) reaches a stated PSNR on the fixture
    /// photos: 32x32, 300 steps of 8, at least 19 dB on the val photos (an untrained model: about 11 dB).
    @Test func seedConvReachesItsPSNROnPhotos() throws {
        let dataset = try Self.ingestCorpus(["fixtures/corpus/coco", "--modalities", "image", "--val-fraction", "0.2", "--image-size", "32"])
        let run = try temporaryFolder("seed-conv")
        var result = try train(["train", dataset, "--out", run, "--preset", "seed-conv", "--steps", "300", "--batch-size", "8",
                                "--no-eval", "--no-pictures", "--quiet", "--overwrite"])
        #expect(result.status == 0, "\(result.stderr)")
        result = try train(["eval", dataset, "--checkpoint", run, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let psnr = try #require(try JSONValue.parse(result.stdout)["image_psnr"]?["all"]?.doubleValue)
        #expect(psnr >= 19, "seed-conv PSNR \(psnr) dB")
    }

    @Test func encodeAndEvalReportCodesRetrievalAndProbes() throws {
        let dataset = try Self.digits()
        let run = try temporaryFolder("eval-run")
        var result = try train(["train", dataset, "--out", run, "--steps", "30", "--batch-size", "16", "--modality-dropout", "0.5", "--quiet", "--overwrite"])
        #expect(result.status == 0, "\(result.stderr)")
        for picture in ["loss.png", "reconstructions.png"] {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: run + "/" + picture))
            #expect(bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]), "\(picture) is a PNG")
        }
        let codes = run + "/codes.safetensors"
        result = try train(["encode", dataset, "--checkpoint", run, "--split", "val", "--modalities", "audio", "--out", codes])
        #expect(result.status == 0, "\(result.stderr)")
        let inspect = try tessera(["inspect", codes, "--json"])
        #expect(inspect.status == 0 && inspect.stdout.contains("code") && inspect.stdout.contains("60"), "\(inspect.stdout)")
        result = try train(["eval", dataset, "--checkpoint", run, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONValue.parse(result.stdout)
        #expect(report["split"]?.stringValue == "val")
        #expect(report["reconstruction"]?["audio"]?["image"]?.doubleValue != nil)
        #expect(report["retrieval"]?["audio->image"]?["recall@10"]?.doubleValue != nil)
        let probe = try #require(report["probe"]?["all"]?.doubleValue)
        #expect(probe > 0.3, "a probe on codes of 10 digits does better than chance (\(probe))")
        // An empty list of modalities is a mistake, not "none of them".
        result = try train(["encode", dataset, "--checkpoint", run, "--modalities", ",", "--out", run + "/none.safetensors"])
        #expect(result.status != 0 && result.stderr.contains("name at least one"), "\(result.stderr)")
        // A dataset of other shapes is refused by name, not by the first layer that does not fit.
        let other = try Self.ingestCorpus(["--manifest", "fixtures/digits/triad.csv", "--tokenizer", "fixtures/text/tokenizers/w1.json",
                                           "--image-size", "24"])
        for command in ["eval", "encode"] {
            let output = command == "encode" ? ["--out", run + "/other.safetensors"] : []
            result = try train([command, other, "--checkpoint", run] + output)
            #expect(result.status == 1 && result.stderr.contains("the model was trained on image [3, 32, 32]") && result.stderr.contains("[3, 24, 24]"),
                    "\(command): \(result.stderr)")
        }
    }

    /// A modality some samples lack: `eval` scores "from audio" and the audio pairs on the samples with audio
    /// only (their codes would come from the biases alone), says how many took part, and `encode` marks the
    /// codes computed from no input. The digit fixture with the audio of two thirds of val/test dropped, and
    /// none in test.
    @Test func evalAndEncodeLeaveOutSamplesWithoutTheirInput() throws {
        let folder = try temporaryFolder("partial")
        let lines = try String(contentsOfFile: packageRoot + "/fixtures/digits/triad.csv", encoding: .utf8).split(whereSeparator: \.isNewline).map(String.init)
        var csv = ["key,image,audio,text,split,label"], heldOut = 0
        for line in lines.dropFirst() {
            var cells = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard cells.count == 6 else { continue }
            for k in 1...3 { cells[k] = packageRoot + "/fixtures/digits/" + cells[k] }
            if cells[4] != "train" {
                // Every third held-out sample to test, without audio; every third of the others to val, without it.
                if heldOut % 3 == 0 { cells[4] = "test" } else { cells[4] = "val" }
                if heldOut % 3 != 2 { cells[2] = "" }
                heldOut += 1
            }
            csv.append(cells.joined(separator: ","))
        }
        try (csv.joined(separator: "\n") + "\n").write(toFile: folder + "/partial.csv", atomically: true, encoding: .utf8)
        let dataset = try Self.ingestCorpus(["--manifest", folder + "/partial.csv", "--allow-outside-paths",
                                             "--tokenizer", "fixtures/text/tokenizers/w1.json", "--image-size", "32"])
        let run = folder + "/run"
        var result = try train(["train", dataset, "--out", run, "--steps", "20", "--batch-size", "16", "--quiet", "--no-pictures"])
        #expect(result.status == 0, "\(result.stderr)")
        // val: 40 samples, 20 with audio.
        result = try train(["eval", dataset, "--checkpoint", run, "--split", "val", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        var report = try JSONValue.parse(result.stdout)
        #expect(report["retrieval"]?["audio->image"]?["samples"]?.intValue == 20)
        #expect(report["retrieval"]?["image->audio"]?["samples"]?.intValue == 20)
        #expect(report["retrieval"]?["image->text"]?["samples"]?.intValue == 40)
        #expect(report["probe_samples"]?["audio"]?["test"]?.intValue == 20 && report["probe_samples"]?["image"]?["test"]?.intValue == 40)
        #expect(report["probe_samples"]?["audio"]?["train"]?.intValue == 180)
        // test: 20 samples, none with audio: nothing is scored from audio.
        result = try train(["eval", dataset, "--checkpoint", run, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        report = try JSONValue.parse(result.stdout)
        #expect(report["split"]?.stringValue == "test")
        #expect(report["reconstruction"]?["audio"]?["image"] == nil && report["reconstruction"]?["image"]?["image"]?.doubleValue != nil)
        #expect(report["image_psnr"]?["audio"] == .null && report["image_psnr"]?["text"]?.doubleValue != nil)
        #expect(report["retrieval"]?["audio->text"]?["samples"]?.intValue == 0)
        #expect(report["probe"]?["audio"] == .null && report["probe"]?["text"]?.doubleValue != nil)
        // encode marks the codes from no input.
        let codes = folder + "/codes.safetensors"
        result = try train(["encode", dataset, "--checkpoint", run, "--split", "val", "--modalities", "audio", "--out", codes])
        #expect(result.status == 0 && result.stderr.contains("20 of 40 samples have none of audio"), "\(result.stderr)")
        let codesFile = try SafetensorsFile(path: codes)
        let mask = try codesFile.tensor("mask").scalars(as: UInt8.self)
        #expect(mask.count == 40 && mask.filter { $0 == 1 }.count == 20)
        // The keys as tensors (any split's fit) say what the metadata's list says.
        let keyBytes = try codesFile.tensor("key_bytes").scalars(as: UInt8.self)
        let keyOffsets = try codesFile.tensor("key_offsets").scalars(as: Int64.self).map { Int($0) }
        let keys = (0..<(keyOffsets.count - 1)).map { String(decoding: keyBytes[keyOffsets[$0]..<keyOffsets[$0 + 1]], as: UTF8.self) }
        #expect(keys.count == 40 && JSONValue.array(keys.map { .string($0) }).serialized() == codesFile.metadata["keys"])
        // A train split without any audio: the run says, before it starts, that the audio branch cannot learn.
        let noTrainAudio = csv.map { line -> String in
            var cells = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            if cells.count == 6 && cells[4] == "train" { cells[2] = "" }
            return cells.joined(separator: ",")
        }
        try (noTrainAudio.joined(separator: "\n") + "\n").write(toFile: folder + "/no-train-audio.csv", atomically: true, encoding: .utf8)
        let withoutAudio = try Self.ingestCorpus(["--manifest", folder + "/no-train-audio.csv", "--allow-outside-paths",
                                                  "--tokenizer", "fixtures/text/tokenizers/w1.json", "--image-size", "32"])
        result = try train(["train", withoutAudio, "--out", folder + "/run2", "--steps", "1", "--batch-size", "16", "--no-pictures", "--no-eval"])
        #expect(result.status == 0 && result.stderr.contains("no train sample has audio"), "\(result.stderr)")
        #expect(!result.stderr.contains("no train sample has image"))
    }

    /// Codes of a dataset labelled by folder carry the label names beside the ids; `inspect` lists them.
    @Test func encodedCodesCarryTheLabelNames() throws {
        let root = try temporaryFolder("labelled")
        for (folder, image) in [("cats", "000_790.jpg"), ("dogs", "004_99053.png")] {
            try FileManager.default.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: packageRoot + "/fixtures/corpus/coco/" + image, toPath: root + "/\(folder)/" + image)
        }
        let dataset = try Self.ingestCorpus([root, "--label-from-folder", "--image-size", "16"])
        let inspect = try tessera(["inspect", dataset])
        #expect(inspect.stdout.contains("label names (id name): 0 cats, 1 dogs"), "\(inspect.stdout)")
        let run = root + "-run"
        var result = try train(["train", dataset, "--out", run, "--steps", "1", "--quiet", "--no-pictures", "--no-eval"])
        #expect(result.status == 0, "\(result.stderr)")
        result = try train(["encode", dataset, "--checkpoint", run, "--out", run + "/codes.safetensors"])
        #expect(result.status == 0, "\(result.stderr)")
        let codes = try SafetensorsFile(path: run + "/codes.safetensors")
        #expect(codes.metadata["label_names"] == #"["cats","dogs"]"#)
        #expect(try codes.tensor("label").scalars(as: Int32.self) == [0, 1])
    }

    @Test func aDivergingRunStopsWithAClearErrorAndKeepsItsLastCheckpoint() throws {
        let dataset = try Self.digits()
        let run = try temporaryFolder("diverge")
        let result = try train(["train", dataset, "--out", run, "--steps", "200", "--batch-size", "8", "--optimizer", "sgd", "--lr", "1e12",
                                  "--checkpoint-every", "1", "--no-eval", "--quiet", "--overwrite"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("train.non-finite") || result.stderr.contains("became"), "\(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: run + "/checkpoint.safetensors"))
    }

    /// The same seed gives the same weights on any thread count: the engine cuts its products and
    /// convolutions by shape alone and runs each piece on single-threaded OpenBLAS. Before, products too
    /// small to halve ran on OpenBLAS's own threads, whose sums differ from one thread's, and a small
    /// model's weights depended on `--threads`.
    @Test func weightsDoNotDependOnTheThreadCount() throws {
        let dataset = try Self.digits()
        let options = ["--batch-size", "24", "--modality-dropout", "0.5", "--align", "0.3", "--augment-shift", "2", "--no-pictures", "--quiet"]
        var weights: [Data] = []
        for threads in [1, 2, 3] {
            let run = try temporaryFolder("threads-\(threads)")
            let result = try train(["train", dataset, "--out", run + "/run", "--steps", "4", "--threads", "\(threads)"] + options)
            #expect(result.status == 0, "\(result.stderr)")
            weights.append(try Data(contentsOf: URL(fileURLWithPath: run + "/run/weights.safetensors")))
        }
        // A run may also resume on another thread count (another machine) and end where the others did.
        let moved = try temporaryFolder("threads-resumed") + "/run"
        var result = try train(["train", dataset, "--out", moved, "--steps", "2", "--threads", "1"] + options)
        #expect(result.status == 0, "\(result.stderr)")
        result = try train(["train", dataset, "--out", moved, "--steps", "4", "--threads", "3", "--resume"] + options)
        #expect(result.status == 0, "\(result.stderr)")
        weights.append(try Data(contentsOf: URL(fileURLWithPath: moved + "/weights.safetensors")))
        let same = weights.allSatisfy { $0 == weights[0] }
        #expect(same, "the weights differ between 1, 2 and 3 threads, or after resuming on 3 threads a run begun on 1")
    }

    /// A model that cannot fit in the memory this process may take (here `ulimit -v`, as a shell, a batch
    /// scheduler or a container may set it) is refused before anything is allocated, naming the bound;
    /// before, the allocation failed and the process crashed.
    @Test func aModelOverTheProcessMemoryLimitIsRefused() throws {
        let images = try Self.ingestCorpus(["--manifest", "fixtures/digits/triad.csv", "--modalities", "image", "--image-size", "32"])
        let out = try temporaryFolder("memory-limit")
        let model = out + "/model.json"
        // 1.2G parameters: about 18 GiB with gradients and Adam's moments.
        try #"{"format": "tessera-model", "fusion": "none", "code": 200000, "modalities": {"image": {"encoder": ["flatten", {"linear": 200000}], "#
            .appending(#""decoder": [{"linear": 3072}, {"reshape": [3, 32, 32]}]}}}"#).write(toFile: model, atomically: true, encoding: .utf8)
        let command = "ulimit -v 4000000 && exec '\(trainingBinary)' train '\(images)' --out '\(out)/run' --model '\(model)' --steps 1 --quiet"
        let result = try tessera(["-c", command], binary: "/bin/sh")
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("the model needs 18.4 GiB") && result.stderr.contains("(the address-space limit, ulimit -v)"), "\(result.stderr)")
    }

    @Test func badRequestsAreClearErrors() throws {
        let dataset = try Self.digits()
        let out = try temporaryFolder("bad")
        let model = out + "/model.json"
        try #"{"modalities": {"image": {"encoder": ["flatten", {"linear": 16}], "decoder": [{"linear": 99}]}}}"#.write(toFile: model, atomically: true, encoding: .utf8)
        var result = try train(["train", dataset, "--out", out + "/run", "--model", model, "--steps", "1"])
        #expect(result.status == 1 && result.stderr.contains("reconstruction must have the input's shape"), "\(result.stderr)")
        #expect(result.stderr.hasPrefix("tessera: \(model): "), "the error names the user's model file: \(result.stderr)")
        try #"{"modalities": {"image": {"encoder": ["flatten", {"dense": 16}], "decoder": ["relu"]}}}"#.write(toFile: model, atomically: true, encoding: .utf8)
        result = try train(["train", dataset, "--out", out + "/run", "--model", model, "--steps", "1"])
        #expect(result.status == 1 && result.stderr.contains("modalities.image.encoder[1]"), "\(result.stderr)")
        result = try train(["train", dataset, "--out", out + "/run2", "--resume", "--steps", "1"])
        #expect(result.status == 1 && result.stderr.contains("nothing to resume"), "\(result.stderr)")
        result = try train(["train", dataset, "--out", out, "--steps", "1"])
        #expect(result.status == 1 && result.stderr.contains("not empty"), "\(result.stderr)")
        // Counts that would overflow or exhaust the machine are refused up front.
        result = try train(["train", dataset, "--out", out + "/run6", "--epochs", "\(Int.max)", "--quiet"])
        #expect(result.status == 1 && result.stderr.contains("(2^40)"), "\(result.stderr)")
        result = try train(["train", dataset, "--out", out + "/run7", "--threads", "100000", "--quiet"])
        #expect(result.status != 0 && result.stderr.contains("--threads must be from 1 to 256"), "\(result.stderr)")
        // Settings that would train into NaN or do nothing are refused before the run starts.
        for (option, message) in [("--weight-decay=nan", "--weight-decay must be >= 0"), ("--momentum=1", "--momentum must be in [0, 1)"),
                                  ("--clip-norm=0", "--clip-norm must be positive"), ("--eval-batches=0", "--eval-batches must be >= 1"),
                                  ("--warmup=-1", "--warmup must be >= 0"), ("--checkpoint-every=-5", "--checkpoint-every must be >= 0")] {
            result = try train(["train", dataset, "--out", out + "/run8", "--steps", "1", option, "--quiet"])
            #expect(result.status == 1 && result.stderr.contains(message), "\(option): \(result.stderr)")
        }
        // Channels-last images train too (the model reads a channels-first copy), pictures and eval included.
        let channelsLast = try Self.ingestCorpus(["--manifest", "fixtures/digits/triad.csv", "--modalities", "image", "--image-size", "16",
                                                  "--image-layout", "hwc"])
        result = try train(["train", channelsLast, "--out", out + "/run3", "--steps", "2", "--augment-shift", "2", "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        result = try train(["eval", channelsLast, "--checkpoint", out + "/run3"])
        #expect(result.status == 0 && result.stdout.contains("PSNR"), "\(result.stderr)")
        // Resuming on other data of the same shapes (the same samples in another order) is refused: the
        // result would not be the uninterrupted run's.
        let reordered = try Self.ingestCorpus(["--manifest", "fixtures/digits/triad.csv", "--tokenizer", "fixtures/text/tokenizers/w1.json",
                                               "--image-size", "32", "--seed", "1"])
        result = try train(["train", dataset, "--out", out + "/run9", "--steps", "2", "--batch-size", "8", "--no-pictures", "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        result = try train(["train", reordered, "--out", out + "/run9", "--steps", "4", "--batch-size", "8", "--no-pictures", "--quiet", "--resume"])
        #expect(result.status == 1 && result.stderr.contains("another train split"), "\(result.stderr)")
        result = try train(["train", dataset, "--out", out + "/run9", "--steps", "4", "--batch-size", "8", "--no-pictures", "--quiet", "--resume"])
        #expect(result.status == 0, "\(result.stderr)")
        // Resuming on a dataset of other shapes names the shapes (it blamed "another model" before).
        result = try train(["train", dataset, "--out", out + "/run3", "--resume", "--steps", "4", "--quiet"])
        #expect(result.status == 1 && result.stderr.contains("the model was trained on image [3, 16, 16]"), "\(result.stderr)")
        // A text-only model has no reconstructions to draw: the run says which pictures it wrote.
        let texts = try Self.ingestCorpus(["fixtures/corpus/coco", "--modalities", "text", "--tokenizer", "fixtures/text/tokenizers/w1.json"])
        result = try train(["train", texts, "--out", out + "/run10", "--steps", "2", "--quiet"])
        #expect(result.status == 0 && result.stdout.contains("pictures loss.png") && !result.stdout.contains("reconstructions.png"), "\(result.stdout)")
        #expect(!FileManager.default.fileExists(atPath: out + "/run10/reconstructions.png"))
        // A split smaller than the default batch trains in one batch of all of it, unless a size is asked for.
        let few = try Self.ingestCorpus(["fixtures/corpus/coco", "--modalities", "image", "--image-size", "16"])
        result = try train(["train", few, "--out", out + "/run4", "--steps", "2", "--no-pictures"])
        #expect(result.status == 0 && result.stderr.contains("batches of"), "\(result.stderr)")
        result = try train(["train", few, "--out", out + "/run5", "--steps", "2", "--batch-size", "64"])
        #expect(result.status == 1 && result.stderr.contains("fewer than one batch of 64"), "\(result.stderr)")
    }
}
