// Finding the samples: a recursive walk of folders (files sharing a path minus extension form a sample,
// as in WebDataset) or a CSV/JSONL list of samples.
import Foundation
import TesseraCore

/// One sample's files before decoding, kept small (40 bytes, no allocation of its own for a walked sample
/// with a short key): every planned sample is held for the whole run, so its size is what a larger corpus
/// adds to ingest's peak memory. Paths found by the walk are not stored but rebuilt from the input folder
/// (shared by every sample of that folder), the key and a code for each file's extension; paths given by a
/// manifest are stored as given.
public struct SampleSource: Sendable, Equatable {
    /// The input folder of walked samples and the key prefix that names it when there are several inputs.
    final class Origin: Sendable, Equatable {
        let root: String
        let keyPrefix: String

        init(root: String, keyPrefix: String) {
            self.root = root
            self.keyPrefix = keyPrefix
        }

        static func == (a: Origin, b: Origin) -> Bool { a === b || (a.root == b.root && a.keyPrefix == b.keyPrefix) }
    }

    /// Files named by full path (a manifest's, or a walked file with an extension spelt unusually).
    final class NamedPaths: Sendable, Equatable {
        let paths: [String?]

        init(_ paths: [String?]) { self.paths = paths }

        static func == (a: NamedPaths, b: NamedPaths) -> Bool { a === b || a.paths == b.paths }
    }

    /// The extensions a walk recognises, in lower case; a file's extension is stored as its index + 1 here
    /// (+ `upperCase` when spelt all upper case, as cameras do), 0 for no file.
    static let extensions = ["png", "jpg", "jpeg", "wav", "flac", "ogg", "aif", "aiff", "txt", "ids", "tokens",
                             "oga", "opus", "mp3", "aifc", "au", "caf", "w64", "webp"]
    private static let upperCase: UInt8 = 0x80
    private static let noLabel = Int32.min
    private static let splits = ["train", "val", "test"]

    private let origin: Origin?
    /// The key without its prefix: the path relative to the input folder minus the extension (walk), or the
    /// manifest's key.
    let relative: String
    private var named: NamedPaths?
    private var labelCode: Int32 = SampleSource.noLabel
    private var imageCode: UInt8 = 0, audioCode: UInt8 = 0, textCode: UInt8 = 0
    private var splitCode: UInt8 = 0

    /// A walked sample of `origin`.
    init(origin: Origin, relative: String) {
        self.origin = origin
        self.relative = relative
    }

    /// A manifest's sample: its files are set by full path.
    init(key: String) {
        self.origin = nil
        self.relative = key
    }

    /// The sample's label (from a manifest or the parent folder's name).
    public var label: Int? {
        get { labelCode == SampleSource.noLabel ? nil : Int(labelCode) }
        set { labelCode = newValue.flatMap { Int32(exactly: $0) } ?? SampleSource.noLabel }
    }

    /// A split given by a manifest (train, val or test; wins over the hash split).
    public var split: String? {
        get { splitCode == 0 ? nil : SampleSource.splits[Int(splitCode) - 1] }
        set { splitCode = newValue.flatMap { SampleSource.splits.firstIndex(of: $0) }.map { UInt8($0 + 1) } ?? 0 }
    }

    /// The sample's key: its path relative to the input folder, minus the extension.
    public var key: String {
        guard let prefix = origin?.keyPrefix, !prefix.isEmpty else { return relative }
        return prefix + relative
    }

    private func code(_ modality: Modality) -> UInt8 {
        switch modality {
        case .image: return imageCode
        case .audio: return audioCode
        case .text: return textCode
        }
    }

    /// Whether the sample has a file of `modality`.
    func has(_ modality: Modality) -> Bool { code(modality) != 0 || named?.paths[modality.ordinal] != nil }

    /// Records the sample's file of `modality` found by the walk, spelt `ext` on disk.
    mutating func setExtension(_ modality: Modality, _ ext: String) {
        var code: UInt8 = 0
        if let index = SampleSource.extensions.firstIndex(of: ext) {
            code = UInt8(index + 1)
        } else if let index = SampleSource.extensions.firstIndex(of: ext.lowercased()), ext == ext.uppercased() {
            code = UInt8(index + 1) | SampleSource.upperCase
        }
        guard code != 0, origin != nil else {  // another spelling (".Jpg"): the path itself is kept
            setPath(modality, FilePath.join(origin?.root ?? "", relative + "." + ext))
            return
        }
        switch modality {
        case .image: imageCode = code
        case .audio: audioCode = code
        case .text: textCode = code
        }
    }

