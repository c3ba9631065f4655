import Foundation
import Testing
import TesseraCore
import TesseraIngest
import TesseraShards
@testable import TesseraTrain
import TesseraTestSupport

let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()


/// fixtures/digits (the spoken-digit triad's small subset: 180 train, 60 val) ingested with 32x32 images.
let digitsDataset: String? = {
    guard let out = try? temporaryFolder("digits") else { return nil }
    var config = IngestConfig()
    config.manifestFile = packageRoot + "/fixtures/digits/triad.csv"
    config.text.tokenizer = packageRoot + "/fixtures/text/tokenizers/w1.json"
    config.image.size = 32
    let runner = IngestRunner(config: config, output: out)
    runner.jobs = 2
    return (try? runner.run()) != nil ? out : nil
}()

func validationLines(_ run: String) throws -> [JSONValue] {
    let text = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8)
    return text.split(separator: "\n").compactMap { try? JSONValue.parse(String($0)) }.filter { $0["split"]?.stringValue == "val" }
}

/// A small joint model, quick even in a debug build: every kind of layer, all three modalities.
func tinyModel(fusion: String = "concat") throws -> ModelSpec {
    let json = """
    {"name": "tiny", "fusion": "\(fusion)", "code": 8, "shared_width": 16,
     "modalities": {
      "image": {"encoder": [{"conv2d": {"out": 4, "kernel": 4, "stride": 4}}, "relu", {"maxpool": {"kernel": 2}}, "flatten", {"linear": 16}, "tanh"],
                "decoder": [{"linear": 64}, "leaky_relu", {"reshape": [4, 4, 4]}, {"upsample": {"scale": 2}},
                            {"conv_transpose2d": {"out": 3, "kernel": 4, "stride": 4}}]},
      "audio": {"encoder": ["flatten", {"linear": 16}, "sigmoid"], "decoder": [{"linear": 4160}, {"reshape": [64, 65]}]},
      "text": {"encoder": [{"embedding": {"dim": 8}}, {"linear": 16}, "relu"],
               "decoder": [{"linear": 64}, {"reshape": [32, 2]}, {"linear": 483}]}}}
    """
    return try ModelSpec.parse(try JSONValue.parse(json), source: "tiny")
}

@Suite(.serialized) struct TrainTests {
    /// The bar: stopping at step k and resuming gives the weights of an uninterrupted run, for several k,
    /// with modality dropout, the alignment term, image shifts, a shuffle buffer, a warm-up and a cosine
    /// schedule in play.
    @Test(arguments: [1, 5, 11])
    func resumingAtAnyStepGivesTheSameWeights(_ k: Int) throws {
        let dataset = try #require(digitsDataset)
        func options(_ run: String, steps: Int) throws -> TrainOptions {
            var model = try tinyModel()
            model.align = 0.5
            var options = TrainOptions(dataset: dataset, output: run, model: model)
            options.steps = steps
            options.batchSize = 8
            options.modalityDropout = 0.5
            options.augmentShift = 3
            options.schedule = .cosine
            options.warmupSteps = 3
            options.seed = 11
            options.evalEvery = nil
            options.checkpointEvery = 0
            return options
        }
        let straight = try temporaryFolder("straight")
        _ = try Trainer(options: options(straight, steps: 14), resume: false) { _ in }.run()
        // A run whose schedule is 14 steps, stopped after k (as a crash after the checkpoint at k would).
        let stopped = try temporaryFolder("stopped")
        let first = try Trainer(options: options(stopped, steps: 14), resume: false) { _ in }
        try first.runSteps(k)
        try first.saveCheckpoint()
        _ = try Trainer(options: options(stopped, steps: 14), resume: true) { _ in }.run()
        let a = try Data(contentsOf: URL(fileURLWithPath: straight + "/weights.safetensors"))
        let b = try Data(contentsOf: URL(fileURLWithPath: stopped + "/weights.safetensors"))
        // A Bool, not `a == b` inside #expect: on failure the macro would diff two multi-megabyte values.
        let same = a == b
        #expect(same, "resumed weights differ from the uninterrupted run's")
    }

