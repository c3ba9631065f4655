// `tessera verify`: every shard against the manifest (size, SHA-256, header, tensors, shapes, counts,
// finite values), each problem named.
import TesseraCore

/// One thing wrong with a dataset.
public struct DatasetProblem: Sendable, CustomStringConvertible {
    public var file: String
    public var problem: String
    public var description: String { "\(file): \(problem)" }
}

public enum DatasetVerifier {
    /// Checks the dataset in `folder`; returns the problems (empty when everything holds) and the number of
    /// shards checked. Throws only when the manifest itself cannot be read.
    public static func verify(folder: String, progress: (String) -> Void = { _ in }) throws -> (problems: [DatasetProblem], shards: Int) {
        let manifest = try DatasetManifest.load(folder: folder)
        var problems: [DatasetProblem] = []
        var checked = 0
        for split in manifest.splits {
            for shard in split.shards {
                checked += 1
                progress(shard.file)
                problems += verify(shard: shard, in: folder, manifest: manifest)
            }
        }
        return (problems, checked)
    }

    static func verify(shard: ShardInfo, in folder: String, manifest: DatasetManifest) -> [DatasetProblem] {
        let path = FilePath.join(folder, shard.file)
        func problem(_ text: String) -> DatasetProblem { DatasetProblem(file: path, problem: text) }
        guard let size = SystemCall.fileSize(path) else { return [problem("missing")] }
        var problems: [DatasetProblem] = []
        if size != shard.bytes { problems.append(problem("size \(size) bytes, the manifest says \(shard.bytes)")) }
        let mapping: MappedFile
        do { mapping = try MappedFile(path: path) } catch { return problems + [problem("cannot be read: \(error)")] }
        let digest = SHA256Digest.hex(mapping.bytes)
        if digest != shard.sha256 { problems.append(problem("SHA-256 \(digest) differs from the manifest's \(shard.sha256) (corrupted or changed)")) }
        let file: SafetensorsFile
        do { file = try SafetensorsFile(mapping: mapping) } catch let error as TesseraError {
            return problems + [problem("not a valid safetensors file: \(error.message)")]
        } catch {
            return problems + [problem("not a valid safetensors file: \(error)")]
        }
        for entry in manifest.schema {
            guard let tensorEntry = file.entry(entry.name) else {
                problems.append(problem("tensor \(entry.name) is missing"))
                continue
            }
            let expected = [shard.samples] + entry.shape
            if tensorEntry.dtype != entry.dtype || tensorEntry.shape != expected {
                problems.append(problem("tensor \(entry.name) is \(tensorEntry.dtype.rawValue) \(tensorEntry.shape), expected \(entry.dtype.rawValue) \(expected)"))
                continue
            }
            if entry.dtype == .float32 {
                let tensor = file.tensor(for: tensorEntry)
                let bad = (try? tensor.withScalars(Float.self) { values in values.firstIndex { !$0.isFinite } }) ?? nil
                if let bad { problems.append(problem("tensor \(entry.name) holds a non-finite value at flat index \(bad)")) }
            }
        }
        let extra = Set(file.names).subtracting(manifest.schema.map(\.name))
        if !extra.isEmpty { problems.append(problem("tensors not in the schema: \(extra.sorted().joined(separator: ", "))")) }
        if let keysText = file.metadata["keys"] {
            let count = (try? JSONValue.parse(keysText).arrayValue?.count) ?? nil
            if count != shard.samples { problems.append(problem("metadata lists \(count.map(String.init) ?? "unreadable") keys for \(shard.samples) samples")) }
        } else {
            problems.append(problem("metadata has no sample keys"))
        }
        return problems
    }
}
