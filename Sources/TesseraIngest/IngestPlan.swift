// Which split each sample goes to and in what order: a stable hash of the key decides the split (so
// adding files later never moves a sample), a seeded shuffle the order inside each split.
import TesseraCore

struct SplitPlan: Sendable {
    var name: String
    var samples: [SampleSource]
}

enum IngestPlanner {
    static let splitNames = ["train", "val", "test"]

    /// A number in [0, 1) from the key alone.
    static func unit(_ key: String) -> Double {
        let bits = SHA256Digest.leadingWord(of: key)
        return Double(bits >> 11) * 0x1p-53
    }

    static func plan(_ samples: [SampleSource], config: IngestConfig) -> [SplitPlan] {
        var buckets: [String: [SampleSource]] = [:]
        for sample in samples {
            let split: String
            if let given = sample.split {
                split = given
            } else {
                let u = unit(sample.key)
                split = u < config.testFraction ? "test" : (u < config.testFraction + config.valFraction ? "val" : "train")
            }
            buckets[split, default: []].append(sample)
        }
        return splitNames.enumerated().compactMap { index, name in
            guard var list = buckets[name], !list.isEmpty else { return nil }
            list.sort { $0.key < $1.key }
            var rng = SeededRandom(seed: config.seed, stream: UInt64(index + 1))
            rng.shuffle(&list)
            return SplitPlan(name: name, samples: list)
        }
    }

    /// A digest of everything that decides the output: the configuration and the planned samples.
    static func digest(config: JSONValue, plans: [SplitPlan], walkErrors: [IngestErrorRecord]) -> String {
        var hasher = SHA256Digest()
        hasher.update(Array(config.serialized().utf8))
        for plan in plans {
            hasher.update(Array("\n#\(plan.name)".utf8))
            for s in plan.samples {
                let files = s.modalities.map { "\($0.rawValue)=\(s.path($0) ?? "")" }.joined(separator: "|")
                hasher.update(Array("\n\(s.key)\t\(files)\t\(s.label.map(String.init) ?? "")".utf8))
            }
        }
        for e in walkErrors { hasher.update(Array(e.json.serialized().utf8)) }
        return hasher.hexDigest()
    }
}