    /// Records the sample's file of `modality` by its full path.
    mutating func setPath(_ modality: Modality, _ path: String) {
        var paths = named?.paths ?? [String?](repeating: nil, count: Modality.allCases.count)
        paths[modality.ordinal] = path
        named = NamedPaths(paths)
    }

    /// The path of the sample's file of `modality`, if it has one.
    public func path(_ modality: Modality) -> String? {
        if let path = named?.paths[modality.ordinal] { return path }
        let code = code(modality)
        guard code != 0, let root = origin?.root else { return nil }
        let ext = SampleSource.extensions[Int(code & ~SampleSource.upperCase) - 1]
        return FilePath.join(root, relative + "." + (code & SampleSource.upperCase != 0 ? ext.uppercased() : ext))
    }

    /// The modalities this sample has files for.
    public var modalities: [Modality] { Modality.allCases.filter { has($0) } }
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
    /// Key prefixes for the input folders: none for one folder; else each folder's name, or as many of its
    /// path's last components as tell the folders apart (`a/data/` and `b/data/`, where `data/` twice made
    /// two samples one key).
    static func keyPrefixes(_ inputs: [String]) -> [String] {
        guard inputs.count > 1 else { return inputs.map { _ in "" } }
        let parts = inputs.map { $0.split(separator: "/").map(String.init) }
        let longest = parts.map(\.count).max() ?? 1
        var prefixes: [String] = []
        for depth in 1...max(longest, 1) {
            prefixes = parts.map { $0.suffix(depth).joined(separator: "/") + "/" }
            if Set(prefixes).count == prefixes.count { break }
        }
        return prefixes
    }