    /// Images stored channels-last ([H, W, C], `ingest --image-layout hwc`) train exactly as the same images
    /// stored channels-first: the model reads a [C, H, W] copy, so with image shifts and modality dropout in
    /// play the weights come out byte for byte the same.
    @Test func channelsLastImagesTrainAsChannelsFirst() throws {
        let channelsFirst = try #require(digitsDataset)
        let channelsLast = try temporaryFolder("digits-hwc")
        var config = IngestConfig()
        config.manifestFile = packageRoot + "/fixtures/digits/triad.csv"
        config.text.tokenizer = packageRoot + "/fixtures/text/tokenizers/w1.json"
        config.image.size = 32
        config.image.layout = .hwc
        _ = try IngestRunner(config: config, output: channelsLast).run()
        var weights: [Data] = [], pictures: [Data] = []
        for dataset in [channelsFirst, channelsLast] {
            let run = try temporaryFolder("layout-run")
            var options = TrainOptions(dataset: dataset, output: run, model: try tinyModel())
            (options.steps, options.batchSize, options.seed) = (5, 8, 3)
            (options.modalityDropout, options.augmentShift, options.evalEvery) = (0.5, 3, nil)
            let trainer = try Trainer(options: options, resume: false) { _ in }
            _ = try trainer.run()
            try RunPictures.write(run: run, model: trainer.model, dataset: dataset) { _ in }
            weights.append(try Data(contentsOf: URL(fileURLWithPath: run + "/weights.safetensors")))
            pictures.append(try Data(contentsOf: URL(fileURLWithPath: run + "/reconstructions.png")))
        }
        let (sameWeights, samePictures) = (weights[0] == weights[1], pictures[0] == pictures[1])
        #expect(sameWeights, "channels-last images trained to other weights")
        #expect(samePictures, "channels-last images drew other pictures")
    }

    /// The in-place translation against the definition, for shifts in every direction and beyond the plane.
    @Test func translationMovesThePlaneAndFillsTheRest() {
        let (height, width) = (5, 7)
        for dy in -6...6 {
            for dx in -8...8 {
                var plane = (0..<(height * width)).map { Float($0 + 1) }
                plane.withUnsafeMutableBufferPointer { buffer in
                    guard let base = buffer.baseAddress else { return }
                    translate(base, height: height, width: width, dx: dx, dy: dy, fill: -1)
                }
                var expected = [Float](repeating: -1, count: height * width)
                for y in 0..<height {
                    for x in 0..<width where (0..<height).contains(y - dy) && (0..<width).contains(x - dx) {
                        expected[y * width + x] = Float((y - dy) * width + (x - dx) + 1)
                    }
                }
                #expect(plane == expected, "dx \(dx), dy \(dy)")
            }
        }
    }

    @Test func modelFilesRoundTripAndPresetsBuild() throws {
        let dataset = try #require(digitsDataset)
        let manifest = try DatasetManifest.load(folder: dataset)
        for name in ModelPresets.names where name != "m1" {
            let spec = try ModelPresets.spec(name, for: manifest)
            let reparsed = try ModelSpec.parse(try JSONValue.parse(spec.json.prettySerialized()), source: "test")
            #expect(reparsed == spec, "\(name) survives JSON")
            let model = try JointModel(spec: spec, manifest: manifest, maxBatch: 4, source: "test")
            #expect(model.params.count > 0)
        }
        // Mean fusion builds one projection per modality; shapes are checked.
        var spec = try tinyModel(fusion: "mean")
        let model = try JointModel(spec: spec, manifest: manifest, maxBatch: 4, source: "test")
        #expect(model.params.entries.contains { $0.name == "fusion.audio.weight" })
        #expect(model.params.entries.map(\.name).prefix(3) == ["image.encoder.0.weight", "image.encoder.0.bias", "image.encoder.4.weight"])
        spec.modalities[0].decoder.removeLast()
        #expect(throws: TesseraError.self) { _ = try JointModel(spec: spec, manifest: manifest, maxBatch: 4, source: "test") }
    }

    /// A text branch narrower than the dataset's tokenizer is said (its higher ids are read as padding).
    @Test func narrowVocabulariesAreNoted() throws {
        let dataset = try #require(digitsDataset)
        let manifest = try DatasetManifest.load(folder: dataset)
        var narrow = try tinyModel()
        let text = try #require(narrow.modalities.firstIndex { $0.name == "text" })
        narrow.modalities[text].decoder[narrow.modalities[text].decoder.count - 1] = .linear(out: 100)
        let tiny = try JointModel(spec: narrow, manifest: manifest, maxBatch: 2, source: "test")
        let notes = tiny.vocabularyNotes()
        #expect(notes.count == 1 && notes.first?.contains("tokenizer has 483 ids and the text branch covers 100") == true, "\(notes)")
        let small = try JointModel(spec: try ModelPresets.spec("small", for: manifest), manifest: manifest, maxBatch: 2, source: "test")
        #expect(small.vocabularyNotes().isEmpty)
    }

