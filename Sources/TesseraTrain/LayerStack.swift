// An encoder or decoder: a chain of engine layers built from a layer list, with shapes inferred from the
// input and every activation planned in the model's arena. Activations, flatten and reshape run in place.
import TesseraCore
import TesseraEngine

/// A tensor of the stack: its value and its gradient in the arena (or outside it, for the stack's input).
struct StackTensor {
    /// Per-sample shape.
    var shape: [Int]
    var value: ArenaSlot?
    var gradient: ArenaSlot?
    var perSample: Int { shape.reduce(1, *) }
}

/// One step of the chain.
protocol StackNode: AnyObject {
    func forward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int)
    /// Accumulates parameter gradients; writes dx when given.
    func backward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int)
}

/// The layers of one encoder or decoder.
final class LayerStack {
    let name: String
    let params: ParameterSet<Float>
    let arena: Arena<Float>
    /// tensors[0] is the input; tensors[i + 1] the output of nodes[i].
    private(set) var tensors: [StackTensor] = []
    private(set) var nodes: [StackNode] = []
    /// The token ids and lengths of a batch, for a stack that starts with an embedding.
    var ids: UnsafePointer<Int32>?
    var lengths: UnsafePointer<Int32>?
    /// The layers' initialisers, in order.
    private var initializers: [(inout SeededRandom) -> Void] = []
    let startsWithEmbedding: Bool

    /// The product of non-negative `factors`, nil when it overflows (sizes from a model file can be anything).
    static func product(_ factors: [Int]) -> Int? {
        var result = 1
        for factor in factors {
            let (next, overflow) = result.multipliedReportingOverflow(by: factor)
            guard factor >= 0, !overflow else { return nil }
            result = next
        }
        return result
    }

    var inputShape: [Int] { tensors[0].shape }
    var outputShape: [Int] { tensors[tensors.count - 1].shape }
    /// Elements of one sample's output.
    var outputCount: Int { tensors[tensors.count - 1].perSample }

