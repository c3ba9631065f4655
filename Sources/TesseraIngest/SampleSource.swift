// Finding the samples: a recursive walk of folders (files sharing a path minus extension form a sample,
// as in WebDataset) or a CSV/JSONL list of samples.
import Foundation
import TesseraCore

/// One sample's files before decoding, kept small: a corpus of 20,000 samples must not grow ingest's
/// memory, so paths found by the walk are not stored but rebuilt from the input folder (a string shared by
/// every sample of that folder), the key and each file's extension.
public struct SampleSource: Sendable, Equatable {
    /// Where one file is: an extension next to the key, or a path given by a manifest.
    enum FileRef: Sendable, Equatable {
        case ext(String)
        case path(String)
    }

    /// The input folder (shared storage), and the key prefix that names it when there are several inputs.
    var root: String
    var keyPrefix: String
    /// The key without its prefix: the path relative to the input folder, minus the extension.
    var relative: String
    var image: FileRef?
    var audio: FileRef?
    var text: FileRef?
    public var label: Int?
    /// A split given by a manifest (wins over the hash split).
    public var split: String?

    init(root: String, keyPrefix: String, relative: String, label: Int? = nil, split: String? = nil) {
        self.root = root
        self.keyPrefix = keyPrefix
        self.relative = relative
        self.label = label
        self.split = split
    }

    /// The sample's key: its path relative to the input folder, minus the extension.
    public var key: String { keyPrefix.isEmpty ? relative : keyPrefix + relative }

    func ref(_ modality: Modality) -> FileRef? {
        switch modality {
        case .image: return image
        case .audio: return audio
        case .text: return text
        }
    }

    mutating func set(_ modality: Modality, _ ref: FileRef) {
        switch modality {
        case .image: image = ref
        case .audio: audio = ref
        case .text: text = ref
        }
    }

    /// The path of the sample's file of `modality`, if it has one.
    public func path(_ modality: Modality) -> String? {
        switch ref(modality) {
        case .ext(let ext)?: return FilePath.join(root, relative + "." + ext)
        case .path(let path)?: return path
        case nil: return nil
        }
    }

    /// The modalities this sample has files for.
    public var modalities: [Modality] { Modality.allCases.filter { ref($0) != nil } }
}

/// One failed file (or sample), as a line of errors.jsonl.
public struct IngestErrorRecord: Sendable, Equatable {
    public var key: String
    public var path: String
    public var modality: String
    public var stage: String
    public var code: String
    public var message: String

    public init(key: String, path: String, modality: String, stage: String, code: String, message: String) {
        self.key = key
        self.path = path
        self.modality = modality
        self.stage = stage
        self.code = code
        self.message = message
    }

    public var json: JSONValue {
        .object(JSONObject([("key", .string(key)), ("path", .string(path)), ("modality", .string(modality)),
                            ("stage", .string(stage)), ("code", .string(code)), ("message", .string(message))]))
    }

    public init?(json: JSONValue) {
        guard let key = json["key"]?.stringValue else { return nil }
        self.init(key: key, path: json["path"]?.stringValue ?? "", modality: json["modality"]?.stringValue ?? "",
                  stage: json["stage"]?.stringValue ?? "", code: json["code"]?.stringValue ?? "", message: json["message"]?.stringValue ?? "")
    }
}

/// What the walk found.
public struct Discovery: Sendable {
    public var samples: [SampleSource]
    /// Samples that cannot be ingested as found (two files of one modality, folders named like files).
    public var errors: [IngestErrorRecord]
    /// Files with extensions no modality claims, by extension.
    public var unknownExtensions: [String: Int]
    public var filesSeen: Int
    /// Label names by id (from --label-from-folder).
    public var labelNames: [String]
}