    /// Model files whose layers or whole would not fit are refused with the place and the cause before
    /// anything is allocated (each of these crashed, overflowing a product or failing to allocate, before).
    @Test func oversizedModelsAreRefusedBeforeAllocating() throws {
        let dataset = try #require(digitsDataset)
        let manifest = try DatasetManifest.load(folder: dataset)
        let decoder = #"[{"linear": 3072}, {"reshape": [3, 32, 32]}]"#
        let text = #""text": {"encoder": [{"embedding": {"vocabulary": 16777216, "dim": 16777216}}], "decoder": [{"linear": 2048}, {"reshape": [32, 64]}, {"linear": 483}]}"#
        // Forty layers of 2^31 weights: about 1.4 TB with gradients and Adam's moments.
        let huge = (0..<20).map { _ in #"{"linear": 174762}, {"linear": 12288}"# }.joined(separator: ", ")
        let cases: [(String, String)] = [
            (#""image": {"encoder": ["flatten", {"linear": 16777216}], "decoder": \#(decoder)}"#, "the weights would be too large"),
            (#""image": {"encoder": [{"conv2d": {"out": 4, "kernel": 16777216, "padding": 16777216}}, "flatten"], "decoder": \#(decoder)}"#, "too large"),
            (#""image": {"encoder": ["flatten", {"linear": 8}], "decoder": [{"linear": 48}, {"reshape": [3, 4, 4]}, {"conv_transpose2d": {"out": 3, "kernel": 16777216, "stride": 16777216}}]}"#, "the output would be too large"),
            (#""image": {"encoder": ["flatten", {"linear": 8}], "decoder": [{"linear": 3072}, {"reshape": [16777216, 16777216, 16777216, 3]}]}"#, "cannot reshape"),
            (text, "the embedding table would be too large"),
            (#""image": {"encoder": ["flatten", \#(huge)], "decoder": \#(decoder)}"#, "this process may use at most"),
        ]
        for (modalities, message) in cases {
            let spec = try ModelSpec.parse(try JSONValue.parse("{\"modalities\": {\(modalities)}}"), source: "test")
            do {
                _ = try JointModel(spec: spec, manifest: manifest, maxBatch: 64, source: "test")
                Issue.record("built: \(modalities.prefix(80))")
            } catch let error as TesseraError {
                #expect(error.description.contains(message), "\(error)")
            }
        }
    }

    /// The image presets halve each side twice and come back to the input's own size for any image from 4x4,
    /// odd sides included (output padding per axis), grey or colour; below 4 they refuse with a message.
    @Test func imagePresetsFitAnyImageSize() throws {
        let dataset = try #require(digitsDataset)
        var manifest = try DatasetManifest.load(folder: dataset)
        let index = try #require(manifest.schema.firstIndex { $0.name == "image" })
        for (channels, height, width) in [(3, 4, 4), (1, 5, 7), (3, 22, 30), (3, 22, 28), (1, 33, 17), (3, 64, 64), (3, 7, 100)] {
            manifest.schema[index].shape = [channels, height, width]
            let mean = Array(repeating: 0.5, count: channels), std = Array(repeating: 0.25, count: channels)
            manifest.schema[index].normalize = Normalization(scale: 1.0 / 255, mean: mean, std: std)
            for name in ["small", "seed-conv"] {
                let spec = try ModelPresets.spec(name, for: manifest)
                let model = try JointModel(spec: spec, manifest: manifest, maxBatch: 2, source: "test")
                let branch = try #require(model.branches.first { $0.spec.name == "image" })
                #expect(branch.decoder.outputShape == [channels, height, width], "\(name) at \(channels)x\(height)x\(width)")
            }
        }
        manifest.schema[index].shape = [3, 3, 9]
        #expect(throws: TesseraError.self) { _ = try ModelPresets.spec("small", for: manifest) }
        // M1 is W1's shapes only: refused by name on other ones, printable all the same.
        manifest.schema[index].shape = [3, 32, 32]
        #expect { _ = try ModelPresets.spec("m1", for: manifest) } throws: { error in
            "\(error)".contains("this dataset has image [3, 32, 32]")
        }
        #expect(try ModelPresets.spec("m1", for: manifest, checkFixedShapes: false).name == "m1")
    }

    /// Images ingested as float32 are stored normalised; the manifest records the mean and std applied, so a
    /// unit-scale model (seed-conv) sees the same pixel values in [0, 1] as from the same images stored as uint8.
    @Test func float32ImagesComeBackToPixelValues() throws {
        let bytes = try #require(digitsDataset)
        let floats = try temporaryFolder("digits-f32")
        var config = IngestConfig()
        config.manifestFile = packageRoot + "/fixtures/digits/triad.csv"
        config.modalities = [.image]
        config.image.size = 32
        config.image.dtype = .float32
        config.image.mean = [0.5, 0.4, 0.3]
        config.image.std = [0.25, 0.2, 0.3]
        _ = try IngestRunner(config: config, output: floats).run()
        let schema = try #require(try DatasetManifest.load(folder: floats).tensor("image"))
        #expect(schema.extra["mean"] == .array([.double(0.5), .double(0.4), .double(0.3)]))
        #expect(schema.extra["std"] == .array([.double(0.25), .double(0.2), .double(0.3)]))

        func unitPixels(_ dataset: String) throws -> [Float] {
            let manifest = try DatasetManifest.load(folder: dataset)
            let model = try JointModel(spec: try ModelPresets.spec("seed-conv", for: manifest), manifest: manifest, maxBatch: 8, source: "test")
            var loader = LoaderConfig()
            (loader.batchSize, loader.shuffle) = (8, .none)
            let shards = try ShardLoader(folder: dataset, config: loader)
            defer { shards.stop() }
            try shards.start()
            let batch = try #require(try shards.next())
            try model.prepare(ModelBatch(batch), visibleModalities: nil, hide: nil)
            let branch = try #require(model.branches.first), unit = try #require(branch.unitInput)
            return Array(UnsafeBufferPointer(start: model.arena.pointer(unit), count: 8 * 3 * 32 * 32))
        }
        let (a, b) = (try unitPixels(bytes), try unitPixels(floats))
        let largest = zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
        #expect(largest < 1e-5, "largest difference \(largest)")
        #expect(a.contains { $0 > 0.5 } && a.allSatisfy { $0 >= -1e-6 && $0 <= 1 + 1e-6 })
    }
}

/// `tessera eval`'s linear probe against scikit-learn's LogisticRegression(C=1) on standardised features and
/// on the features as they are (fixtures/train/probe.safetensors, made by tools/fixtures/make_probe_goldens.py):
/// the same predictions (one of 200 may differ where two classes tie within the solvers' tolerances).
@Suite struct ProbeTests {
    @Test func probeAgreesWithScikitLearn() throws {
        let file = try SafetensorsFile(path: packageRoot + "/fixtures/train/probe.safetensors")
        let train = SplitCodes(codes: try file.tensor("x_train").scalars(as: Float.self), width: 16,
                               labels: try file.tensor("y_train").scalars(as: Int32.self), keys: Array(repeating: "", count: 400))
        let test = SplitCodes(codes: try file.tensor("x_test").scalars(as: Float.self), width: 16,
                              labels: try file.tensor("y_test").scalars(as: Int32.self), keys: Array(repeating: "", count: 200))
        let model = LogisticRegression(features: train.codes.map(Double.init), labels: (train.labels ?? []).map(Int.init), width: 16, classes: 10,
                                       inverseRegularization: 1)
        let predictions = model.predict(test.codes.map(Double.init))
        let sklearn = try file.tensor("predictions").scalars(as: Int32.self)
        let agreeing = zip(predictions, sklearn).filter { $0 == Int($1) }.count
        #expect(agreeing == 200, "\(agreeing) of 200 predictions agree with scikit-learn")
        let accuracy = try #require(Evaluation.linearProbe(train: train, test: test, standardize: true)).accuracy
        let expected = Double(try file.tensor("accuracy").scalars(as: Float.self)[0])
        #expect(abs(accuracy - expected) < 1e-6, "accuracy \(accuracy) vs scikit-learn \(expected)")
        // The features as they are (the default), at their own scale and at an untrained model's code size.
        for (name, factor) in [("raw", Float(1)), ("small", Float(0.03))] {
            let scaledTrain = SplitCodes(codes: train.codes.map { Float(Double($0) * Double(factor)) }, width: 16, labels: train.labels, keys: train.keys)
            let scaledTest = SplitCodes(codes: test.codes.map { Float(Double($0) * Double(factor)) }, width: 16, labels: test.labels, keys: test.keys)
            let raw = LogisticRegression(features: scaledTrain.codes.map(Double.init), labels: (train.labels ?? []).map(Int.init), width: 16,
                                         classes: 10, inverseRegularization: 1, standardize: false)
            let expectedPredictions = try file.tensor("predictions_\(name)").scalars(as: Int32.self)
            let same = zip(raw.predict(scaledTest.codes.map(Double.init)), expectedPredictions).filter { $0 == Int($1) }.count
            #expect(same >= 199, "\(name): \(same) of 200 predictions agree with scikit-learn")
            let rawAccuracy = try #require(Evaluation.linearProbe(train: scaledTrain, test: scaledTest)).accuracy
            let rawExpected = Double(try file.tensor("accuracy_\(name)").scalars(as: Float.self)[0])
            #expect(abs(rawAccuracy - rawExpected) <= 0.005 + 1e-9, "\(name): accuracy \(rawAccuracy) vs scikit-learn \(rawExpected)")
        }
    }

    /// Samples without a label (-1) take no part in the probe or in class-level retrieval: the figures equal
    /// those of the labelled samples alone (the probe refused the whole split before).
    @Test func unlabelledSamplesAreLeftOut() throws {
        let file = try SafetensorsFile(path: packageRoot + "/fixtures/train/probe.safetensors")
        let codes = try file.tensor("x_train").scalars(as: Float.self), labels = try file.tensor("y_train").scalars(as: Int32.self)
        let testCodes = try file.tensor("x_test").scalars(as: Float.self), testLabels = try file.tensor("y_test").scalars(as: Int32.self)
        var partial = labels, partialTest = testLabels
        for i in stride(from: 0, to: partial.count, by: 3) { partial[i] = -1 }
        for i in stride(from: 1, to: partialTest.count, by: 4) { partialTest[i] = -1 }
        func kept(_ codes: [Float], _ labels: [Int32]) -> SplitCodes {
            let rows = labels.indices.filter { labels[$0] >= 0 }
            return SplitCodes(codes: rows.flatMap { codes[($0 * 16)..<(($0 + 1) * 16)] }, width: 16, labels: rows.map { labels[$0] },
                              keys: Array(repeating: "", count: rows.count))
        }
        let train = SplitCodes(codes: codes, width: 16, labels: partial, keys: Array(repeating: "", count: partial.count))
        let test = SplitCodes(codes: testCodes, width: 16, labels: partialTest, keys: Array(repeating: "", count: partialTest.count))
        let withGaps = try #require(Evaluation.linearProbe(train: train, test: test))
        let alone = try #require(Evaluation.linearProbe(train: kept(codes, partial), test: kept(testCodes, partialTest)))
        #expect(withGaps.accuracy == alone.accuracy)
        #expect(withGaps.trainSamples == alone.trainSamples && withGaps.testSamples == alone.testSamples && alone.testSamples == 150)
        // Class-level retrieval of the test codes against themselves, the gallery's labels moved to another class:
        // every labelled query misses; the unlabelled ones (-1 against -1) must not count as hits.
        var gallery = test
        gallery.labels = partialTest.map { $0 >= 0 ? ($0 + 1) % 10 : -1 }
        let classAtOne = try #require(Evaluation.retrieval(queries: test, gallery: gallery).classAtOne)
        #expect(classAtOne == 0)
        #expect(Evaluation.retrieval(queries: test, gallery: test).classAtOne == 1)
    }

    /// Retrieval over a split larger than one block of similarities (2,100 samples: blocks of 1,997 rows)
    /// equals a direct computation, ties included.
    @Test func retrievalInBlocksEqualsTheDirectComputation() throws {
        let n = 2100, d = 6
        var random = SeededRandom(seed: 11)
        // Scaled basis vectors: every similarity is exactly 0 or 1 whatever the order of the sums, and ties abound.
        func basis(_ k: Int, _ scale: Float) -> [Float] { (0..<d).map { $0 == k ? scale : 0 } }
        let axes = (0..<n).map { _ in Int(random.next() % UInt64(d)) }
        let queries = axes.enumerated().flatMap { i, k in basis(k, Float(1 + i % 3)) }
        let gallery = axes.enumerated().flatMap { i, k in basis(i % 7 == 0 ? (k + 1) % d : k, 2) }
        let labels = (0..<n).map { Int32($0 % 10) }
        let keys = (0..<n).map { "s\($0)" }
        let result = Evaluation.retrieval(queries: SplitCodes(codes: queries, width: d, labels: labels, keys: keys),
                                          gallery: SplitCodes(codes: gallery, width: d, labels: labels, keys: keys))
        // The cosine of two scaled basis vectors is 1 on the same axis, else 0.
        let galleryAxes = axes.enumerated().map { i, k in i % 7 == 0 ? (k + 1) % d : k }
        var hits = [1: 0, 5: 0, 10: 0], classHits = 0
        for i in 0..<n {
            let own = galleryAxes[i] == axes[i]
            let better = own ? galleryAxes.indices.filter { $0 != i && galleryAxes[$0] == axes[i] }.count : n - 1
            for k in [1, 5, 10] where better < k { hits[k, default: 0] += 1 }
            let best = galleryAxes.firstIndex(of: axes[i]) ?? 0
            if labels[best] == labels[i] { classHits += 1 }
        }
        #expect(result.samples == n)
        for k in [1, 5, 10] { #expect(abs((result.recall[k] ?? -1) - Double(hits[k] ?? 0) / Double(n)) < 1e-12, "recall@\(k)") }
        #expect(abs((result.classAtOne ?? -1) - Double(classHits) / Double(n)) < 1e-12)
    }

    /// Labels are class names, not counts: the probe's classes are the labels the train codes have, so labels
    /// spread up to 2^31 - 1 give the accuracy of the same labels numbered 0-9 (they allocated a class per
    /// integer up to the largest before).
    @Test func sparseLabelsGiveTheDenseLabelsAccuracy() throws {
        let file = try SafetensorsFile(path: packageRoot + "/fixtures/train/probe.safetensors")
        let codes = try file.tensor("x_train").scalars(as: Float.self), labels = try file.tensor("y_train").scalars(as: Int32.self)
        let testCodes = try file.tensor("x_test").scalars(as: Float.self), testLabels = try file.tensor("y_test").scalars(as: Int32.self)
        let spread = { (label: Int32) -> Int32 in label == 9 ? Int32.max : label * 200_000_000 }
        func split(_ codes: [Float], _ labels: [Int32]) -> SplitCodes {
            SplitCodes(codes: codes, width: 16, labels: labels, keys: Array(repeating: "", count: labels.count))
        }
        let dense = try #require(Evaluation.linearProbe(train: split(codes, labels), test: split(testCodes, testLabels)))
        let sparse = try #require(Evaluation.linearProbe(train: split(codes, labels.map(spread)), test: split(testCodes, testLabels.map(spread))))
        #expect(sparse.accuracy == dense.accuracy && sparse.testSamples == dense.testSamples)
    }

    /// A code computed from no input (the sample lacks every modality it was asked for) takes no part in the
    /// probe or in retrieval: the figures equal those of the samples with an input alone.
    @Test func codesWithoutAnInputAreLeftOut() throws {
        let file = try SafetensorsFile(path: packageRoot + "/fixtures/train/probe.safetensors")
        let codes = try file.tensor("x_train").scalars(as: Float.self), labels = try file.tensor("y_train").scalars(as: Int32.self)
        let testCodes = try file.tensor("x_test").scalars(as: Float.self), testLabels = try file.tensor("y_test").scalars(as: Int32.self)
        let keys = { (n: Int) in (0..<n).map { "s\($0)" } }
        let fromInput = (0..<400).map { $0 % 5 != 2 }, testFromInput = (0..<200).map { $0 % 3 != 0 }
        let train = SplitCodes(codes: codes, width: 16, labels: labels, keys: keys(400), fromInput: fromInput)
        let test = SplitCodes(codes: testCodes, width: 16, labels: testLabels, keys: keys(200), fromInput: testFromInput)
        func kept(_ codes: SplitCodes, _ keep: [Bool]) -> SplitCodes {
            let rows = keep.indices.filter { keep[$0] }
            return SplitCodes(codes: rows.flatMap { codes.codes[($0 * 16)..<(($0 + 1) * 16)] }, width: 16,
                              labels: codes.labels.map { all in rows.map { all[$0] } }, keys: rows.map { codes.keys[$0] })
        }
        let probe = try #require(Evaluation.linearProbe(train: train, test: test))
        let expected = try #require(Evaluation.linearProbe(train: kept(train, fromInput), test: kept(test, testFromInput)))
        #expect(probe.accuracy == expected.accuracy && probe.trainSamples == 320 && probe.testSamples == 133)
        // Retrieval pairs the samples with an input on both sides: 133 test samples against themselves, of which
        // the gallery (marked every fourth) loses some more.
        var gallery = test
        gallery.fromInput = (0..<200).map { $0 % 4 != 1 }
        let both = (0..<200).map { testFromInput[$0] && gallery.fromInput[$0] }
        let result = Evaluation.retrieval(queries: test, gallery: gallery)
        let reference = Evaluation.retrieval(queries: kept(test, both), gallery: kept(test, both))
        #expect(result.samples == both.filter { $0 }.count && result.samples == reference.samples)
        #expect(result.recall == reference.recall && result.classAtOne == reference.classAtOne)
        #expect(Evaluation.retrieval(queries: test, gallery: SplitCodes(codes: testCodes, width: 16, labels: testLabels, keys: keys(200),
                                                                      fromInput: Array(repeating: false, count: 200))).samples == 0)
    }
}

/// The digit fixture's first batch of `size`, unshuffled, with its model built from `spec` and initialised from
/// `seed`. The loader owns the batch's memory: stop it when done.
func firstDigitsBatch(_ spec: ModelSpec, size: Int, seed: UInt64) throws -> (model: JointModel, input: ModelBatch, loader: ShardLoader) {
    let dataset = try #require(digitsDataset)
    let manifest = try DatasetManifest.load(folder: dataset)
    let model = try JointModel(spec: spec, manifest: manifest, maxBatch: size, source: "test")
    model.initialize(seed: seed)
    var config = LoaderConfig()
    config.batchSize = size
    config.shuffle = .none
    let loader = try ShardLoader(folder: dataset, config: config)
    try loader.start()
    guard let batch = try loader.next() else {
        loader.stop()
        throw TesseraError(stage: .read, code: "test.empty", "the digit fixture gave no batch")
    }
    return (model, ModelBatch(batch), loader)
}

/// The alignment term's gradient against central finite differences (with its target held fixed), for concat
/// and mean fusion, with the reconstruction losses weighted 0 so that only the term is checked.
@Suite struct AlignmentTests {
    @Test(arguments: ["concat", "mean"])
    func alignmentGradientMatchesFiniteDifferences(_ fusion: String) throws {
        var spec = try tinyModel(fusion: fusion)
        spec.align = 1
        for i in spec.modalities.indices { spec.modalities[i].weight = 0 }
        let (model, input, loader) = try firstDigitsBatch(spec, size: 6, seed: 3)
        defer { loader.stop() }
        try model.prepare(input, visibleModalities: nil, hide: nil)
        func loss() -> Double {
            model.forward(input)
            return model.losses(input).total
        }
        model.params.zeroGrads()
        let base = loss()
        #expect(base > 0 && base.isFinite)
        model.backward(input)
        // The target is held fixed in the gradient (a stop-gradient), so it is held fixed here too.
        model.holdsAlignTarget = true
        let names = fusion == "concat" ? ["fusion.weight", "fusion.bias", "image.encoder.4.weight", "audio.encoder.1.weight"]
                                       : ["fusion.image.weight", "fusion.text.bias", "image.encoder.4.weight", "text.encoder.1.weight"]
        for name in names {
            let entry = try #require(model.params.entry(name))
            let values = model.params.value(entry.ref), grads = model.params.grad(entry.ref)
            // The coordinates with the largest gradients, where float rounding matters least.
            let largest = (0..<entry.ref.count).sorted { abs(grads[$0]) > abs(grads[$1]) }.prefix(4)
            for i in largest {
                let original = values[i], step: Float = 1e-2
                values[i] = original + step
                let up = loss()
                values[i] = original - step
                let down = loss()
                values[i] = original
                let numeric = (up - down) / Double(2 * step)
                let analytic = Double(grads[i])
                #expect(abs(numeric - analytic) <= 0.03 * abs(analytic) + 1e-5, "\(name)[\(i)]: analytic \(analytic), numeric \(numeric)")
            }
        }
    }
}

/// Text logits computed at the scored positions only give the loss and gradients of computing all of them.
@Suite struct ScoredRowsTests {
    @Test func packedTextLogitsGiveTheFullLossAndGradients() throws {
        let (model, input, loader) = try firstDigitsBatch(try tinyModel(), size: 8, seed: 4)
        defer { loader.stop() }
        let lengths = try #require(input.ids != nil ? input.lengths : nil)
        #expect((0..<input.count).contains { lengths[$0] < 32 }, "the batch must have padding for this test to mean anything")
        func pass(packed: Bool) throws -> (loss: Double, text: Double, grads: [Float]) {
            model.packsScoredRows = packed
            try model.prepare(input, visibleModalities: nil, hide: nil)
            model.params.zeroGrads()
            model.forward(input)
            let losses = model.losses(input)
            model.backward(input)
            return (losses.total, losses.values["text"] ?? .nan, Array(UnsafeBufferPointer(start: model.params.grads, count: model.params.count)))
        }
        let packed = try pass(packed: true), full = try pass(packed: false)
        #expect(abs(packed.text - full.text) <= 1e-6 * abs(full.text), "text loss \(packed.text) vs \(full.text)")
        #expect(abs(packed.loss - full.loss) <= 1e-6 * abs(full.loss))
        var worst = 0.0
        let floor = Double(full.grads.map { abs($0) }.max() ?? 0) * 1e-3
        for (a, b) in zip(packed.grads, full.grads) { worst = max(worst, abs(Double(a) - Double(b)) / max(abs(Double(b)), floor)) }
        #expect(worst < 1e-4, "largest gradient difference \(worst)")
    }
}

/// The pictures of a diverged run: losses over many decades (up to 1e22) once crashed the loss plot's labels.
@Suite struct PictureTests {
    @Test func lossPlotDrawsAnyFiniteLosses() {
        var lines: [JSONValue] = []
        for step in 1...300 {
            let huge = pow(10, Double(step) / 12)
            lines.append(.object(JSONObject([("step", .int(step)), ("split", .string("train")),
                                            ("loss_audio", .double(huge)), ("loss_image", .double(1e-9 * Double(step))),
                                            ("loss_text", .double(step % 7 == 0 ? .infinity : 2))])))
        }
        let canvas = RunPictures.lossPlot(lines, modalities: ["image", "audio", "text"])
        #expect(canvas.width > 0)
        #expect(RunPictures.formatTick(1e22) == "1E22")
        #expect(RunPictures.formatTick(2e-7) == "2E-7")
        #expect(RunPictures.formatTick(0.05) == "0.05")
    }

    /// A rising ramp from -1 to 1 at scale 1 runs from the box's bottom row at the left to its top row at the
    /// right; each column spans only its own samples.
    @Test func waveformTraceSpansEachColumnsSamples() {
        let ink = RGB(1, 2, 3), (w, h) = (50, 32)
        let ramp = (0..<1000).map { Float($0) / 999 * 2 - 1 }
        var canvas = Canvas(width: w, height: h)
        ramp.withUnsafeBufferPointer { canvas.waveform($0.baseAddress!, count: ramp.count, scale: 1, x: 0, y: 0, w: w, h: h, ink) }
        func inked(_ column: Int) -> [Int] {
            (0..<h).filter { y in
                let i = (y * w + column) * 3
                return RGB(canvas.pixels[i], canvas.pixels[i + 1], canvas.pixels[i + 2]) == ink
            }
        }
        let (first, last) = (inked(0), inked(w - 1))
        #expect(first.max() == h / 2 + (h / 2 - 1) && first.count <= 2, "\(first)")
        #expect(last.min() == h / 2 - (h / 2 - 1) && last.count <= 2, "\(last)")
        #expect((1..<w).allSatisfy { (inked($0).max() ?? h) <= (inked($0 - 1).max() ?? h) }, "the trace rises")
    }
}