    /// Walks `inputs` recursively in sorted order, skipping hidden entries and never entering a folder twice
    /// (symlink loops), nor the `excluding` folders (the ingest's own output, when it lies among the inputs).
    /// With several inputs, keys are prefixed as `keyPrefixes` says.
    public static func walk(_ inputs: [String], labelFromFolder: Bool, excluding: [String] = []) throws -> Discovery {
        var samples: [SampleSource] = []
        var classLabels: [String: String] = [:]
        var errors: [IngestErrorRecord] = []
        var unknown: [String: Int] = [:]
        var files = 0
        var visited = Set<[UInt64]>()
        func identity(_ folder: String) -> [UInt64]? {
            var info = stat()
            return stat(folder, &info) == 0 ? [UInt64(info.st_dev), UInt64(info.st_ino)] : nil
        }
        // An excluded folder that is itself an input is still walked (the caller refuses that case by name).
        let roots = Set(inputs.compactMap(identity))
        for folder in excluding {
            if let id = identity(folder), !roots.contains(id) { visited.insert(id) }
        }
        let keyPrefixes = keyPrefixes(inputs)
        for (input, keyPrefix) in zip(inputs, keyPrefixes) {
            guard FilePath.isDirectory(input) else {
                throw TesseraError(path: input, stage: .open, code: "ingest.not-a-folder", "not a folder")
            }
            let origin = SampleSource.Origin(root: input, keyPrefix: keyPrefix)
            let prefix = origin.keyPrefix
            var stack: [(path: String, relative: String)] = [(input, "")]
            while let (folder, relative) = stack.popLast() {
                var info = stat()
                guard stat(folder, &info) == 0 else { continue }
                guard visited.insert([UInt64(info.st_dev), UInt64(info.st_ino)]).inserted else { continue }
                let entries: [(name: String, isDirectory: Bool, validName: Bool)]
                do { entries = try FilePath.listDirectoryEntries(folder).sorted { $0.name < $1.name } } catch {
                    errors.append(IngestErrorRecord(key: prefix + relative, path: folder, modality: "", stage: "walk",
                                                    code: "ingest.unreadable-folder", message: "cannot list folder: \(error)"))
                    continue
                }
                // Files of one folder are grouped here; the groups go once the folder is done.
                var groups: [String: SampleSource] = [:]
                var classFiles: [String: String] = [:]
                var duplicated = Set<String>()
                var subfolders: [(String, String)] = []
                for (name, isDirectory, validName) in entries where !name.hasPrefix(".") {
                    let path = FilePath.join(folder, name)
                    guard validName else {
                        // Paths are Swift strings: bytes that are not UTF-8 cannot be spelt back to open the file.
                        errors.append(IngestErrorRecord(key: prefix + (relative.isEmpty ? name : relative + "/" + name), path: path, modality: "",
                                                        stage: "walk", code: "ingest.bad-name",
                                                        message: "the name is not valid UTF-8 (shown with U+FFFD for the bad bytes): rename it to read it"))
                        continue
                    }
                    let ext = FilePath.pathExtension(name)
                    let modality = Modality.of(extension: ext)
                    if isDirectory && modality == nil {
                        subfolders.append((path, relative.isEmpty ? name : relative + "/" + name))
                        continue
                    }
                    files += 1
                    // WebDataset's class files (`cat01.cls` holding "3" or "cat") label their sample, unless
                    // --label-from-folder labels by folder.
                    if !isDirectory && !labelFromFolder && ext.lowercased() == "cls" {
                        classFiles[String(name.dropLast(ext.count + 1))] = path
                        continue
                    }
                    guard let modality else {
                        unknown[ext.isEmpty ? "(none)" : "." + ext, default: 0] += 1
                        continue
                    }
                    // A folder named like a media file lands here too: a bad file of its sample.
                    let stem = String(name.dropLast(ext.count + 1))
                    let rel = relative.isEmpty ? stem : relative + "/" + stem
                    let originalExt = String(name.suffix(ext.count))
                    var sample = groups[stem] ?? SampleSource(origin: origin, relative: rel)
                    if sample.has(modality) {
                        let other = sample.path(modality) ?? ""
                        errors.append(IngestErrorRecord(key: sample.key, path: path, modality: modality.rawValue, stage: "group",
                                                        code: "ingest.duplicate-modality",
                                                        message: "two \(modality.rawValue) files for one sample: \(FilePath.split(other).name) and \(name)"))
                        duplicated.insert(stem)
                    } else {
                        sample.setExtension(modality, originalExt)
                    }
                    groups[stem] = sample
                }
                for stem in groups.keys.sorted() {
                    guard var sample = groups[stem], !duplicated.contains(stem) else { continue }
                    if labelFromFolder { sample.label = -1 }
                    if let classFile = classFiles[stem] {
                        do {
                            classLabels[sample.key] = try readClassFile(classFile)
                        } catch {
                            let failure = error.asTesseraError(path: classFile, stage: .parse)
                            errors.append(IngestErrorRecord(key: sample.key, path: classFile, modality: "", stage: "label",
                                                            code: failure.code, message: failure.message))
                            continue
                        }
                    }
                    samples.append(sample)
                }
                stack += subfolders.reversed()
            }
        }
        samples.sort { $0.key < $1.key }
        var labelNames: [String] = []
        if labelFromFolder {
            let ids: [String: Int]
            (labelNames, ids) = numbered(samples.map { labelName(of: $0.key) })
            for i in samples.indices { samples[i].label = ids[labelName(of: samples[i].key)] }
        } else if !classLabels.isEmpty {
            // Ids when every class file holds an integer, else names numbered in sorted order (as a manifest's).
            let named = classLabels.values.contains { labelID($0) == nil }
            let ids: [String: Int]
            (labelNames, ids) = named ? numbered(classLabels.values) : ([], [:])
            for i in samples.indices {
                guard let text = classLabels[samples[i].key] else { samples[i].label = -1; continue }
                samples[i].label = named ? ids[text] : labelID(text)
            }
        }
        return Discovery(samples: samples, errors: errors, unknownExtensions: unknown, filesSeen: files, labelNames: labelNames)
    }

    /// The label a `.cls` file holds: its text without surrounding whitespace, at most 1 kB, UTF-8; an integer
    /// must be a non-negative id within Int32.
    static func readClassFile(_ path: String) throws -> String {
        let bytes = try FilePath.readAll(path, limit: 1024)
        guard let text = String(validating: bytes, as: UTF8.self)?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else {
            throw TesseraError(path: path, stage: .parse, code: "ingest.bad-label", "a .cls file must hold a class id or name in UTF-8 text")
        }
        if let id = labelID(text), id < 0 || id > Int(Int32.max) {
            throw TesseraError(path: path, stage: .parse, code: "ingest.bad-label", "class id \(text) is not a non-negative 32-bit integer")
        }
        return text
    }

