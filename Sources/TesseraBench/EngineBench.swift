// `tessera bench engine`: each W2 layer's forward and backward throughput beside plain sgemm at exactly the
// layer's GEMM shapes (the physical limit of a layer bound by matrix products), and the shard loader's
// throughput beside memcpy bandwidth, all in one run.
import Foundation
import TesseraBLAS
import TesseraCore
import TesseraEngine
import TesseraShards

public struct EngineBench {
    public var threads = 2
    public var batch = 64
    /// Minimum seconds per timing.
    public var minSeconds = 0.5
    /// A Tessera dataset for the loader (nil: a W1-shaped synthetic dataset in a temporary folder).
    public var dataset: String?
    /// Seconds of loader batches timed (after a warm-up epoch).
    public var loaderSeconds = 2.0
    /// Only the layers whose name contains this (nil: all); the totals then cover those layers only.
    public var only: String?

    public init() {}

    /// One W2 layer, ready to run on random data.
    struct Row {
        let name: String
        let forward: () -> Void
        let backward: () -> Void
        let forwardGemms: [GemmShape]
        let backwardGemms: [GemmShape]
    }

    /// Seconds per call of `body`: the best of several timed rounds after a warm-up call.
    static func secondsPerCall(minSeconds: Double, _ body: () -> Void) -> Double {
        body()
        var best = Double.infinity, total = 0.0, rounds = 0
        while (total < minSeconds || rounds < 3) && rounds < 50 {
            let start = monotonicSeconds()
            body()
            let t = monotonicSeconds() - start
            best = min(best, t)
            total += t
            rounds += 1
        }
        return best
    }