    /// Builds the layers; `inputShape` is per sample ([C, H, W], [F], or [L] token ids for an embedding).
    /// Parameters are named `NAME.INDEX.weight` with INDEX the layer's position in the list, as
    /// `nn.Sequential` names them. `source` names the model file in errors.
    init(name: String, specs: [LayerSpec], inputShape: [Int], vocabulary: Int, maxBatch: Int,
         params: ParameterSet<Float>, arena: Arena<Float>, source: String) throws {
        self.name = name
        self.params = params
        self.arena = arena
        startsWithEmbedding = { if case .embedding = specs.first { return true }; return false }()
        func fail(_ index: Int, _ message: String) -> TesseraError {
            TesseraError(path: source, stage: .config, code: "model.shape", "\(name)[\(index)]: \(message)")
        }
        tensors.append(StackTensor(shape: inputShape, value: nil, gradient: nil))
        var inputIsOwned = false
        for (index, spec) in specs.enumerated() {
            let shape = tensors[tensors.count - 1].shape
            let layerName = "\(name).\(index)"
            /// A new output tensor (value and gradient).
            func output(_ shape: [Int]) throws -> StackTensor {
                guard let count = LayerStack.product([maxBatch] + shape), count <= 1 << 31 else {
                    throw fail(index, "activations of \(shape) for a batch of \(maxBatch) are too large")
                }
                return StackTensor(shape: shape, value: arena.reserve(count), gradient: arena.reserve(count))
            }
            func image(_ what: String) throws -> (Int, Int, Int) {
                guard shape.count == 3 else { throw fail(index, "\(what) needs a [channels, height, width] input, got \(shape)") }
                return (shape[0], shape[1], shape[2])
            }
            /// Checks, before the layer allocates anything, that `factors` multiply to at most 2^31 elements.
            func checkSize(_ what: String, _ factors: Int...) throws {
                guard let count = LayerStack.product(factors), count <= 1 << 31 else {
                    throw fail(index, "\(what) would be too large (more than 2^31 elements)")
                }
            }
            /// A convolution's weights [out, in, k, k] and one sample's column matrix [in k k, positions].
            func checkConvolution(in channels: Int, out: Int, kernel: Int, positions: Int) throws {
                try checkSize("the weights", out, channels, kernel, kernel)
                try checkSize("the column matrix", channels, kernel, kernel, positions)
            }
            switch spec {
            case let .conv2d(out, kernel, stride, padding):
                let (c, h, w) = try image("conv2d")
                guard h + 2 * padding >= kernel, w + 2 * padding >= kernel else { throw fail(index, "kernel \(kernel) is larger than the padded input \(shape)") }
                let geometry = ConvGeometry(channels: c, inHeight: h, inWidth: w, kernelHeight: kernel, kernelWidth: kernel, stride: stride, padding: padding)
                let result = try output([out, geometry.outHeight, geometry.outWidth])
                try checkConvolution(in: c, out: out, kernel: kernel, positions: geometry.outHeight * geometry.outWidth)
                let layer = Conv2d(params, layerName, in: c, out: out, kernel: kernel, stride: stride, padding: padding, inputHeight: h, inputWidth: w)
                let node = ConvolutionNode(layer, params: params, workspace: arena.reserve(layer.workspace(batch: maxBatch)), arena: arena)
                try append(node, result)
                initializers.append(node.initializer)
            case let .convTranspose2d(out, kernel, stride, padding, outputPadding):
                let (c, h, w) = try image("conv_transpose2d")
                guard outputPadding.height < stride, outputPadding.width < stride else { throw fail(index, "output_padding must be smaller than the stride") }
                try checkSize("the output", out, (h - 1) * stride + kernel + outputPadding.height, (w - 1) * stride + kernel + outputPadding.width)
                try checkConvolution(in: out, out: c, kernel: kernel, positions: h * w)
                let layer = ConvTranspose2d(params, layerName, in: c, out: out, kernel: kernel, stride: stride, padding: padding,
                                            outputPadding: (outputPadding.height, outputPadding.width), inputHeight: h, inputWidth: w)
                guard layer.outHeight > 0, layer.outWidth > 0 else { throw fail(index, "the output of \(shape) would be empty") }
                let node = ConvolutionNode(layer, params: params, workspace: arena.reserve(layer.workspace(batch: maxBatch)), arena: arena)
                try append(node, output([out, layer.outHeight, layer.outWidth]))
                initializers.append(node.initializer)
            case let .maxPool(kernel, stride):
                let (c, h, w) = try image("maxpool")
                guard h >= kernel, w >= kernel else { throw fail(index, "pool \(kernel) is larger than \(shape)") }
                let layer = MaxPool2d<Float>(channels: c, inputHeight: h, inputWidth: w, kernel: kernel, stride: stride, maxBatch: maxBatch)
                try append(PoolNode(layer), output([c, layer.outHeight, layer.outWidth]))
            case let .upsample(scale):
                let (c, h, w) = try image("upsample")
                try append(UpsampleNode(Upsample<Float>(channels: c, inputHeight: h, inputWidth: w, scale: scale)), output([c, h * scale, w * scale]))
            case let .linear(out):
                guard let features = shape.last, !shape.isEmpty else { throw fail(index, "linear needs an input with features") }
                let rows = shape.dropLast().reduce(1, *)
                try checkSize("the weights", features, out)
                let layer = Linear(params, layerName, in: features, out: out)
                let node = LinearNode(layer, rowsPerSample: rows, params: params)
                try append(node, output(Array(shape.dropLast()) + [out]))
                initializers.append { node.initialize(&$0) }
            case let .embedding(vocabularySetting, dimension):
                guard index == 0, shape.count == 1 else { throw fail(index, "embedding must be the first layer of a text encoder (input [length] ids)") }
                let size = vocabularySetting > 0 ? vocabularySetting : vocabulary
                guard size > 0 else { throw fail(index, "the embedding's vocabulary is 0 and the dataset names no tokenizer size") }
                try checkSize("the embedding table", size, dimension)
                let layer = EmbeddingMean(params, layerName, vocabulary: size, dimension: dimension)
                let node = EmbeddingNode(layer, length: shape[0], params: params, stack: self)
                try append(node, output([dimension]))
                initializers.append { layer.initialize(params, &$0) }
            case let .activation(activation):
                // In place, except on the stack's input, which is the batch itself (and the loss target).
                let node = ActivationNode(activation, perSample: shape.reduce(1, *))
                if inputIsOwned {
                    let previous = tensors[tensors.count - 1]
                    nodes.append(node)
                    tensors.append(previous)
                } else {
                    try append(node, output(shape))
                }
            case .flatten:
                nodes.append(ViewNode())
                var view = tensors[tensors.count - 1]
                view.shape = [view.perSample]
                tensors.append(view)
            case let .reshape(target):
                guard LayerStack.product(target) == shape.reduce(1, *) else { throw fail(index, "cannot reshape \(shape) to \(target)") }
                nodes.append(ViewNode())
                var view = tensors[tensors.count - 1]
                view.shape = target
                tensors.append(view)
            }
            inputIsOwned = tensors[tensors.count - 1].value != nil
        }
        guard inputIsOwned else {
            throw TesseraError(path: source, stage: .config, code: "model.shape", "\(name): the list must compute something (a layer with weights, a pool or an activation)")
        }
    }