    /// Class names, distinct and sorted, and the id of each (its place in that order).
    static func numbered(_ names: some Sequence<String>) -> (names: [String], ids: [String: Int]) {
        let sorted = Array(Set(names)).sorted()
        return (sorted, Dictionary(uniqueKeysWithValues: sorted.enumerated().map { ($1, $0) }))
    }

    /// The parent folder of a key ("cats/cat01" -> "cats"; top-level keys have label "").
    static func labelName(of key: String) -> String {
        let parts = key.split(separator: "/")
        return parts.count >= 2 ? String(parts[parts.count - 2]) : ""
    }

    /// A label written as an integer: "3", or "3.0" as pandas writes an integer column that has gaps.
    static func labelID(_ text: String) -> Int? {
        if let value = Int(text) { return value }
        guard let value = Double(text), value.isFinite, value == value.rounded(), abs(value) <= Double(Int32.max) else { return nil }
        return Int(value)
    }

    /// Reads a CSV (header row: key, image, audio, text, split, label; any subset but key) or JSONL
    /// (objects with those fields) list of samples. Relative paths resolve against the list's folder; a path
    /// outside it is refused unless `allowOutside`.
    public static func read(manifest path: String, allowOutside: Bool, labelFromFolder: Bool) throws -> Discovery {
        let bytes = try FilePath.readAll(path, limit: 1 << 30)
        // Spreadsheets write "CSV UTF-8" with a byte-order mark, which would otherwise stick to the first column's name.
        let body = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(bytes.dropFirst(3)) : bytes
        guard let text = String(validating: body, as: UTF8.self) else {
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
            guard let firstRow = table.first else { return Discovery(samples: [], errors: [], unknownExtensions: [:], filesSeen: 0, labelNames: []) }
            // Column names are matched without regard to case ("Key", "IMAGE").
            let header = firstRow.map { $0.lowercased() }
            let known = ["key", "image", "audio", "text", "split", "label"]
            guard header.contains("key"), header.contains(where: { Modality(rawValue: $0) != nil }) else {
                throw TesseraError(path: path, stage: .parse, code: "ingest.bad-manifest",
                                   "the header row needs a key column and at least one of image, audio, text (it has: \(firstRow.joined(separator: ", ")); "
                                   + "columns are \(known.joined(separator: ", ")))")
            }
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
        // Labels are ids (non-negative integers), or class names when any of them is not an integer: then
        // every label is a name, numbered in sorted order and listed in the schema (as --label-from-folder does).
        let given = rows.compactMap { row in row["label"].flatMap { $0.isEmpty ? nil : $0 } }
        let namedLabels = given.contains { Self.labelID($0) == nil }
        var (labelNames, labelIDs) = namedLabels ? numbered(given) : ([], [:])
        for (n, row) in rows.enumerated() {
            guard let key = row["key"], !key.isEmpty else {
                throw TesseraError(path: path, stage: .parse, code: "ingest.bad-manifest", "row \(n + 1) has no key")
            }
            guard seen.insert(key).inserted else {
                throw TesseraError(path: path, stage: .parse, code: "ingest.bad-manifest", "key \(key) appears twice")
            }
            var sample = SampleSource(key: key)
            if let split = row["split"], !split.isEmpty {
                guard ["train", "val", "test"].contains(split) else {
                    throw TesseraError(path: path, stage: .parse, code: "ingest.bad-manifest", "key \(key): split must be train, val or test, not \(split)")
                }
                sample.split = split
            }
            if let label = row["label"], !label.isEmpty {
                if namedLabels {
                    sample.label = labelIDs[label]
                } else {
                    guard let value = Self.labelID(label), value >= 0, value <= Int(Int32.max) else {
                        throw TesseraError(path: path, stage: .parse, code: "ingest.bad-manifest",
                                           "key \(key): label \(label) is not a non-negative integer (an id), nor are the labels class names")
                    }
                    sample.label = value
                }
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
                sample.setPath(modality, resolved)
            }
            if !refused { samples.append(sample) }
        }
        if labelFromFolder {
            func folderName(_ s: SampleSource) -> String? {
                s.modalities.compactMap { s.path($0) }.sorted().first.map { FilePath.split(FilePath.split($0).folder).name }
            }
            let ids: [String: Int]
            (labelNames, ids) = numbered(samples.compactMap(folderName))
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
