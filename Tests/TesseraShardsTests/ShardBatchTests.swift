import Testing
import TesseraCore
import TesseraShards
import TesseraTestSupport

/// One batch reused shard after shard (as ingest does) writes each shard from its own samples alone.
@Suite struct ShardBatchTests {
    @Test func aReusedBatchZeroesWhatASampleLacks() throws {
        let folder = try temporaryFolder("batch")
        let schema = [TensorSchema(name: "image", dtype: .uint8, shape: [2, 2]), TensorSchema(name: "mask_image", dtype: .uint8, shape: [])]
        func sample(_ value: UInt8?) throws -> SampleTensors {
            guard let value else { return ["mask_image": try Tensor(shape: [], scalars: [UInt8(0)])] }
            return ["image": try Tensor(shape: [2, 2], scalars: [UInt8](repeating: value, count: 4)),
                    "mask_image": try Tensor(shape: [], scalars: [UInt8(1)])]
        }
        var batch = ShardBatch(schema: schema, capacity: 2)
        // Shard 0 fills both slots; shard 1 has a sample without an image in slot 1; shard 2 is partial.
        let shards: [[UInt8?]] = [[7, 9], [11, nil], [nil]]
        for (index, values) in shards.enumerated() {
            for (k, value) in values.enumerated() { try batch.append(key: "s\(index)-\(k)", tensors: try sample(value)) }
            let info = try batch.write(folder: folder, split: "train", index: index)
            #expect(info.samples == values.count)
            batch.reset()
            let file = try SafetensorsFile(path: folder + "/" + info.file)
            let image = try file.tensor("image"), mask = try file.tensor("mask_image")
            #expect(image.shape == [values.count, 2, 2])
            let expected = values.flatMap { [UInt8](repeating: $0 ?? 0, count: 4) }
            #expect(try image.withScalars(UInt8.self) { Array($0) } == expected, "shard \(index)")
            #expect(try mask.withScalars(UInt8.self) { Array($0) } == values.map { $0 == nil ? 0 : 1 }, "shard \(index)")
        }
    }
}
