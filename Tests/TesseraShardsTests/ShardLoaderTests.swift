import Foundation
import Testing
import TesseraCore
@testable import TesseraShards

@Suite struct ShardLoaderTests {
    static let sizes = [7, 13, 1, 9, 20]

    static func config(batch: Int = 8, shuffle: ShuffleMode = .buffer(16), seed: UInt64 = 42, epochs: Int? = 3) -> LoaderConfig {
        var config = LoaderConfig()
        config.batchSize = batch
        config.shuffle = shuffle
        config.seed = seed
        config.epochs = epochs
        return config
    }

    /// Every batch's labels (= sample indices), with its epoch and the position after it.
    static func drain(_ loader: ShardLoader, from position: LoaderPosition = LoaderPosition()) throws -> [(epoch: Int, labels: [Int32], position: LoaderPosition)] {
        try loader.start(at: position)
        var out: [(Int, [Int32], LoaderPosition)] = []
        while let batch = try loader.next() {
            let labels = Array(UnsafeBufferPointer(start: try #require(batch.int32s("label")), count: batch.count))
            out.append((batch.epoch, labels, batch.position))
        }
        return out
    }

    @Test func everySampleOncePerEpochAndEpochsDiffer() throws {
        let data = try SyntheticDataset(shardSizes: Self.sizes)
        let loader = try ShardLoader(folder: data.folder, config: Self.config())
        let batches = try Self.drain(loader)
        var perEpoch: [[Int32]] = [[], [], []]
        for batch in batches { perEpoch[batch.epoch] += batch.labels }
        for epoch in perEpoch { #expect(epoch.sorted() == (0..<Int32(data.count)).map { $0 }) }
        #expect(perEpoch[0] != perEpoch[1] && perEpoch[1] != perEpoch[2])
        #expect(batches.count == 3 * 7, "50 samples in batches of 8: 6 full and 1 of 2 per epoch")
        #expect(batches.filter { $0.labels.count == 2 }.count == 3)
        #expect(batches.last?.position == LoaderPosition(epoch: 3, sample: 0))
    }

    @Test func sameSeedSameOrderOtherSeedOtherOrder() throws {
        let data = try SyntheticDataset(shardSizes: Self.sizes)
        let a = try Self.drain(try ShardLoader(folder: data.folder, config: Self.config())).flatMap(\.labels)
        let b = try Self.drain(try ShardLoader(folder: data.folder, config: Self.config())).flatMap(\.labels)
        let c = try Self.drain(try ShardLoader(folder: data.folder, config: Self.config(seed: 43))).flatMap(\.labels)
        #expect(a == b)
        #expect(a != c)
    }

    @Test(arguments: [ShuffleMode.buffer(16), .full, .shards, .none])
    func resumingGivesExactlyTheRemainingSequence(_ mode: ShuffleMode) throws {
        let data = try SyntheticDataset(shardSizes: Self.sizes)
        let loader = try ShardLoader(folder: data.folder, config: Self.config(shuffle: mode))
        let full = try Self.drain(loader)
        let flat = full.flatMap(\.labels)
        var delivered = 0
        for (k, batch) in full.enumerated() {
            delivered += batch.labels.count
            // Resume from the position saved after batch k: the rest must be identical.
            let rest = try Self.drain(loader, from: batch.position)
            #expect(rest.flatMap(\.labels) == Array(flat[delivered...]), "\(mode): resume after batch \(k)")
            #expect(rest.map(\.position) == full[(k + 1)...].map(\.position))
        }
        // Also from a position inside a batch (a run whose batch size changed).
        let odd = LoaderPosition(epoch: 1, sample: 5)
        let rest = try Self.drain(loader, from: odd).flatMap(\.labels)
        #expect(rest == Array(flat[(50 + 5)...]))
    }

    @Test func modesShapeTheOrder() throws {
        let data = try SyntheticDataset(shardSizes: Self.sizes)
        let none = try ShardLoader(folder: data.folder, config: Self.config(shuffle: .none))
        #expect(none.order(epoch: 0) == Array(0..<50) && none.order(epoch: 1) == Array(0..<50))
        let shards = try ShardLoader(folder: data.folder, config: Self.config(shuffle: .shards)).order(epoch: 0)
        // Each shard's samples appear together and in their stored order.
        var start = 0
        for size in Self.sizes {
            let members = Array(start..<(start + size))
            guard let first = shards.firstIndex(of: start) else { Issue.record("sample \(start) missing"); continue }
            #expect(Array(shards[first..<(first + size)]) == members)
            start += size
        }
        #expect(shards != Array(0..<50))
        let full = try ShardLoader(folder: data.folder, config: Self.config(shuffle: .full)).order(epoch: 0)
        #expect(full.sorted() == Array(0..<50) && full != Array(0..<50))
    }

    @Test func valuesAreNormalisedWhileCopyingAndAbsentRowsAreZero() throws {
        let data = try SyntheticDataset(shardSizes: Self.sizes)
        var config = Self.config(batch: 16, epochs: 1)
        config.maxOpenShards = 1
        let loader = try ShardLoader(folder: data.folder, config: config)
        #expect(loader.fields.first { $0.name == "image" }?.dtype == .float32)
        #expect(loader.fields.first { $0.name == "text_ids" }?.dtype == .int32)
        try loader.start()
        var seen = 0
        while let batch = try loader.next() {
            let image = try #require(batch.floats("image")), mel = try #require(batch.floats("audio_mel"))
            let ids = try #require(batch.int32s("text_ids")), masks = try #require(batch.bytes("mask_image"))
            for row in 0..<batch.count {
                let i = batch.indices[row]
                #expect(batch.keys[row] == String(format: "s%05d", i))
                #expect(masks[row] == (SyntheticDataset.hasImage(i) ? 1 : 0))
                for c in 0..<3 {
                    for p in 0..<20 {
                        let got = image[row * 60 + c * 20 + p]
                        var want: Float = 0
                        if SyntheticDataset.hasImage(i) {
                            let x = Double(SyntheticDataset.imageByte(sample: i, channel: c, pixel: p))
                            want = Float((x / 255 - SyntheticDataset.imageMean[c]) / SyntheticDataset.imageStd[c])
                        }
                        #expect(abs(got - want) <= 1e-5 * max(1, abs(want)), "sample \(i) image c\(c) p\(p)")
                    }
                }
                for p in 0..<6 {
                    let want: Float = SyntheticDataset.hasAudio(i)
                        ? Float((Double(SyntheticDataset.mel(sample: i, at: p)) - SyntheticDataset.melMean) / SyntheticDataset.melStd) : 0
                    #expect(abs(mel[row * 6 + p] - want) <= 1e-5 * max(1, abs(want)))
                }
                #expect((0..<4).map { ids[row * 4 + $0] } == (0..<4).map { Int32(i + $0) })
                seen += 1
            }
        }
        #expect(seen == data.count)
    }

    @Test func dropLastKeepsBatchesFull() throws {
        let data = try SyntheticDataset(shardSizes: Self.sizes)
        var config = Self.config(batch: 8, epochs: 2)
        config.dropLast = true
        let loader = try ShardLoader(folder: data.folder, config: config)
        let batches = try Self.drain(loader)
        #expect(batches.count == 12 && batches.allSatisfy { $0.labels.count == 8 })
        #expect(loader.batchesPerEpoch == 6)
        #expect(batches[5].position == LoaderPosition(epoch: 1, sample: 0))
        #expect(Set(batches[0..<6].flatMap(\.labels)).count == 48)
    }

    @Test func aFlippedByteIsReportedWithTheShardsName() throws {
        let data = try SyntheticDataset(shardSizes: Self.sizes)
        let path = data.folder + "/train/shard-000003.safetensors"
        var bytes = try #require(FileManager.default.contents(atPath: path))
        bytes[bytes.count - 40] ^= 0x10
        try bytes.write(to: URL(fileURLWithPath: path))
        let loader = try ShardLoader(folder: data.folder, config: Self.config(epochs: 1))
        var caught: TesseraError?
        do { _ = try Self.drain(loader) } catch let error as TesseraError { caught = error }
        #expect(caught?.code == "loader.checksum")
        #expect(caught?.path == path)
        #expect(caught?.description.contains("shard-000003") == true)

        var unchecked = Self.config(epochs: 1)
        unchecked.verifyChecksums = false
        let batches = try Self.drain(try ShardLoader(folder: data.folder, config: unchecked))
        #expect(batches.flatMap(\.labels).count == data.count, "with checksums off the damaged shard is read as it is")
    }

    @Test func missingAndTruncatedShardsAreClearErrors() throws {
        let data = try SyntheticDataset(shardSizes: Self.sizes)
        let truncated = data.folder + "/train/shard-000001.safetensors"
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: truncated))
        try handle.truncate(atOffset: 100)
        try handle.close()
        #expect {
            _ = try ShardLoader(folder: data.folder, config: Self.config())
        } throws: { error in
            (error as? TesseraError)?.code == "loader.shard-size" && (error as? TesseraError)?.path == truncated
        }
        let missing = data.folder + "/train/shard-000004.safetensors"
        try FileManager.default.removeItem(atPath: missing)
        try FileManager.default.removeItem(atPath: truncated)
        #expect {
            _ = try ShardLoader(folder: data.folder, config: Self.config())
        } throws: { error in
            (error as? TesseraError)?.code == "loader.missing-shard" && (error as? TesseraError)?.path == data.folder + "/train/shard-000001.safetensors"
        }
    }

    @Test func badRequestsAreRefusedBeforeAnythingIsAllocated() throws {
        let data = try SyntheticDataset(shardSizes: [3])
        var config = Self.config()
        config.split = "val"
        #expect(throws: TesseraError.self) { _ = try ShardLoader(folder: data.folder, config: config) }
        config = Self.config()
        config.tensors = ["image", "nope"]
        #expect(throws: TesseraError.self) { _ = try ShardLoader(folder: data.folder, config: config) }
        config = Self.config(batch: 1 << 40)
        #expect(throws: TesseraError.self) { _ = try ShardLoader(folder: data.folder, config: config) }
        config = Self.config(batch: 4)
        config.dropLast = true
        #expect(throws: TesseraError.self) { _ = try ShardLoader(folder: data.folder, config: config) }
        let loader = try ShardLoader(folder: data.folder, config: Self.config())
        #expect(throws: TesseraError.self) { try loader.start(at: LoaderPosition(epoch: 0, sample: 4)) }
    }

    /// Hostile manifests: 300 seeded mutations, each replacing one or two values anywhere in a real manifest
    /// with a hostile one (huge, negative, of the wrong type, empty). Loading and reading a batch either works
    /// or throws; before the sizes were checked at load, huge sample counts and negative shapes crashed.
    @Test func mutatedManifestsLoadOrThrowButNeverCrash() throws {
        let data = try SyntheticDataset(shardSizes: [5, 3])
        let path = data.folder + "/manifest.json"
        let original = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        let hostile: [JSONValue] = [.int(0), .int(-1), .int(1 << 62), .int(-(1 << 62)), .int(1 << 31), .double(0.5), .string(""),
                                    .null, .bool(true), .array([]), .object(JSONObject()), .array([.int(1 << 40), .int(1 << 40)])]
        // Every place in the manifest, as a path of object keys and array indices.
        func places(_ value: JSONValue, _ prefix: [JSONPathStep] = []) -> [[JSONPathStep]] {
            var found = prefix.isEmpty ? [] : [prefix]
            if let members = value.objectValue?.members {
                for (key, member) in members { found += places(member, prefix + [.key(key)]) }
            } else if let items = value.arrayValue {
                for (index, item) in items.enumerated() { found += places(item, prefix + [.index(index)]) }
            }
            return found
        }
        let all = places(original)
        var rng = SeededRandom(seed: 20261127)
        for _ in 0..<300 {
            var mutated = original
            for _ in 0..<(1 + rng.nextInt(below: 2)) {
                mutated = replacing(mutated, at: all[rng.nextInt(below: all.count)][...], with: hostile[rng.nextInt(below: hostile.count)])
            }
            try Data(mutated.serialized().utf8).write(to: URL(fileURLWithPath: path))
            var config = Self.config(batch: 2)
            config.verifyChecksums = false
            guard let loader = try? ShardLoader(folder: data.folder, config: config) else { continue }
            defer { loader.stop() }
            guard (try? loader.start()) != nil else { continue }
            _ = try? loader.next()
        }
    }

    @Test func stoppingMidEpochReleasesTheThread() throws {
        let data = try SyntheticDataset(shardSizes: Self.sizes)
        for _ in 0..<20 {
            let loader = try ShardLoader(folder: data.folder, config: Self.config(batch: 2, epochs: nil))
            try loader.start()
            _ = try loader.next()
            loader.stop()
        }
    }
}

/// One step of a path into a JSON value.
enum JSONPathStep { case key(String), index(Int) }

/// `value` with the element at `path` replaced by `replacement`.
func replacing(_ value: JSONValue, at path: ArraySlice<JSONPathStep>, with replacement: JSONValue) -> JSONValue {
    guard let step = path.first else { return replacement }
    switch (step, value) {
    case let (.key(key), .object(object)):
        var copy = object
        if let member = object[key] { copy[key] = replacing(member, at: path.dropFirst(), with: replacement) }
        return .object(copy)
    case let (.index(index), .array(items)) where items.indices.contains(index):
        var copy = items
        copy[index] = replacing(items[index], at: path.dropFirst(), with: replacement)
        return .array(copy)
    default:
        return value
    }
}