    /// Lets the stack compute only some rows of its output, when it ends in a linear layer applied at every
    /// position ([L, F] -> [L, out]): the rows a loss reads (a text decoder's non-pad positions). Reserves the
    /// layer's scratch in the arena, so it is called before the arena is finalised. Nil for any other ending.
    func selectableOutputRows() -> OutputRows? {
        guard let last = nodes.last as? LinearNode, last.rowsPerSample > 1, tensors.count >= 2 else { return nil }
        if let packing = last.packing { return packing.rows }
        let maxRows = (tensors[tensors.count - 1].value?.count ?? 0) / last.layer.outFeatures
        let packing = LinearNode.Packing(rows: OutputRows(capacity: maxRows), arena: arena,
                                         input: arena.reserve(maxRows * last.layer.inFeatures),
                                         inputGradient: arena.reserve(maxRows * last.layer.inFeatures))
        last.packing = packing
        return packing.rows
    }

    private func append(_ node: StackNode, _ tensor: StackTensor) throws {
        nodes.append(node)
        tensors.append(tensor)
    }

    /// Initialises the stack's layers (PyTorch's defaults) in order.
    func initialize(_ rng: inout SeededRandom) {
        for initializer in initializers { initializer(&rng) }
    }

    /// The pointer of tensor `i` (the input when it has no slot).
    private func value(_ i: Int, input: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
        tensors[i].value.map { arena.pointer($0) } ?? input
    }

    private func gradient(_ i: Int, inputGradient: UnsafeMutablePointer<Float>?) -> UnsafeMutablePointer<Float>? {
        tensors[i].gradient.map { arena.pointer($0) } ?? inputGradient
    }

    /// The output's value and gradient buffers.
    var output: UnsafeMutablePointer<Float> { arena.pointer(tensors[tensors.count - 1].value!) }
    var outputGradient: UnsafeMutablePointer<Float> { arena.pointer(tensors[tensors.count - 1].gradient!) }

    func forward(input: UnsafeMutablePointer<Float>, batch: Int) {
        for (i, node) in nodes.enumerated() {
            node.forward(value(i, input: input), value(i + 1, input: input), batch: batch)
        }
    }

