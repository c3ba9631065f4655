// RUN/loss.png (train and val loss per modality over steps) and RUN/reconstructions.png (a few val
// samples: the input, its reconstruction from all modalities and from each other modality alone).
import TesseraCore
import TesseraShards
#if canImport(Glibc)
import Glibc
#endif

public enum RunPictures {
    public static let lossFile = "loss.png"
    public static let reconstructionsFile = "reconstructions.png"

    static let colors: [String: RGB] = ["image": RGB(31, 119, 180), "audio": RGB(255, 127, 14), "text": RGB(44, 160, 44), "total": RGB(60, 60, 60)]

    /// The pictures of a finished (or interrupted) run: the loss plot, and the reconstructions when the model
    /// has an image or a log-mel to show. Returns the names written.
    @discardableResult
    public static func write(run: String, model: JointModel, dataset: String, log: (String) -> Void) throws -> [String] {
        let metrics = try readMetrics(FilePath.join(run, "metrics.jsonl"))
        try lossPlot(metrics, modalities: model.modalityNames).write(to: FilePath.join(run, lossFile))
        var written = [lossFile]
        if let picture = try reconstructions(model: model, dataset: dataset) {
            try picture.write(to: FilePath.join(run, reconstructionsFile))
            written.append(reconstructionsFile)
        }
        log("pictures: " + written.map { FilePath.join(run, $0) }.joined(separator: ", "))
        return written
    }

    struct Series { var name: String; var split: String; var points: [(Double, Double)] }

    static func readMetrics(_ path: String) throws -> [JSONValue] {
        guard FilePath.exists(path) else { return [] }
        let text = String(decoding: try FilePath.readAll(path, limit: 1 << 30), as: UTF8.self)
        return text.split(separator: "\n").compactMap { try? JSONValue.parse(String($0)) }
    }

    /// Train losses (smoothed with an exponential moving average) as lines, val losses as marked lines,
    /// on a logarithmic loss axis.
    static func lossPlot(_ lines: [JSONValue], modalities: [String]) -> Canvas {
        var series: [Series] = []
        for name in modalities {
            for split in ["train", "val"] {
                var points: [(Double, Double)] = []
                var average: Double?
                for line in lines where line["split"]?.stringValue == split {
                    guard let step = line["step"]?.doubleValue, let value = line["loss_\(name)"]?.doubleValue, value.isFinite, value > 0 else { continue }
                    if split == "train" {
                        average = average.map { 0.95 * $0 + 0.05 * value } ?? value
                        points.append((step, average ?? value))
                    } else {
                        points.append((step, value))
                    }
                }
                if !points.isEmpty { series.append(Series(name: name, split: split, points: points)) }
            }
        }
        // The legend sits right of the plot, where it hides no curve.
        let legendWidth = 232
        let width = 960 + legendWidth, height = 540
        var canvas = Canvas(width: width, height: height)
        let left = 110, right = 30 + legendWidth + 20, top = 50, bottom = 70
        let plotW = width - left - right, plotH = height - top - bottom
        canvas.text("LOSS PER MODALITY - TRAIN: MOVING AVERAGE, VAL: MARKED", x: left, y: 16, .black)
        let all = series.flatMap(\.points)
        let maxStep = max(all.map(\.0).max() ?? 1, 1)
        var low = all.map(\.1).min() ?? 0.1, high = all.map(\.1).max() ?? 1
        if !(low > 0) { low = 1e-3 }
        if high <= low { high = low * 10 }
        let logLow = (log10(low)).rounded(.down), logHigh = max((log10(high)).rounded(.up), logLow + 1)
        func px(_ step: Double) -> Int { left + Int((step / maxStep * Double(plotW)).rounded()) }
        func py(_ value: Double) -> Int { top + plotH - Int(((log10(value) - logLow) / (logHigh - logLow) * Double(plotH)).rounded()) }
        // Grid and ticks: 1-2-5 per decade on the loss axis, five steps on the step axis.
        // A diverged run spans many decades: then one labelled line every few decades.
        let decades = logHigh - logLow
        let every = decades > 10 ? (decades / 10).rounded(.up) : 1
        var decade = logLow
        while decade <= logHigh {
            for factor in every > 1 ? [1.0] : [1.0, 2.0, 5.0] {
                let value = pow(10, decade) * factor
                guard log10(value) <= logHigh + 1e-9 else { continue }
                let y = py(value)
                canvas.line(left, y, left + plotW, y, factor == 1 ? RGB.light : RGB(240, 240, 240))
                let label = formatTick(value)
                canvas.text(label, x: left - 10 - Canvas.textWidth(label), y: y - 7, .black)
            }
            decade += every
        }
        for i in 0...5 {
            let step = maxStep * Double(i) / 5
            let x = px(step)
            canvas.line(x, top, x, top + plotH, .light)
            let label = String(Int(step.rounded()))
            canvas.text(label, x: x - Canvas.textWidth(label) / 2, y: top + plotH + 10, .black)
        }
        canvas.rectangle(x: left, y: top, w: plotW, h: plotH, .black)
        canvas.text("STEP", x: left + plotW / 2 - 24, y: height - 28, .black)
        for s in series {
            let color = colors[s.name] ?? .black
            var previous: (Int, Int)?
            for (step, value) in s.points {
                let point = (px(step), py(value))
                if let previous { canvas.line(previous.0, previous.1, point.0, point.1, color, thickness: 2) }
                if s.split == "val" { canvas.fill(x: point.0 - 4, y: point.1 - 4, w: 9, h: 9, color) }
                previous = point
            }
        }
        let legendX = left + plotW + 20
        canvas.rectangle(x: legendX, y: top, w: legendWidth, h: 22 * series.count + 12, .grey)
        var y = top + 8
        for s in series {
            let color = colors[s.name] ?? .black
            let x = legendX + 10
            canvas.line(x, y + 6, x + 30, y + 6, color, thickness: 3)
            if s.split == "val" { canvas.fill(x: x + 11, y: y + 2, w: 9, h: 9, color) }
            canvas.text("\(s.name) \(s.split)", x: x + 40, y: y, .black)
            y += 22
        }
        return canvas
    }