public enum SampleDiscovery {
    /// Walks `inputs` recursively in sorted order, skipping hidden entries and never entering a folder twice
    /// (symlink loops). With several inputs, keys are prefixed with the input folder's name.
    public static func walk(_ inputs: [String], labelFromFolder: Bool) throws -> Discovery {
        var samples: [SampleSource] = []
        var errors: [IngestErrorRecord] = []
        var unknown: [String: Int] = [:]
        var files = 0
        var visited = Set<[UInt64]>()
        for input in inputs {
            guard FilePath.isDirectory(input) else {
                throw TesseraError(path: input, stage: .open, code: "ingest.not-a-folder", "not a folder")
            }
            let prefix = inputs.count > 1 ? FilePath.split(input).name + "/" : ""
            var stack: [(path: String, relative: String)] = [(input, "")]
            while let (folder, relative) = stack.popLast() {
                var info = stat()
                guard stat(folder, &info) == 0 else { continue }
                guard visited.insert([UInt64(info.st_dev), UInt64(info.st_ino)]).inserted else { continue }
                let entries: [(name: String, isDirectory: Bool)]
                do { entries = try FilePath.listDirectoryEntries(folder).sorted { $0.name < $1.name } } catch {
                    errors.append(IngestErrorRecord(key: prefix + relative, path: folder, modality: "", stage: "walk",
                                                    code: "ingest.unreadable-folder", message: "cannot list folder: \(error)"))
                    continue
                }
                // Files of one folder are grouped here; the groups go once the folder is done.
                var groups: [String: SampleSource] = [:]
                var duplicated = Set<String>()
                var subfolders: [(String, String)] = []
                for (name, isDirectory) in entries where !name.hasPrefix(".") {
                    let path = FilePath.join(folder, name)
                    let ext = FilePath.pathExtension(name)
                    let modality = Modality.of(extension: ext)
                    if isDirectory && modality == nil {
                        subfolders.append((path, relative.isEmpty ? name : relative + "/" + name))
                        continue
                    }
                    files += 1
                    guard let modality else {
                        unknown[ext.isEmpty ? "(none)" : "." + ext, default: 0] += 1
                        continue
                    }
                    // A folder named like a media file lands here too: a bad file of its sample.
                    let stem = String(name.dropLast(ext.count + 1))
                    let rel = relative.isEmpty ? stem : relative + "/" + stem
                    let originalExt = String(name.suffix(ext.count))
                    var sample = groups[stem] ?? SampleSource(root: input, keyPrefix: prefix, relative: rel)
                    if sample.ref(modality) != nil {
                        let other = sample.path(modality) ?? ""
                        errors.append(IngestErrorRecord(key: sample.key, path: path, modality: modality.rawValue, stage: "group",
                                                        code: "ingest.duplicate-modality",
                                                        message: "two \(modality.rawValue) files for one sample: \(FilePath.split(other).name) and \(name)"))
                        duplicated.insert(stem)
                    } else {
                        sample.set(modality, .ext(originalExt))
                    }
                    groups[stem] = sample
                }
                for stem in groups.keys.sorted() {
                    guard var sample = groups[stem], !duplicated.contains(stem) else { continue }
                    if labelFromFolder { sample.label = -1 }
                    samples.append(sample)
                }
                stack += subfolders.reversed()
            }
        }
        samples.sort { $0.key < $1.key }
        var labelNames: [String] = []
        if labelFromFolder {
            labelNames = Array(Set(samples.map { labelName(of: $0.key) })).sorted()
            let ids = Dictionary(uniqueKeysWithValues: labelNames.enumerated().map { ($1, $0) })
            for i in samples.indices { samples[i].label = ids[labelName(of: samples[i].key)] }
        }
        return Discovery(samples: samples, errors: errors, unknownExtensions: unknown, filesSeen: files, labelNames: labelNames)
    }

    /// The parent folder of a key ("cats/cat01" -> "cats"; top-level keys have label "").
    static func labelName(of key: String) -> String {
        let parts = key.split(separator: "/")
        return parts.count >= 2 ? String(parts[parts.count - 2]) : ""
    }

