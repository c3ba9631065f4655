import Foundation
import TesseraCore
import TesseraShards
import TesseraTestSupport


/// A dataset whose every value tells which sample it came from: sample i has label i, image bytes
/// (i + c + p) % 251, mel values i + 0.001 p, text ids [i, i+1, ...] and masks from i (every 5th sample has no
/// image, every 7th no audio). Shards hold `shardSizes` samples each.
struct SyntheticDataset {
    let folder: String
    let count: Int
    static let imageShape = [3, 4, 5]
    static let melShape = [2, 3]
    static let imageMean = [0.4, 0.5, 0.6], imageStd = [0.2, 0.25, 0.3]
    static let melMean = 1.5, melStd = 2.0

    static func imageByte(sample i: Int, channel c: Int, pixel p: Int) -> UInt8 { UInt8((i + 3 * c + p) % 251) }
    static func mel(sample i: Int, at p: Int) -> Float { Float(i) + 0.001 * Float(p) }
    static func hasImage(_ i: Int) -> Bool { i % 5 != 4 }
    static func hasAudio(_ i: Int) -> Bool { i % 7 != 6 }

    init(shardSizes: [Int], split: String = "train", label: String = "loader") throws {
        folder = try temporaryFolder(label)
        let schema = [
            TensorSchema(name: "image", dtype: .uint8, shape: Self.imageShape,
                         normalize: Normalization(scale: 1.0 / 255, mean: Self.imageMean, std: Self.imageStd)),
            TensorSchema(name: "audio_mel", dtype: .float32, shape: Self.melShape, normalize: Normalization(mean: [Self.melMean], std: [Self.melStd])),
            TensorSchema(name: "text_ids", dtype: .int32, shape: [4], extra: JSONObject([("pad_id", .int(0))])),
            TensorSchema(name: "text_len", dtype: .int32, shape: []),
            TensorSchema(name: "mask_image", dtype: .uint8, shape: []),
            TensorSchema(name: "mask_audio", dtype: .uint8, shape: []),
            TensorSchema(name: "mask_text", dtype: .uint8, shape: []),
            TensorSchema(name: "label", dtype: .int32, shape: []),
        ]
        var shards: [ShardInfo] = []
        var next = 0
        for (index, size) in shardSizes.enumerated() {
            var batch = ShardBatch(schema: schema, capacity: max(size, 1))
            for _ in 0..<size {
                let i = next
                next += 1
                var tensors: SampleTensors = [:]
                let planes = Self.imageShape[1] * Self.imageShape[2]
                if Self.hasImage(i) {
                    let bytes = (0..<3).flatMap { c in (0..<planes).map { p in Self.imageByte(sample: i, channel: c, pixel: p) } }
                    tensors["image"] = try Tensor(shape: Self.imageShape, scalars: bytes)
                }
                if Self.hasAudio(i) {
                    tensors["audio_mel"] = try Tensor(shape: Self.melShape, scalars: (0..<6).map { Self.mel(sample: i, at: $0) })
                }
                tensors["text_ids"] = try Tensor(shape: [4], scalars: (0..<4).map { Int32(i + $0) })
                tensors["text_len"] = try Tensor(shape: [], scalars: [Int32(4)])
                tensors["mask_image"] = try Tensor(shape: [], scalars: [UInt8(Self.hasImage(i) ? 1 : 0)])
                tensors["mask_audio"] = try Tensor(shape: [], scalars: [UInt8(Self.hasAudio(i) ? 1 : 0)])
                tensors["mask_text"] = try Tensor(shape: [], scalars: [UInt8(1)])
                tensors["label"] = try Tensor(shape: [], scalars: [Int32(i)])
                try batch.append(key: String(format: "s%05d", i), tensors: tensors)
            }
            shards.append(try batch.write(folder: folder, split: split, index: index))
        }
        count = next
        let manifest = DatasetManifest(tool: "test", config: .null, modalities: ["image", "audio", "text"], schema: schema,
                                       splits: [SplitInfo(name: split, shards: shards)], statistics: .null, errors: .null, inputs: .null)
        try DurableFile.write(manifest.serialized(), to: FilePath.join(folder, "manifest.json"))
    }
}