    static func formatTick(_ value: Double) -> String {
        guard value.isFinite, value > 0 else { return "?" }
        if value >= 1e6 || value < 1e-4 {
            let exponent = log10(value).rounded(.down)
            let mantissa = Int((value / pow(10, exponent)).rounded())
            return "\(mantissa)E\(Int(exponent))"
        }
        if value >= 1 { return String(Int(value.rounded())) }
        // Enough decimals for the leading digit: 0.5, 0.05, 0.002.
        return fixed(value, max(1, Int((-log10(value)).rounded(.up))))
    }

    /// Up to six held-out samples (val, else test, else train; of its first 64, those with the most modalities):
    /// each row shows the image input and its reconstructions (all modalities; audio alone; text alone), then
    /// the log-mel input (a waveform's trace) and its reconstructions from all modalities and from the image alone.
    static func reconstructions(model: JointModel, dataset: String) throws -> Canvas? {
        let manifest = try DatasetManifest.load(folder: dataset)
        var config = LoaderConfig()
        config.split = ["val", "test"].first { (manifest.split($0)?.samples ?? 0) > 0 } ?? "train"
        config.batchSize = min(64, model.maxBatch)
        config.shuffle = .none
        config.epochs = 1
        let loader = try ShardLoader(folder: dataset, config: config)
        guard let batch = try loader.next() else { return nil }
        defer { loader.stop() }
        let input = ModelBatch(batch)
        let names = model.modalityNames
        // Six samples of the first batch, those with the most modalities first (in stored order among equals),
        // so that a dataset where many samples lack one still shows complete rows where it has them.
        let modalityCount = { (b: Int) in names.filter { (input.masks[$0]?[b] ?? 1) != 0 }.count }
        let shown = (0..<input.count).sorted { (modalityCount($0), -$0) > (modalityCount($1), -$1) }.prefix(6).sorted()
        let image = model.branches.first { $0.spec.name == "image" }
        let audio = model.branches.first { $0.spec.name == "audio" && $0.input.shape.count == 2 }
        // Each column: a title and how to draw one sample's cell.
        var views: [(title: String, visible: Set<String>?, source: String)] = []
        if image != nil {
            views.append(("image", nil, "input-image"))
            views.append(("from all", nil, "image"))
            for other in names where other != "image" { views.append(("from \(other)", [other], "image")) }
        }
        // A waveform input ("audio", [channels, samples]) is drawn as a trace of its first channel.
        let waveform = audio?.input.tensor == "audio"
        if audio != nil {
            views.append((waveform ? "waveform" : "log-mel", nil, "input-audio"))
            views.append(("from all", nil, "audio"))
            if names.contains("image") { views.append(("from image", ["image"], "audio")) }
        }
        guard !views.isEmpty else { return nil }
        // Small inputs magnified twice; large ones as they are, log-mels at most 512 frames wide.
        let imageZoom = (image?.input.shape.dropFirst().max() ?? 0) <= 128 ? 2 : 1
        let melColumns = min(audio?.input.shape.last ?? 0, 512), melZoom = melColumns <= 256 ? 2 : 1
        let (traceWidth, traceHeight) = (256, 64)
        func cellSize(_ source: String) -> (Int, Int) {
            if source.hasSuffix("image"), let shape = image?.input.shape { return (shape[2] * imageZoom, shape[1] * imageZoom) }
            if waveform { return (traceWidth, traceHeight) }
            if let shape = audio?.input.shape { return (melColumns * melZoom, shape[0] * melZoom) }
            return (0, 0)
        }
        let gap = 12, header = 36
        let columnWidths = views.map { max(cellSize($0.source).0, Canvas.textWidth($0.title)) }
        let rowHeight = views.map { cellSize($0.source).1 }.max() ?? 0
        let width = columnWidths.reduce(gap) { $0 + $1 + gap }
        let height = header + shown.count * (rowHeight + gap) + gap
        var canvas = Canvas(width: width, height: height)
        var x = gap
        for (i, view) in views.enumerated() {
            canvas.text(view.title, x: x, y: 12, .black)
            let visible = view.visible
            // Inputs are drawn from the model's view of the batch too (a channels-last image's planar copy).
            try model.prepare(input, visibleModalities: visible, hide: nil)
            _ = model.excludeSamplesWithoutInput(count: input.count)
            if view.source.hasPrefix("input") == false { model.forward(input) }
            for (row, sample) in shown.enumerated() {
                let y = header + row * (rowHeight + gap)
                // A sample without the drawn modality, or without the column's input, has nothing to show.
                let drawn = view.source.hasSuffix("image") ? image : audio
                if let drawn, model.arena.pointer(drawn.present)[sample] == 0 {
                    canvas.text("absent", x: x, y: y + 4, RGB(150, 150, 150), scale: 1)
                    continue
                }
                switch view.source {
                case "input-image", "image":
                    guard let branch = image else { continue }
                    let shape = branch.input.shape
                    let per = shape.reduce(1, *)
                    let values: UnsafeMutablePointer<Float>
                    if view.source == "image", let r = model.reconstruction("image") { values = r.pointer + sample * r.perSample } else {
                        guard let source = model.normalizedInput(branch, input) else { continue }
                        values = source + sample * per
                    }
                    var pixels = [Float](repeating: 0, count: per)
                    // The loader's input is normalised, and so is a reconstruction unless the model works in [0, 1].
                    let denormalize = view.source == "input-image" || branch.spec.scale == .normalized
                    for k in 0..<per {
                        if denormalize, let normalization = branch.input.normalization {
                            let channel = min(k / (shape[1] * shape[2]), normalization.mean.count - 1)
                            pixels[k] = values[k] * Float(normalization.std[channel]) + Float(normalization.mean[channel])
                        } else {
                            pixels[k] = values[k]
                        }
                    }
                    pixels.withUnsafeBufferPointer { buffer in
                        guard let base = buffer.baseAddress else { return }
                        canvas.image(base, width: shape[2], height: shape[1], channels: shape[0], x: x, y: y, zoom: imageZoom)
                    }
                case "input-audio", "audio":
                    guard let branch = audio, let source = input.floats[branch.input.tensor] else { continue }
                    let shape = branch.input.shape, per = shape.reduce(1, *)
                    let values = view.source == "audio" ? (model.reconstruction("audio").map { $0.pointer + sample * $0.perSample } ?? source) : source + sample * per
                    if waveform {
                        // One scale for a sample's input and reconstructions: the input's peak.
                        var peak: Float = 0
                        for k in 0..<shape[1] where source[sample * per + k].isFinite { peak = max(peak, abs(source[sample * per + k])) }
                        canvas.waveform(values, count: shape[1], scale: peak, x: x, y: y, w: traceWidth, h: traceHeight, RGB(59, 82, 139))
                    } else {
                        canvas.heatmap(values, rows: shape[0], columns: shape[1], shown: melColumns, low: -2.5, high: 2.5, x: x, y: y, zoom: melZoom)
                    }
                default:
                    break
                }
            }
            x += columnWidths[i] + gap
        }
        return canvas
    }
}