    /// Plain sgemm on the given shapes (random operands, beta 0) on `threads` OpenBLAS threads, seconds for
    /// the whole list. OpenBLAS goes back to one thread after, as the engine runs it.
    static func sgemmSeconds(_ shapes: [GemmShape], threads: Int, minSeconds: Double) -> Double {
        guard !shapes.isEmpty else { return 0 }
        BLAS.setThreads(threads)
        defer { BLAS.setThreads(1) }
        var rng = SeededRandom(seed: 1)
        let operands = shapes.map { shape -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) in
            func buffer(_ count: Int) -> UnsafeMutablePointer<Float> {
                let p = UnsafeMutablePointer<Float>.allocate(capacity: count)
                for i in 0..<count { p[i] = rng.nextUnitFloat() - 0.5 }
                return p
            }
            let sizes = shape.sizes
            return (buffer(sizes.a), buffer(sizes.b), buffer(sizes.c))
        }
        defer { operands.forEach { $0.0.deallocate(); $0.1.deallocate(); $0.2.deallocate() } }
        return secondsPerCall(minSeconds: minSeconds) {
            for (shape, (a, b, c)) in zip(shapes, operands) {
                BLAS.sgemm(transA: shape.transA, transB: shape.transB, m: shape.m, n: shape.n, k: shape.k, alpha: 1, a: a, lda: shape.lda,
                           b: b, ldb: shape.ldb, beta: 0, c: c, ldc: shape.n)
            }
        }
    }

    /// Random float buffers that live as long as the bench.
    final class Buffers {
        var all: [UnsafeMutablePointer<Float>] = []
        var rng = SeededRandom(seed: 7)
        func make(_ count: Int, scale: Float = 1) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            for i in 0..<count { p[i] = (rng.nextUnitFloat() * 2 - 1) * scale }
            all.append(p)
            return p
        }
        deinit { all.forEach { $0.deallocate() } }
    }

    /// The layers of W2 (../shared/bench/WORKLOAD.md) with their activations, at batch `b`.
    func w2Rows(_ params: ParameterSet<Float>, _ buffers: Buffers, _ arena: Arena<Float>) -> (rows: [Row], finish: () -> Void) {
        let b = batch
        var rows: [Row] = []
        var setups: [() -> Void] = []
        func linear(_ name: String, _ inF: Int, _ outF: Int, rows count: Int? = nil, _ activation: Activation, inputGradient: Bool = true) {
            let layer = Linear(params, name, in: inF, out: outF)
            let n = count ?? b
            let x = buffers.make(n * inF), y = buffers.make(n * outF), dy = buffers.make(n * outF), dx = buffers.make(n * inF)
            rows.append(Row(name: "\(name) Linear(\(inF)->\(outF))\(activation == .identity ? "" : "+" + activation.rawValue)\(count.map { " x\($0 / b) positions" } ?? "")",
                            forward: {
                                layer.forward(x, y, batch: n, params)
                                activation.forward(y, y, count: n * outF)
                            },
                            backward: {
                                activation.backward(output: y, dy, dy, count: n * outF)
                                layer.backward(x, dy, inputGradient ? dx : nil, batch: n, params)
                            },
                            forwardGemms: layer.forwardGemms(batch: n), backwardGemms: layer.backwardGemms(batch: n, inputGradient: inputGradient)))
        }
        func convolution<Layer: ConvolutionLayer>(_ layer: Layer, _ label: String, inputCount: Int, _ activation: Activation,
                                                  inputGradient: Bool = true) where Layer.Scalar == Float {
            let outputs = layer.outputCount(batch: b)
            let x = buffers.make(inputCount), y = buffers.make(outputs), dy = buffers.make(outputs), dx = buffers.make(inputCount)
            let work = arena.reserve(layer.workspace(batch: b))
            rows.append(Row(name: label + (activation == .identity ? "" : "+" + activation.rawValue),
                            forward: {
                                layer.forward(x, y, batch: b, params, workspace: arena.pointer(work))
                                activation.forward(y, y, count: outputs)
                            },
                            backward: {
                                activation.backward(output: y, dy, dy, count: outputs)
                                layer.backward(x, dy, inputGradient ? dx : nil, accumulate: false, batch: b, params, workspace: arena.pointer(work))
                            },
                            forwardGemms: layer.forwardGemms(batch: b), backwardGemms: layer.backwardGemms(batch: b, inputGradient: inputGradient)))
        }
        func conv(_ name: String, _ cin: Int, _ cout: Int, _ size: Int, _ activation: Activation, inputGradient: Bool = true) {
            let layer = Conv2d(params, name, in: cin, out: cout, kernel: 4, stride: 2, padding: 1, inputHeight: size, inputWidth: size)
            convolution(layer, "\(name) Conv2d(\(cin)->\(cout), k4 s2 p1) \(size)x\(size)", inputCount: b * cin * size * size, activation,
                        inputGradient: inputGradient)
        }
        func deconv(_ name: String, _ cin: Int, _ cout: Int, _ size: Int, _ activation: Activation) {
            let layer = ConvTranspose2d(params, name, in: cin, out: cout, kernel: 4, stride: 2, padding: 1, inputHeight: size, inputWidth: size)
            convolution(layer, "\(name) ConvTranspose2d(\(cin)->\(cout), k4 s2 p1) \(size)x\(size)", inputCount: b * cin * size * size, activation)
        }
        conv("image.conv1", 3, 32, 64, .relu, inputGradient: false)
        conv("image.conv2", 32, 64, 32, .relu)
        linear("image.fc", 16384, 256, .relu)
        linear("audio.fc1", 4160, 512, .relu, inputGradient: false)
        linear("audio.fc2", 512, 256, .relu)
        do {
            let layer = EmbeddingMean(params, "text.embedding", vocabulary: 4096, dimension: 128)
            let length = 32
            var rng = SeededRandom(seed: 3)
            let ids = UnsafeMutablePointer<Int32>.allocate(capacity: b * length)
            let lengths = UnsafeMutablePointer<Int32>.allocate(capacity: b)
            for i in 0..<(b * length) { ids[i] = Int32(rng.nextInt(below: 4096)) }
            for i in 0..<b { lengths[i] = Int32(8 + rng.nextInt(below: 25)) }
            let y = buffers.make(b * 128), dy = buffers.make(b * 128)
            rows.append(Row(name: "text.embedding Embedding(4096, 128) masked mean over 32",
                            forward: { layer.forward(ids: ids, lengths: lengths, length: length, y, batch: b, params) },
                            backward: { layer.backward(ids: ids, lengths: lengths, length: length, dy, batch: b, params) },
                            forwardGemms: [], backwardGemms: []))
            setups.append { ids.deallocate(); lengths.deallocate() }
        }
        linear("text.fc", 128, 256, .relu)
        linear("bottleneck.in", 768, 128, .identity)
        linear("bottleneck.out", 128, 768, .relu)
        linear("image.dec.fc", 256, 16384, .relu)
        deconv("image.dec.deconv1", 64, 32, 16, .relu)
        deconv("image.dec.deconv2", 32, 3, 32, .identity)
        linear("audio.dec.fc1", 256, 512, .relu)
        linear("audio.dec.fc2", 512, 4160, .identity)
        linear("text.dec.fc", 256, 2048, .relu)
        linear("text.dec.out", 64, 4096, rows: b * 32, .identity)
        return (rows, { setups.forEach { $0() } })
    }

    /// Seconds of plain sgemm over every GEMM of one W2 step as the workload writes it, and their GFLOP.
    public func w2GemmSeconds() -> (seconds: Double, gflop: Double) {
        EngineThreads.configure(threads)
        let params = ParameterSet<Float>()
        let buffers = Buffers()
        let arena = Arena<Float>()
        let (rows, cleanup) = w2Rows(params, buffers, arena)
        defer { cleanup() }
        let shapes = rows.flatMap { $0.forwardGemms + $0.backwardGemms }
        return (Self.sgemmSeconds(shapes, threads: threads, minSeconds: minSeconds), shapes.reduce(0) { $0 + $1.flops } / 1e9)
    }

    public func run(log: (String) -> Void) throws -> [String] {
        EngineThreads.configure(threads)
        let load = BackgroundLoad()
        var lines: [String] = []
        lines.append("tessera bench engine: W2 layers at batch \(batch), \(threads) threads (OpenBLAS \(BLAS.coreName); the sgemm column on \(threads) OpenBLAS threads); \(machineDescription())")

        let params = ParameterSet<Float>()
        let buffers = Buffers()
        let arena = Arena<Float>()
        let (rows, cleanup) = w2Rows(params, buffers, arena)
        defer { cleanup() }
        params.finalize()
        arena.finalize()
        var rng = SeededRandom(seed: 11)
        for i in 0..<params.count { params.values[i] = (rng.nextUnitFloat() - 0.5) * 0.02 }

        let header = ["layer", "pass", "GFLOP", "ms", "GFLOP/s", "sgemm ms", "sgemm GFLOP/s", "ratio"]
        var table: [[String]] = []
        var layerSeconds = 0.0, sgemmSeconds = 0.0, flops = 0.0
        for row in rows where only.map({ row.name.contains($0) }) ?? true {
            for (pass, body, shapes) in [("forward", row.forward, row.forwardGemms), ("backward", row.backward, row.backwardGemms)] {
                log("\(row.name) \(pass)")
                let seconds = Self.secondsPerCall(minSeconds: minSeconds, body)
                let gemm = Self.sgemmSeconds(shapes, threads: threads, minSeconds: minSeconds)
                let f = shapes.reduce(0) { $0 + $1.flops }
                layerSeconds += seconds
                sgemmSeconds += gemm
                flops += f
                table.append([row.name, pass, String(format: "%.3f", f / 1e9), String(format: "%.2f", seconds * 1e3),
                              f > 0 ? String(format: "%.1f", f / seconds / 1e9) : "-", gemm > 0 ? String(format: "%.2f", gemm * 1e3) : "-",
                              gemm > 0 ? String(format: "%.1f", f / gemm / 1e9) : "-", gemm > 0 ? formatRatio(gemm / seconds) : "-"])
            }
        }
        table.append(["all W2 layers", "fwd+bwd", String(format: "%.3f", flops / 1e9), String(format: "%.2f", layerSeconds * 1e3),
                      String(format: "%.1f", flops / layerSeconds / 1e9), String(format: "%.2f", sgemmSeconds * 1e3),
                      String(format: "%.1f", flops / sgemmSeconds / 1e9), formatRatio(sgemmSeconds / layerSeconds)])
        lines += alignedTable(header: header, rows: table)
        let layerRatio = sgemmSeconds / layerSeconds
        lines.append("W2 layers together: \(String(format: "%.1f", flops / layerSeconds / 1e9)) GFLOP/s = \(String(format: "%.0f", layerRatio * 100))% of sgemm at the same shapes (goal >= 60%)")

        log("im2col and col2im beside memcpy")
        lines += columnTransforms()

        // The rest of a W2 step: the three losses and one Adam update of every W2 parameter.
        let rest = try restOfStep(parameterCount: params.count, log: log)
        let stepSeconds = layerSeconds + rest.seconds
        let consumed = 1 / stepSeconds
        lines.append(String(format: "rest of a W2 step: losses %.2f ms, Adam over %@ parameters %.2f ms; estimated W2 step %.1f ms = %.1f batches/s (%.0f samples/s)",
                            rest.losses * 1e3, String(params.count), rest.optimizer * 1e3, stepSeconds * 1e3, consumed, consumed * Double(batch)))

        // The loader beside memcpy.
        let loader = try loaderThroughput(log: log)
        let memcpy = Self.memcpyBandwidth()
        lines.append(String(format: "loader (%@): %.0f batches/s of %d, %.2f GB/s delivered (%@ per batch); memcpy %.2f GB/s (one thread)",
                            loader.source, loader.batchesPerSecond, batch, loader.bytesPerSecond / 1e9, String(format: "%.2f MB", Double(loader.bytesPerBatch) / 1e6),
                            memcpy / 1e9))
        lines.append(String(format: "loader: %.0f%% of memcpy bandwidth (goal >= 50%%), %.0fx the batches/s W2 training consumes (goal >= 20x)",
                            loader.bytesPerSecond / memcpy * 100, loader.batchesPerSecond / consumed))
        let others = load.otherCores()
        if others > 0.3 { lines.append(String(format: "warning: other processes kept %.1f cores busy during this run; figures are disturbed", others)) }
        return lines
    }

    /// im2col and col2im on W2's convolution geometries beside memcpy of the same column matrix: copies
    /// bound by memory, so memcpy is their limit.
    func columnTransforms() -> [String] {
        // conv1 and deconv2 share a geometry (3 channels, 64x64, k4 s2 p1), as do conv2 and deconv1.
        let geometries: [(String, ConvGeometry)] = [
            ("k4 s2 p1, 3ch 64x64 (conv1, deconv2)", ConvGeometry(channels: 3, inHeight: 64, inWidth: 64, kernelHeight: 4, kernelWidth: 4, stride: 2, padding: 1)),
            ("k4 s2 p1, 32ch 32x32 (conv2, deconv1)", ConvGeometry(channels: 32, inHeight: 32, inWidth: 32, kernelHeight: 4, kernelWidth: 4, stride: 2, padding: 1)),
        ]
        var rows: [[String]] = []
        let buffers = Buffers()
        for (name, g) in geometries where only.map({ name.contains($0) || "columns".contains($0) }) ?? true {
            let inputCount = batch * g.channels * g.inHeight * g.inWidth, colCount = g.patch * batch * g.outHeight * g.outWidth
            let x = buffers.make(inputCount), cols = buffers.make(colCount), copy = buffers.make(colCount)
            let bytes = Double(colCount * 4)
            let forward = Self.secondsPerCall(minSeconds: minSeconds) { im2col(x, cols, g, batch: batch) }
            let backward = Self.secondsPerCall(minSeconds: minSeconds) { col2im(cols, x, g, batch: batch, accumulate: false) }
            let memcpy = Self.secondsPerCall(minSeconds: minSeconds) { copy.update(from: cols, count: colCount) }
            for (pass, seconds) in [("im2col", forward), ("col2im", backward)] {
                rows.append([name, pass, fixed(seconds * 1e3, 2), fixed(bytes / seconds / 1e9, 1), fixed(bytes / memcpy / 1e9, 1),
                             formatRatio(memcpy / seconds)])
            }
        }
        guard !rows.isEmpty else { return [] }
        return alignedTable(header: ["column transform", "pass", "ms", "GB/s of columns", "memcpy GB/s", "vs memcpy"], rows: rows)
    }

    struct RestOfStep { var losses: Double; var optimizer: Double; var seconds: Double { losses + optimizer } }

    func restOfStep(parameterCount: Int, log: (String) -> Void) throws -> RestOfStep {
        log("losses and optimizer")
        let b = batch
        let buffers = Buffers()
        let image = buffers.make(b * 12288), imageTarget = buffers.make(b * 12288), imageGrad = buffers.make(b * 12288)
        let mel = buffers.make(b * 4160), melTarget = buffers.make(b * 4160), melGrad = buffers.make(b * 4160)
        let rows = b * 32, classes = 4096
        let logits = buffers.make(rows * classes, scale: 3), logitsGrad = buffers.make(rows * classes)
        var rng = SeededRandom(seed: 5)
        let targets = (0..<rows).map { _ in Int32(rng.nextInt(below: classes)) }
        let valid = (0..<rows).map { UInt8($0 % 32 < 20 ? 1 : 0) }
        let losses = Self.secondsPerCall(minSeconds: minSeconds) {
            _ = Loss.mse(image, imageTarget, imageGrad, batch: b, perSample: 12288)
            _ = Loss.mse(mel, melTarget, melGrad, batch: b, perSample: 4160)
            _ = Loss.softmaxCrossEntropy(logits, targets: targets, valid: valid, logitsGrad, rows: rows, classes: classes)
        }
        let params = ParameterSet<Float>()
        _ = params.add("all", shape: [parameterCount])
        params.finalize()
        let optimizer = Optimizer<Float>(OptimizerConfig(), parameters: parameterCount)
        let update = Self.secondsPerCall(minSeconds: minSeconds) { optimizer.update(params) }
        return RestOfStep(losses: losses, optimizer: update)
    }

    struct LoaderFigures { var source: String; var batchesPerSecond: Double; var bytesPerSecond: Double; var bytesPerBatch: Int }

    func loaderThroughput(log: (String) -> Void) throws -> LoaderFigures {
        var folder = dataset
        var temporary: String?
        if folder == nil {
            log("writing a W1-shaped synthetic dataset (2048 samples) for the loader")
            let made = NSTemporaryDirectory() + "tessera-bench-engine-\(getpid())"
            try? FileManager.default.removeItem(atPath: made)
            try SyntheticW1.write(to: made, samples: 2048, shardSize: 256)
            folder = made
            temporary = made
        }
        defer { if let temporary { try? FileManager.default.removeItem(atPath: temporary) } }
        guard let folder else { return LoaderFigures(source: "-", batchesPerSecond: 0, bytesPerSecond: 0, bytesPerBatch: 0) }
        var config = LoaderConfig()
        config.batchSize = batch
        config.seed = 1
        let loader = try ShardLoader(folder: folder, config: config)
        let bytesPerSample = loader.fields.reduce(0) { $0 + $1.perSample * $1.dtype.byteSize }
        log("loader: one warm-up epoch (maps and checks every shard), then at least \(loaderSeconds) s of batches")
        try loader.start()
        var samples = 0, batches = 0
        var start = 0.0
        while let batch = try loader.next() {
            if batch.epoch == 0 {
                if batch.endsEpoch { start = monotonicSeconds() }
                continue
            }
            batches += 1
            samples += batch.count
            if batches % 64 == 0 && monotonicSeconds() - start >= loaderSeconds { break }
        }
        let seconds = monotonicSeconds() - start
        loader.stop()
        return LoaderFigures(source: dataset == nil ? "synthetic W1 shapes" : "\(folder)", batchesPerSecond: Double(samples) / Double(batch) / seconds,
                             bytesPerSecond: Double(samples * bytesPerSample) / seconds, bytesPerBatch: bytesPerSample * batch)
    }

    /// Single-thread memcpy bandwidth on buffers far larger than the caches (bytes copied per second).
    static func memcpyBandwidth() -> Double {
        let size = 256 << 20
        let a = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64), b = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        defer { a.deallocate(); b.deallocate() }
        a.initializeMemory(as: UInt8.self, repeating: 1, count: size)
        b.initializeMemory(as: UInt8.self, repeating: 2, count: size)
        let seconds = secondsPerCall(minSeconds: 0.5) { b.copyMemory(from: a, byteCount: size) }
        return Double(size) / seconds
    }
}

