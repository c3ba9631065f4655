// `tessera inspect`: what a safetensors file holds, as a table or JSON.
import ArgumentParser
import TesseraCore
import TesseraShards

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a safetensors file's tensors and metadata, or a dataset's splits, schema, statistics and errors."
    )

    @Argument(help: "A .safetensors file, or a dataset folder written by tessera ingest.")
    var path: String

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    @Option(name: .long, help: "With a dataset: print the tensors of the sample with this key.")
    var sample: String?

    func run() throws {
        try reportingErrors {
            if FilePath.isDirectory(path) {
                try DatasetReport.run(folder: path, json: json, sample: sample)
                return
            }
            let file = try SafetensorsFile(path: path)
            if json {
                Console.out(SafetensorsReport.json(file).prettySerialized())
            } else {
                SafetensorsReport.table(file).forEach(Console.out)
            }
        }
    }
}

/// The description of one safetensors file, shared by `inspect` and `verify`.
enum SafetensorsReport {
    static func json(_ file: SafetensorsFile) -> JSONValue {
        let tensors: [JSONValue] = file.entries.map { entry in
            .object(JSONObject([
                ("name", .string(entry.name)),
                ("dtype", .string(entry.dtype.rawValue)),
                ("shape", .array(entry.shape.map { .int($0) })),
                ("bytes", .int(entry.byteCount)),
                ("data_offsets", .array([.int(entry.dataRange.lowerBound), .int(entry.dataRange.upperBound)])),
            ]))
        }
        let metadata = JSONObject(file.metadata.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })
        return .object(JSONObject([
            ("path", .string(file.path)),
            ("file_bytes", .int(file.fileByteCount)),
            ("header_bytes", .int(file.headerByteCount)),
            ("tensors", .array(tensors)),
            ("metadata", .object(metadata)),
        ]))
    }

    static func table(_ file: SafetensorsFile) -> [String] {
        var lines = ["\(file.path): \(file.entries.count) tensors, \(groupedDigits(file.fileByteCount)) bytes (header \(groupedDigits(file.headerByteCount)))"]
        let rows = file.entries.map { entry in
            [entry.name, entry.dtype.rawValue, "[" + entry.shape.map(String.init).joined(separator: ", ") + "]", groupedDigits(entry.byteCount)]
        }
        lines += formatTable(header: ["name", "dtype", "shape", "bytes"], rows: rows, rightAligned: [3])
        if !file.metadata.isEmpty {
            lines.append("metadata:")
            for (key, value) in file.metadata.sorted(by: { $0.key < $1.key }) {
                let shown = value.count > 120 ? String(value.prefix(117)) + "..." : value
                lines.append("  \(key): \(shown)")
            }
        }
        return lines
    }
}
