// `tessera inspect DATASET`: splits, counts, schema, statistics, errors; or one sample's tensors.
import TesseraCore
import TesseraShards

enum DatasetReport {
    static func run(folder: String, json: Bool, sample: String?) throws {
        let manifest = try DatasetManifest.load(folder: folder)
        if let sample {
            try printSample(sample, folder: folder, manifest: manifest, json: json)
            return
        }
        if json {
            Console.out(try JSONValue.parse(manifest.serialized()).prettySerialized())
            return
        }
        Console.out("\(folder): \(manifest.sampleCount) samples, modalities \(manifest.modalities.joined(separator: ", ")) (\(manifest.tool))")
        let splitRows = manifest.splits.map { split in
            [split.name, groupedDigits(split.samples), "\(split.shards.count)", groupedDigits(split.shards.reduce(0) { $0 + $1.bytes })]
        }
        formatTable(header: ["split", "samples", "shards", "bytes"], rows: splitRows, rightAligned: [1, 2, 3]).forEach(Console.out)
        Console.out("schema (per sample; shards add a leading N):")
        let schemaRows = manifest.schema.map { entry -> [String] in
            var norm = ""
            if let n = entry.normalize {
                norm = (n.scale != 1 ? "x*\(fixed(n.scale, 6)) " : "x ") + "- mean \(n.mean.map { fixed($0, 4) }) / std \(n.std.map { fixed($0, 4) })"
            }
            return [entry.name, entry.dtype.rawValue, shapeText(entry.shape), norm]
        }
        formatTable(header: ["tensor", "dtype", "shape", "normalise when reading"], rows: schemaRows).forEach { Console.out("  " + $0) }
        if let names = manifest.tensor("label")?.extra["names"]?.arrayValue?.compactMap(\.stringValue), !names.isEmpty {
            let shown = names.prefix(20).enumerated().map { "\($0.offset) \($0.element)" }.joined(separator: ", ")
            Console.out("label names (id name): \(shown)\(names.count > 20 ? ", ... (\(names.count) in all)" : "")")
        }
        Console.out("statistics: \(manifest.statistics.serialized())")
        let lines = manifest.errors["lines"]?.intValue ?? 0
        let failed = manifest.errors["samples_failed"]?.intValue ?? 0
        Console.out("errors: \(failed) samples failed, \(lines) lines in \(FilePath.join(folder, "errors.jsonl")); by code \(manifest.errors["by_code"]?.serialized() ?? "{}")")
    }

    static func printSample(_ key: String, folder: String, manifest: DatasetManifest, json: Bool) throws {
        for split in manifest.splits {
            for shard in split.shards {
                let file = try SafetensorsFile(path: FilePath.join(folder, shard.file))
                guard let keys = try? JSONValue.parse(file.metadata["keys"] ?? "[]").arrayValue?.compactMap(\.stringValue),
                      let row = keys.firstIndex(of: key) else { continue }
                var rows: [[String]] = []
                var object = JSONObject([("key", .string(key)), ("split", .string(split.name)), ("shard", .string(shard.file)), ("row", .int(row))])
                for entry in manifest.schema {
                    let tensor = try file.tensor(entry.name)
                    let per = entry.shape.reduce(1, *)
                    let values = try (0..<per).map { try tensor.double(at: row * per + $0) }
                    let shown = values.prefix(8).map { $0 == $0.rounded() && abs($0) < 1e9 ? String(Int($0)) : fixed($0, 4) }.joined(separator: ", ")
                    let summary = values.count > 8
                        ? "[\(shown), ...] min \(fixed(values.min() ?? 0, 4)) max \(fixed(values.max() ?? 0, 4)) mean \(fixed(values.reduce(0, +) / Double(values.count), 4))"
                        : "[\(shown)]"
                    rows.append([entry.name, entry.dtype.rawValue, shapeText(entry.shape), summary])
                    object[entry.name] = .array(values.map { .double($0) })
                }
                if json {
                    Console.out(JSONValue.object(object).prettySerialized())
                } else {
                    Console.out("\(key): \(split.name), \(shard.file) row \(row)")
                    formatTable(header: ["tensor", "dtype", "shape", "values"], rows: rows).forEach { Console.out("  " + $0) }
                }
                return
            }
        }
        throw TesseraError(path: folder, stage: .read, code: "dataset.no-sample", "no sample with key \"\(key)\"")
    }
}