    /// Reads a CSV (header row: key, image, audio, text, split, label; any subset but key) or JSONL
    /// (objects with those fields) list of samples. Relative paths resolve against the list's folder; a path
    /// outside it is refused unless `allowOutside`.
    public static func read(manifest path: String, allowOutside: Bool, labelFromFolder: Bool) throws -> Discovery {
        let bytes = try FilePath.readAll(path, limit: 1 << 30)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw TesseraError(path: path, stage: .parse, code: "ingest.bad-manifest", "not UTF-8 text")
        }
        let folder = FilePath.split(path).folder
        let root = URL(fileURLWithPath: folder).standardizedFileURL.path
        var rows: [[String: String]] = []
        if FilePath.pathExtension(path) == "jsonl" {
            for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                guard let object = (try? JSONValue.parse(String(line)))?.objectValue else {
                    throw TesseraError(path: path, stage: .parse, code: "ingest.bad-manifest", "line \(n + 1) is not a JSON object")
                }
                var row: [String: String] = [:]
                for (key, value) in object.members {
                    switch value {
                    case .string(let s): row[key] = s
                    case .number(let s): row[key] = s
                    case .null: break
                    default: throw TesseraError(path: path, stage: .parse, code: "ingest.bad-manifest", "line \(n + 1): \(key) must be a string or number")
                    }
                }
                rows.append(row)
            }
        } else {
            let table = try CSV.parse(text, path: path)
            guard let header = table.first else { return Discovery(samples: [], errors: [], unknownExtensions: [:], filesSeen: 0, labelNames: []) }
            for (n, values) in table.dropFirst().enumerated() where !(values.count == 1 && values[0].isEmpty) {
                guard values.count == header.count else {
                    throw TesseraError(path: path, stage: .parse, code: "ingest.bad-manifest", "row \(n + 2) has \(values.count) fields, the header \(header.count)")
                }
                rows.append(Dictionary(zip(header, values), uniquingKeysWith: { a, _ in a }))
            }
        }
        var samples: [SampleSource] = []
        var errors: [IngestErrorRecord] = []
        var seen = Set<String>()
        var files = 0
        for (n, row) in rows.enumerated() {
            guard let key = row["key"], !key.isEmpty else {
                throw TesseraError(path: path, stage: .parse, code: "ingest.bad-manifest", "row \(n + 1) has no key")
            }
            guard seen.insert(key).inserted else {
                throw TesseraError(path: path, stage: .parse, code: "ingest.bad-manifest", "key \(key) appears twice")
            }
            var sample = SampleSource(root: "", keyPrefix: "", relative: key)
            if let split = row["split"], !split.isEmpty {
                guard ["train", "val", "test"].contains(split) else {
                    throw TesseraError(path: path, stage: .parse, code: "ingest.bad-manifest", "key \(key): split must be train, val or test, not \(split)")
                }
                sample.split = split
            }
            if let label = row["label"], !label.isEmpty {
                guard let value = Int(label), value >= 0, value <= Int(Int32.max) else {
                    throw TesseraError(path: path, stage: .parse, code: "ingest.bad-manifest", "key \(key): label \(label) is not a non-negative integer")
                }
                sample.label = value
            }
            var refused = false
            for modality in Modality.allCases {
                guard let given = row[modality.rawValue], !given.isEmpty else { continue }
                files += 1
                let resolved = URL(fileURLWithPath: given, relativeTo: URL(fileURLWithPath: folder + "/")).standardizedFileURL.path
                if !allowOutside && !(resolved == root || resolved.hasPrefix(root.hasSuffix("/") ? root : root + "/")) {
                    errors.append(IngestErrorRecord(key: key, path: given, modality: modality.rawValue, stage: "manifest", code: "ingest.outside-path",
                                                    message: "path leaves the manifest's folder (--allow-outside-paths to permit)"))
                    refused = true
                    continue
                }
                sample.set(modality, .path(resolved))
            }
            if !refused { samples.append(sample) }
        }
        var labelNames: [String] = []
        if labelFromFolder {
            func folderName(_ s: SampleSource) -> String? {
                s.modalities.compactMap { s.path($0) }.sorted().first.map { FilePath.split(FilePath.split($0).folder).name }
            }
            labelNames = Array(Set(samples.compactMap(folderName))).sorted()
            let ids = Dictionary(uniqueKeysWithValues: labelNames.enumerated().map { ($1, $0) })
            for i in samples.indices { samples[i].label = folderName(samples[i]).flatMap { ids[$0] } }
        }
        return Discovery(samples: samples, errors: errors, unknownExtensions: [:], filesSeen: files, labelNames: labelNames)
    }
}

/// RFC 4180 CSV: commas, double-quoted fields with doubled quotes, CRLF or LF line ends.
enum CSV {
    static func parse(_ text: String, path: String) throws -> [[String]] {
        var rows: [[String]] = []
        var row: [String] = []
        var field = ""
        var quoted = false
        var iterator = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = iterator.next()
        while let c = pending {
            pending = iterator.next()
            if quoted {
                if c == "\"" {
                    if pending == "\"" { field.unicodeScalars.append("\""); pending = iterator.next() } else { quoted = false }
                } else {
                    field.unicodeScalars.append(c)
                }
                continue
            }
            switch c {
            case "\"" where field.isEmpty: quoted = true
            case ",": row.append(field); field = ""
            case "\r": continue
            case "\n": row.append(field); rows.append(row); row = []; field = ""
            default: field.unicodeScalars.append(c)
            }
        }
        if quoted { throw TesseraError(path: path, stage: .parse, code: "ingest.bad-manifest", "unterminated quoted field") }
        if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
        return rows.map { $0.map { $0.trimmingCharacters(in: .whitespaces) } }
    }
}
