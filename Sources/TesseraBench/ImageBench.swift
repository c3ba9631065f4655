// `tessera bench images DIR`: image decode throughput beside libjpeg-turbo's own decode and Pillow.
import Foundation
import TesseraCore
import TesseraImage

/// The image benchmark of issue #3 on a folder of images (the W1 corpus's).
public struct ImageBench {
    public var folder: String
    public var threadCounts: [Int] = [1, 2]
    public var minSeconds: Double = 1.5
    public var runPeers = true

    public init(folder: String) { self.folder = folder }

    /// Runs every measurement and returns the report lines.
    public func run(log: (String) -> Void) throws -> [String] {
        let names = try FilePath.listDirectory(folder).sorted()
        let all = names.filter { ["jpg", "jpeg", "png"].contains(FilePath.pathExtension($0)) }.map { FilePath.join(folder, $0) }
        let jpegs = all.filter { FilePath.pathExtension($0) != "png" }
        guard !all.isEmpty else {
            throw TesseraError(path: folder, stage: .config, code: "bench.empty", "no .jpg/.png images in this folder")
        }
        // Tessera reads each file on every pass, as the Pillow peer does (from the page cache after the
        // warm-up pass); libjpeg's plain decode works on bytes read once (the limit, without any I/O).
        let jpegBytes = try jpegs.map { try FilePath.readAll($0) }
        let load = BackgroundLoad()
        var full = ImageConfig()
        full.resize = .none
        full.dctScaling = false
        var dct = ImageConfig()
        dct.dctScaling = true
        var noDCT = ImageConfig()
        noDCT.dctScaling = false

        struct Row { var label: String; var rates: [Double]; var against: String? }
        var rows: [Row] = []
        func measure<Input: Sendable>(_ label: String, _ inputs: [Input], _ body: @escaping @Sendable (Input) -> Void) -> [Double] {
            log("measuring \(label)")
            return threadCounts.map { threads in
                measureThroughput(count: inputs.count, threads: threads, minSeconds: minSeconds) { body(inputs[$0]) }.perSecond
            }
        }
        func tessera(_ config: ImageConfig) -> @Sendable (String) -> Void {
            { path in _ = try? ImageDecoding.decode(path: path, config: config) }
        }
        var plain: [Double] = []
        if !jpegBytes.isEmpty {
            plain = measure("libjpeg-turbo plain full decode", jpegBytes) { bytes in
                _ = bytes.withUnsafeBytes { JPEGBaseline.plainDecode($0) }
            }
            rows.append(Row(label: "libjpeg-turbo plain full-size decode (JPEG) [limit]", rates: plain))
            let fullRates = measure("tessera full decode", jpegs, tessera(full))
            rows.append(Row(label: "tessera full-size decode (JPEG)", rates: fullRates, against: "plain"))
            let dctRates = measure("tessera decode+resize 64 DCT", jpegs, tessera(dct))
            rows.append(Row(label: "tessera decode+resize 64x64, DCT scaling (JPEG)", rates: dctRates, against: "plain"))
            let noDCTRates = measure("tessera decode+resize 64 no DCT", jpegs, tessera(noDCT))
            rows.append(Row(label: "tessera decode+resize 64x64, no DCT scaling (JPEG)", rates: noDCTRates, against: "plain"))
        }
        let allRates = measure("tessera decode+resize 64 all", all, tessera(dct))
        rows.append(Row(label: "tessera decode+resize 64x64, DCT scaling (all images)", rates: allRates, against: "pillow"))
        let allNoDCT = measure("tessera decode+resize 64 all, no DCT", all, tessera(noDCT))
        rows.append(Row(label: "tessera decode+resize 64x64, no DCT scaling (all images)", rates: allNoDCT, against: "pillow"))

        var pillow: [Double]?
        var pillowJPEG: [Double]?
        if runPeers {
            guard let peer = PythonPeer.locate() else {
                throw TesseraError(stage: .config, code: "bench.peer", "tools/bench not found: run from the repository folder")
            }
            let listAll = NSTemporaryDirectory() + "tessera-bench-images-\(getpid()).txt"
            let listJPEG = listAll + ".jpeg"
            try DurableFile.write(all.joined(separator: "\n"), to: listAll)
            try DurableFile.write(jpegs.joined(separator: "\n"), to: listJPEG)
            defer { try? FilePath.removeFile(listAll); try? FilePath.removeFile(listJPEG) }
            log("measuring Pillow (peer)")
            pillow = try threadCounts.map { n in
                try peer.run("pillow_images.py", ["--list", listAll, "--processes", "\(n)", "--mode", "draft64", "--min-seconds", "\(minSeconds)"])["per_second"]?.doubleValue ?? 0
            }
            if !jpegs.isEmpty {
                pillowJPEG = try threadCounts.map { n in
                    try peer.run("pillow_images.py", ["--list", listJPEG, "--processes", "\(n)", "--mode", "draft64", "--min-seconds", "\(minSeconds)"])["per_second"]?.doubleValue ?? 0
                }
                rows.append(Row(label: "Pillow draft+resize 64x64 (JPEG) [peer]", rates: pillowJPEG ?? []))
            }
            rows.append(Row(label: "Pillow draft+resize 64x64 (all images) [peer]", rates: pillow ?? []))
        }

        // The error DCT scaling introduces: DCT-scaled against full-decode outputs (the latter match Pillow).
        log("measuring DCT-scaling error")
        var totalDiff = 0.0, samples = 0.0, worst = 0.0
        for bytes in jpegBytes {
            guard let a = try? bytes.withUnsafeBytes({ try ImageDecoding.decode(bytes: $0, config: dct).tensor }),
                  let b = try? bytes.withUnsafeBytes({ try ImageDecoding.decode(bytes: $0, config: noDCT).tensor }) else { continue }
            for (x, y) in zip(a.doubles(), b.doubles()) {
                totalDiff += abs(x - y)
                worst = max(worst, abs(x - y))
                samples += 1
            }
        }
        let background = load.otherCores()

        var lines: [String] = []
        lines.append("tessera bench images \(folder): \(jpegs.count) JPEG + \(all.count - jpegs.count) PNG files (read from the page cache on every pass, as by the peer)")
        lines.append("machine: \(machineDescription()); other processes used \(String(format: "%.2f", background)) cores during the run\(background > 0.1 ? " (CONTAMINATED: rerun on an idle machine)" : "")")
        let header = ["measurement"] + threadCounts.map { "\($0) thread\($0 > 1 ? "s" : "")" }
        var table: [[String]] = []
        for row in rows {
            var cells = [row.label]
            for (i, rate) in row.rates.enumerated() {
                var cell = formatRate(rate, "img/s")
                if row.against == "plain", i < plain.count { cell += " (\(formatRatio(rate / plain[i])) libjpeg)" }
                if row.against == "pillow", let pillow, i < pillow.count { cell += " (\(formatRatio(rate / pillow[i])) Pillow)" }
                cells.append(cell)
            }
            table.append(cells)
        }
        lines += alignedTable(header: header, rows: table)
        lines.append(String(format: "DCT scaling vs full decode (both resized to 64x64): mean |difference| %.3f, max %.0f (uint8 levels) over %d JPEGs",
                            samples > 0 ? totalDiff / samples : 0, worst, jpegBytes.count))
        return lines
    }
}

/// Aligns rows under a header, left-aligned, two spaces apart.
public func alignedTable(header: [String], rows: [[String]]) -> [String] {
    var widths = header.map(\.count)
    for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in c + String(repeating: " ", count: widths[i] - c.count) }.joined(separator: "  ")
            .replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
    }
    return [line(header)] + rows.map(line)
}
