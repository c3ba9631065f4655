// `tessera encode` (shared codes per sample) and `tessera eval` (reconstruction, retrieval, linear probes).
import ArgumentParser
import Foundation
import TesseraCore
import TesseraEngine
import TesseraShards
import TesseraTrain

/// The split to evaluate: the given one, else test, else val.
func evaluationSplit(_ requested: String?, _ manifest: DatasetManifest) throws -> String {
    if let requested {
        guard manifest.split(requested) != nil else {
            throw ValidationError("no split \(requested) in the dataset (it has \(manifest.splits.map(\.name).joined(separator: ", ")))")
        }
        return requested
    }
    for name in ["test", "val"] where (manifest.split(name)?.samples ?? 0) > 0 { return name }
    throw ValidationError("the dataset has no test or val split; name one with --split")
}

/// The batch size and thread count every model command takes, checked before the engine is configured.
func checkBatchAndThreads(batchSize: Int, threads: Int) throws {
    guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
    guard (1...EngineThreads.maximum).contains(threads) else { throw ValidationError("--threads must be from 1 to \(EngineThreads.maximum)") }
}

func parseModalities(_ text: String?, model: JointModel) throws -> Set<String>? {
    guard let text else { return nil }
    let names = Set(text.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    guard !names.isEmpty else { throw ValidationError("--modalities: name at least one of \(model.modalityNames.joined(separator: ", "))") }
    for name in names where !model.modalityNames.contains(name) {
        throw ValidationError("--modalities: the model has no \(name) (it has \(model.modalityNames.joined(separator: ", ")))")
    }
    return names
}

struct EncodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode",
        abstract: "The shared code of every sample of a split: EMB.safetensors with code [N, D], label [N] and the keys."
    )

    @Argument(help: "A dataset folder written by `tessera ingest`.")
    var dataset: String

    @Option(name: .long, help: "A run folder (or a weights/checkpoint file).")
    var checkpoint: String

    @Option(name: .long, help: "The split (train).")
    var split = "train"

    @Option(name: .long, help: "Encode from these modalities only, e.g. audio (default: every present one).")
    var modalities: String?

    @Option(name: .long, help: "Output safetensors file.")
    var out: String

    @Option(name: .long, help: "Samples per batch (256).")
    var batchSize = 256

    @Option(name: .long, help: "Threads (2).")
    var threads = 2

    @Flag(name: .long, help: "Skip the SHA-256 check of each shard when first opened.")
    var noVerifyShards = false

    /// The longest key list (JSON bytes) also written to the metadata.
    static let keysInMetadataLimit = 16 << 20

    func run() throws {
        try reportingErrors {
            try checkBatchAndThreads(batchSize: batchSize, threads: threads)
            EngineThreads.configure(threads)
            let manifest = try DatasetManifest.load(folder: dataset)
            let reading = try FolderLock(folder: dataset, for: .reading)
            defer { withExtendedLifetime(reading) {} }
            guard manifest.split(split) != nil else { throw ValidationError("no split \(split) in the dataset") }
            let trained = try TrainedModel(checkpoint: checkpoint, dataset: manifest, datasetName: dataset, batchSize: batchSize)
            let visible = try parseModalities(modalities, model: trained.model)
            let codes = try Evaluation.codes(model: trained.model, dataset: dataset, split: split, visible: visible, verify: !noVerifyShards)
            var tensors = [("code", try Tensor(shape: [codes.count, codes.width], scalars: codes.codes))]
            let mask = (0..<codes.count).map { codes.hasInput($0) ? UInt8(1) : 0 }
            tensors.append(("mask", try Tensor(shape: [codes.count], scalars: mask)))
            if let labels = codes.labels { tensors.append(("label", try Tensor(shape: [codes.count], scalars: labels))) }
            // The keys as tensors, which hold any number of them: key i is key_bytes[key_offsets[i]..<key_offsets[i + 1]] (UTF-8).
            // The metadata's JSON list is a convenience while it is small, since safetensors headers stop at 100 MB.
            let keyBytes = codes.keys.flatMap { Array($0.utf8) }
            var keyOffsets: [Int64] = [0]
            keyOffsets.reserveCapacity(codes.count + 1)
            for key in codes.keys { keyOffsets.append((keyOffsets.last ?? 0) + Int64(key.utf8.count)) }
            tensors.append(("key_bytes", try Tensor(shape: [keyBytes.count], scalars: keyBytes)))
            tensors.append(("key_offsets", try Tensor(shape: [keyOffsets.count], scalars: keyOffsets)))
            var metadata = ["format": "tessera-codes", "split": split,
                            "modalities": (visible.map { $0.sorted() } ?? trained.model.modalityNames).joined(separator: ","),
                            "model": trained.model.spec.name, "checkpoint": trained.source]
            let keyList = JSONValue.array(codes.keys.map { .string($0) }).serialized()
            if keyList.utf8.count <= Self.keysInMetadataLimit { metadata["keys"] = keyList }
            // Label ids stand for the dataset's names (--label-from-folder, or class names in a manifest): carried along.
            if codes.labels != nil, let names = manifest.tensor("label")?.extra["names"] { metadata["label_names"] = names.serialized() }
            _ = try SafetensorsWriter.write(tensors, metadata: metadata, to: out)
            Console.out("\(out): \(codes.count) codes of width \(codes.width) from \(split) (\(metadata["modalities"] ?? ""))")
            let without = mask.filter { $0 == 0 }.count
            if without > 0 {
                Console.err("\(without) of \(codes.count) samples have none of \(metadata["modalities"] ?? ""): their codes come from the biases alone (mask 0)")
            }
        }
    }
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Reconstruction error from all modalities and from each alone, cross-modal retrieval, linear probes."
    )

    @Argument(help: "A dataset folder written by `tessera ingest`.")
    var dataset: String

    @Option(name: .long, help: "A run folder (or a weights/checkpoint file).")
    var checkpoint: String

    @Option(name: .long, help: "The split to evaluate (default: test, else val).")
    var split: String?

    @Option(name: .long, help: "Samples per batch (256).")
    var batchSize = 256

    @Option(name: .long, help: "Threads (2).")
    var threads = 2

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    @Flag(name: .long, help: "Standardise the codes before the linear probe (default: the codes as they are).")
    var probeStandardize = false

    @Flag(name: .long, help: "Skip the SHA-256 check of each shard when first opened.")
    var noVerifyShards = false

    func run() throws {
        try reportingErrors {
            try checkBatchAndThreads(batchSize: batchSize, threads: threads)
            EngineThreads.configure(threads)
            let manifest = try DatasetManifest.load(folder: dataset)
            let reading = try FolderLock(folder: dataset, for: .reading)
            defer { withExtendedLifetime(reading) {} }
            let target = try evaluationSplit(split, manifest)
            let trained = try TrainedModel(checkpoint: checkpoint, dataset: manifest, datasetName: dataset, batchSize: batchSize)
            let model = trained.model
            let names = model.modalityNames
            let inputs: [(String, Set<String>?)] = [("all", nil)] + (names.count > 1 ? names.map { ($0, [$0]) } : [])

            var report = JSONObject([("dataset", .string(dataset)), ("checkpoint", .string(trained.source)), ("split", .string(target))])
            var lines: [String] = ["\(dataset) \(target) split, model \(model.spec.name) from \(trained.source)"]

            // Each split's shards are checked against their SHA-256 on its first pass only (a pass per input
            // would hash each split once per input: four times with three modalities).
            var verified: Set<String> = []
            func firstPass(_ split: String) -> Bool { !noVerifyShards && verified.insert(split).inserted }
            // One pass per input: codes, reconstruction losses and the image PSNR together.
            var measures: [String: SplitMeasures] = [:]
            for (label, visible) in inputs {
                measures[label] = try Evaluation.measure(model: model, dataset: dataset, split: target, visible: visible, verify: firstPass(target))
            }
            // Reconstruction: rows are the inputs, columns the reconstructed modality.
            var reconstruction = JSONObject()
            var rows: [[String]] = []
            for (label, _) in inputs {
                let errors = measures[label]?.reconstruction ?? [:]
                reconstruction[label] = .object(JSONObject(names.compactMap { n in errors[n].map { (n, JSONValue.double($0)) } }))
                rows.append(["from \(label)"] + names.map { errors[$0].map { fixed($0, 4) } ?? "-" })
            }
            report["reconstruction"] = .object(reconstruction)
            lines.append("")
            lines.append("reconstruction loss (MSE on the model's input scale; cross-entropy for text), by input:")
            lines += formatTable(header: ["input"] + names, rows: rows, rightAligned: Set(1...names.count))
            if names.contains("image") {
                var psnr = JSONObject()
                var cells: [String] = []
                for (label, _) in inputs {
                    let value = measures[label]?.imagePSNR
                    psnr[label] = value.map { .double($0) } ?? .null
                    cells.append("from \(label) " + (value.map { fixed($0, 2) + " dB" } ?? "-"))
                }
                report["image_psnr"] = .object(psnr)
                lines.append("image PSNR (pixels in [0, 1]): " + cells.joined(separator: ", "))
            }
            let codes = measures.mapValues(\.codes)
            if names.count > 1 {
                var retrieval = JSONObject()
                var rows: [[String]] = []
                for a in names {
                    for b in names where a != b {
                        guard let queries = codes[a], let gallery = codes[b] else { continue }
                        let result = Evaluation.retrieval(queries: queries, gallery: gallery)
                        var entry = JSONObject(result.recall.sorted { $0.key < $1.key }.map { ("recall@\($0.key)", JSONValue.double($0.value)) })
                        if let classAtOne = result.classAtOne { entry["class@1"] = .double(classAtOne) }
                        entry["samples"] = .int(result.samples)
                        retrieval["\(a)->\(b)"] = .object(entry)
                        rows.append(["\(a) -> \(b)", "\(result.samples)"] + [1, 5, 10].map { percent(result.recall[$0]) } + [percent(result.classAtOne)])
                    }
                }
                report["retrieval"] = .object(retrieval)
                lines.append("")
                lines.append("cross-modal retrieval among the \(target) samples that have both modalities (code from the query modality alone vs the gallery's alone; cosine):")
                lines += formatTable(header: ["query -> gallery", "samples", "R@1", "R@5", "R@10", "same label @1"], rows: rows, rightAligned: [1, 2, 3, 4, 5])
            }
            if codes["all"]?.labels != nil {
                var probe = JSONObject(), probeSamples = JSONObject()
                var rows: [[String]] = []
                for (label, visible) in inputs {
                    guard let test = codes[label] else { continue }
                    let train = try Evaluation.codes(model: model, dataset: dataset, split: "train", visible: visible, verify: firstPass("train"))
                    let result = Evaluation.linearProbe(train: train, test: test, standardize: probeStandardize)
                    probe[label] = result.map { .double($0.accuracy) } ?? .null
                    probeSamples[label] = result.map { .object(JSONObject([("train", .int($0.trainSamples)), ("test", .int($0.testSamples))])) } ?? .null
                    rows.append(["code from \(label)", result.map { "\($0.trainSamples)" } ?? "-", result.map { "\($0.testSamples)" } ?? "-",
                                 percent(result?.accuracy)])
                }
                report["probe"] = .object(probe)
                report["probe_samples"] = .object(probeSamples)
                report["probe_features"] = .string(probeStandardize ? "standardized" : "raw")
                lines.append("")
                lines.append("linear probe (logistic regression, C=1, on \(probeStandardize ? "standardised " : "")train-split codes, accuracy on \(target); labelled samples with the input):")
                lines += formatTable(header: ["input", "fitted on", "scored on", "accuracy"], rows: rows, rightAligned: [1, 2, 3])
            }
            if json {
                Console.out(JSONValue.object(report).prettySerialized())
            } else {
                lines.forEach(Console.out)
            }
        }
    }

    func percent(_ value: Double?) -> String { value.map { fixed($0 * 100, 1) + "%" } ?? "-" }
}