    /// Back from `outputGradient` to `inputGradient` (nil: the input needs none).
    func backward(input: UnsafeMutablePointer<Float>, inputGradient: UnsafeMutablePointer<Float>?, batch: Int) {
        for i in stride(from: nodes.count - 1, through: 0, by: -1) {
            // A view of the input at the start of an encoder has no gradient to pass on.
            guard let dy = gradient(i + 1, inputGradient: inputGradient) else { continue }
            nodes[i].backward(value(i, input: input), value(i + 1, input: input), dy, gradient(i, inputGradient: inputGradient), batch: batch)
        }
    }
}

/// The rows of a stack's output that are computed, as indices into its [batch x positions] rows, ascending.
/// While `isActive`, the output and its gradient hold these rows only, packed from row 0; rows that no loss
/// reads (padding) cost neither a product nor a gradient.
final class OutputRows {
    private(set) var indices: [Int] = []
    private(set) var isActive = false
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        indices.reserveCapacity(capacity)
    }

    /// Starts a new selection (active, empty).
    func reset() {
        indices.removeAll(keepingCapacity: true)
        isActive = true
    }

    /// Adds a row; the caller keeps within `capacity`.
    func append(_ row: Int) { indices.append(row) }

    /// Back to computing every row.
    func deactivate() { isActive = false }
}

/// The engine layers, wrapped to the stack's calling convention.
final class LinearNode: StackNode {
    let layer: Linear<Float>
    let params: ParameterSet<Float>
    /// Rows per sample: a linear on [L, F] runs on L rows per sample (the same weights at every position).
    let rowsPerSample: Int
    /// Rows chosen to be computed (see `OutputRows`), with the chosen input rows packed into `input` (kept
    /// for the backward pass) and their gradient into `inputGradient`.
    struct Packing {
        let rows: OutputRows
        let arena: Arena<Float>
        let input: ArenaSlot
        let inputGradient: ArenaSlot
    }
    /// Set by `LayerStack.selectableOutputRows`; in effect while its rows are active.
    var packing: Packing?

    init(_ layer: Linear<Float>, rowsPerSample: Int, params: ParameterSet<Float>) {
        (self.layer, self.rowsPerSample, self.params) = (layer, rowsPerSample, params)
    }
    func initialize(_ rng: inout SeededRandom) { layer.initialize(params, &rng) }

    /// The selection's rows and packed buffers, when rows are selected.
    private var packed: (rows: [Int], input: UnsafeMutablePointer<Float>, inputGradient: UnsafeMutablePointer<Float>)? {
        guard let packing, packing.rows.isActive else { return nil }
        return (packing.rows.indices, packing.arena.pointer(packing.input), packing.arena.pointer(packing.inputGradient))
    }

    func forward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int) {
        guard let packed else {
            layer.forward(x, y, batch: batch * rowsPerSample, params)
            return
        }
        let width = layer.inFeatures
        for (k, row) in packed.rows.enumerated() { (packed.input + k * width).update(from: x + row * width, count: width) }
        if !packed.rows.isEmpty { layer.forward(packed.input, y, batch: packed.rows.count, params) }
    }

    func backward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int) {
        guard let packed else {
            layer.backward(x, dy, dx, batch: batch * rowsPerSample, params)
            return
        }
        let width = layer.inFeatures
        if !packed.rows.isEmpty {
            layer.backward(packed.input, dy, dx == nil ? nil : packed.inputGradient, batch: packed.rows.count, params)
        }
        guard let dx else { return }
        // Rows that were not computed pass no gradient back.
        dx.update(repeating: 0, count: batch * rowsPerSample * width)
        for (k, row) in packed.rows.enumerated() { (dx + row * width).update(from: packed.inputGradient + k * width, count: width) }
    }
}

/// A convolution or transposed convolution. Not generic: the closures are made where the layer's concrete
/// type is known, so the engine's generic code is specialised for Float (a generic node called through
/// `StackNode` ran the unspecialised im2col/col2im, several times slower).
final class ConvolutionNode: StackNode {
    typealias Forward = (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, UnsafeMutablePointer<Float>) -> Void
    typealias Backward = (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>?, Int, UnsafeMutablePointer<Float>) -> Void
    let workspace: ArenaSlot
    let arena: Arena<Float>
    let initializer: (inout SeededRandom) -> Void
    let forwardPass: Forward
    let backwardPass: Backward