/// A dataset with W1's shapes (image U8 3x64x64, log-mel F32 64x65, 32 token ids, masks, labels), random
/// contents, for measuring the loader without a corpus.
enum SyntheticW1 {
    static func write(to folder: String, samples: Int, shardSize: Int) throws {
        let schema = [
            TensorSchema(name: "image", dtype: .uint8, shape: [3, 64, 64], normalize: Normalization(scale: 1.0 / 255, mean: [0.5, 0.45, 0.4], std: [0.25, 0.25, 0.25])),
            TensorSchema(name: "audio_mel", dtype: .float32, shape: [64, 65], normalize: Normalization(mean: [-8], std: [4])),
            TensorSchema(name: "text_ids", dtype: .int32, shape: [32], extra: JSONObject([("pad_id", .int(0))])),
            TensorSchema(name: "text_len", dtype: .int32, shape: []),
            TensorSchema(name: "mask_image", dtype: .uint8, shape: []),
            TensorSchema(name: "mask_audio", dtype: .uint8, shape: []),
            TensorSchema(name: "mask_text", dtype: .uint8, shape: []),
        ]
        var rng = SeededRandom(seed: 9)
        var shards: [ShardInfo] = []
        var batch = ShardBatch(schema: schema, capacity: shardSize)
        for i in 0..<samples {
            let image = (0..<(3 * 64 * 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let mel = (0..<(64 * 65)).map { _ in Float(rng.nextGaussian()) * 4 - 8 }
            let ids = (0..<32).map { _ in Int32(rng.nextInt(below: 4096)) }
            try batch.append(key: "s\(i)", tensors: [
                "image": try Tensor(shape: [3, 64, 64], scalars: image), "audio_mel": try Tensor(shape: [64, 65], scalars: mel),
                "text_ids": try Tensor(shape: [32], scalars: ids), "text_len": try Tensor(shape: [], scalars: [Int32(32)]),
                "mask_image": try Tensor(shape: [], scalars: [UInt8(1)]), "mask_audio": try Tensor(shape: [], scalars: [UInt8(1)]),
                "mask_text": try Tensor(shape: [], scalars: [UInt8(1)]),
            ])
            if batch.isFull || i == samples - 1 {
                shards.append(try batch.write(folder: folder, split: "train", index: shards.count))
                batch.reset()
            }
        }
        let manifest = DatasetManifest(tool: "tessera bench", config: .null, modalities: ["image", "audio", "text"], schema: schema,
                                       splits: [SplitInfo(name: "train", shards: shards)], statistics: .null, errors: .null, inputs: .null)
        try DurableFile.write(manifest.serialized(), to: FilePath.join(folder, "manifest.json"))
    }
}
