// The order in which a loader visits a split's samples: a pure function of (seed, epoch), so that any epoch
// can be rebuilt, and a run resumed mid-epoch, without saving anything but the position.
import TesseraCore

/// How samples are shuffled each epoch.
public enum ShuffleMode: Sendable, Equatable, CustomStringConvertible {
    /// Shards and samples in manifest order (evaluation, encoding).
    case none
    /// Shard order shuffled; samples within a shard in order.
    case shards
    /// Shard order shuffled, then samples shuffled through a buffer of this many samples (as tf.data and
    /// WebDataset do): reads stay within a few shards at a time, and the order is well mixed.
    case buffer(Int)
    /// One uniform permutation of the whole split.
    case full

    public var description: String {
        switch self {
        case .none: "none"
        case .shards: "shards"
        case .buffer(let size): "buffer:\(size)"
        case .full: "full"
        }
    }

    /// Parses `none`, `shards`, `full`, `buffer` (default size) or `buffer:N`.
    public init?(_ text: String) {
        switch text {
        case "none": self = .none
        case "shards": self = .shards
        case "full": self = .full
        case "buffer": self = .buffer(ShuffleMode.defaultBuffer)
        default:
            guard text.hasPrefix("buffer:"), let size = Int(text.dropFirst("buffer:".count)), size > 0 else { return nil }
            self = .buffer(size)
        }
    }

    public static let defaultBuffer = 8192
}

public enum EpochOrder {
    /// The sample indices of one epoch, in visiting order. Indices count through the shards in manifest
    /// order (shard 0's rows, then shard 1's, ...). The same (sizes, mode, seed, epoch) always give the same
    /// order; different epochs give different orders.
    public static func indices(shardSizes: [Int], mode: ShuffleMode, seed: UInt64, epoch: Int) -> [Int] {
        var starts: [Int] = []
        starts.reserveCapacity(shardSizes.count)
        var total = 0
        for size in shardSizes {
            starts.append(total)
            total += max(size, 0)
        }
        var rng = SeededRandom(seed: seed, stream: UInt64(truncatingIfNeeded: epoch) &+ 1)
        var shardOrder = Array(shardSizes.indices)
        if mode != .none { rng.shuffle(&shardOrder) }

        var order: [Int] = []
        order.reserveCapacity(total)
        switch mode {
        case .none, .shards:
            for shard in shardOrder { order.append(contentsOf: starts[shard]..<(starts[shard] + max(shardSizes[shard], 0))) }
        case .full:
            order.append(contentsOf: 0..<total)
            rng.shuffle(&order)
        case .buffer(let size):
            let capacity = max(size, 1)
            var buffer: [Int] = []
            buffer.reserveCapacity(min(capacity, total))
            for shard in shardOrder {
                for index in starts[shard]..<(starts[shard] + max(shardSizes[shard], 0)) {
                    if buffer.count < capacity {
                        buffer.append(index)
                        continue
                    }
                    let pick = rng.nextInt(below: capacity)
                    order.append(buffer[pick])
                    buffer[pick] = index
                }
            }
            rng.shuffle(&buffer)
            order.append(contentsOf: buffer)
        }
        return order
    }
}