    convenience init(_ layer: Conv2d<Float>, params: ParameterSet<Float>, workspace: ArenaSlot, arena: Arena<Float>) {
        self.init(workspace: workspace, arena: arena, initializer: { layer.initialize(params, &$0) },
                  forward: { layer.forward($0, $1, batch: $2, params, workspace: $3) },
                  backward: { layer.backward($0, $1, $2, accumulate: false, batch: $3, params, workspace: $4) })
    }

    convenience init(_ layer: ConvTranspose2d<Float>, params: ParameterSet<Float>, workspace: ArenaSlot, arena: Arena<Float>) {
        self.init(workspace: workspace, arena: arena, initializer: { layer.initialize(params, &$0) },
                  forward: { layer.forward($0, $1, batch: $2, params, workspace: $3) },
                  backward: { layer.backward($0, $1, $2, accumulate: false, batch: $3, params, workspace: $4) })
    }

    private init(workspace: ArenaSlot, arena: Arena<Float>, initializer: @escaping (inout SeededRandom) -> Void,
                 forward: @escaping Forward, backward: @escaping Backward) {
        (self.workspace, self.arena, self.initializer, self.forwardPass, self.backwardPass) = (workspace, arena, initializer, forward, backward)
    }

    func forward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int) {
        forwardPass(x, y, batch, arena.pointer(workspace))
    }
    func backward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int) {
        backwardPass(x, dy, dx, batch, arena.pointer(workspace))
    }
}

final class PoolNode: StackNode {
    let layer: MaxPool2d<Float>
    init(_ layer: MaxPool2d<Float>) { self.layer = layer }
    func forward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int) { layer.forward(x, y, batch: batch) }
    func backward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int) {
        if let dx { layer.backward(dy, dx, batch: batch) }
    }
}

final class UpsampleNode: StackNode {
    let layer: Upsample<Float>
    init(_ layer: Upsample<Float>) { self.layer = layer }
    func forward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int) { layer.forward(x, y, batch: batch) }
    func backward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int) {
        if let dx { layer.backward(dy, dx, batch: batch) }
    }
}

/// An activation: in place (y is x) unless it reads the stack's input.
final class ActivationNode: StackNode {
    let activation: Activation
    let perSample: Int
    init(_ activation: Activation, perSample: Int) { (self.activation, self.perSample) = (activation, perSample) }
    func forward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int) {
        activation.forward(x, y, count: batch * perSample)
    }
    func backward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int) {
        if let dx { activation.backward(output: y, dy, dx, count: batch * perSample) }
    }
}

/// Flatten and reshape: the same memory seen with another shape.
final class ViewNode: StackNode {
    func forward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int) {}
    func backward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int) {}
}

/// The masked-mean embedding; reads the batch's ids and lengths from its stack (its float input is unused).
final class EmbeddingNode: StackNode {
    let layer: EmbeddingMean<Float>
    let params: ParameterSet<Float>
    let length: Int
    unowned let stack: LayerStack
    init(_ layer: EmbeddingMean<Float>, length: Int, params: ParameterSet<Float>, stack: LayerStack) {
        (self.layer, self.length, self.params, self.stack) = (layer, length, params, stack)
    }
    func forward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int) {
        guard let ids = stack.ids, let lengths = stack.lengths else { return }
        layer.forward(ids: ids, lengths: lengths, length: length, y, batch: batch, params)
    }
    func backward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, batch: Int) {
        guard let ids = stack.ids, let lengths = stack.lengths else { return }
        layer.backward(ids: ids, lengths: lengths, length: length, dy, batch: batch, params)
    }
}
