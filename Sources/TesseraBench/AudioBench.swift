// `tessera bench audio DIR`: audio decode / resample / log-mel throughput beside libsndfile and the Python
// pipeline (soundfile + soxr + librosa).
import Foundation
import TesseraAudio
import TesseraCore

/// The audio benchmark of issue #4 on a folder of audio files (the W1 corpus's WAVs).
public struct AudioBench {
    public var folder: String
    public var threadCounts: [Int] = [1, 2]
    public var minSeconds: Double = 1.5
    public var runPeers = true

    public init(folder: String) { self.folder = folder }

    public func run(log: (String) -> Void) throws -> [String] {
        let extensions: Set<String> = ["wav", "flac", "ogg", "aif", "aiff"]
        let files = try FilePath.listDirectory(folder).sorted().filter { extensions.contains(FilePath.pathExtension($0)) }.map { FilePath.join(folder, $0) }
        guard !files.isEmpty else {
            throw TesseraError(path: folder, stage: .config, code: "bench.empty", "no audio files in this folder")
        }
        var audioSeconds = 0.0
        var whole = AudioConfig()
        whole.rate = 0
        whole.samples = 0
        whole.melBins = 0
        whole.channels = .keep
        for path in files {
            if let info = try? AudioDecoding.decode(path: path, config: whole).info { audioSeconds += info.duration }
        }
        var resample = AudioConfig()
        resample.samples = 0
        resample.melBins = 0
        let w1 = AudioConfig()
        let load = BackgroundLoad()
        struct Row { var label: String; var rates: [Double]; var peer: [Double]? }
        var rows: [Row] = []
        func measure(_ label: String, _ body: @escaping @Sendable (String) -> Void) -> [Double] {
            log("measuring \(label)")
            return threadCounts.map { measureThroughput(count: files.count, threads: $0, minSeconds: minSeconds) { body(files[$0]) }.perSecond }
        }
        let plain = measure("libsndfile plain decode") { path in
            if let mapping = try? MappedFile(path: path) { _ = SoundFileBaseline.plainDecode(mapping.bytes) }
        }
        func tessera(_ config: AudioConfig) -> @Sendable (String) -> Void {
            { path in _ = try? AudioDecoding.decode(path: path, config: config) }
        }
        var peers: [String: [Double]] = [:]
        if runPeers {
            guard let peer = PythonPeer.locate() else {
                throw TesseraError(stage: .config, code: "bench.peer", "tools/bench not found: run from the repository folder")
            }
            let list = NSTemporaryDirectory() + "tessera-bench-audio-\(getpid()).txt"
            try DurableFile.write(files.joined(separator: "\n"), to: list)
            defer { try? FilePath.removeFile(list) }
            for mode in ["decode", "resample", "mel"] {
                log("measuring Python \(mode) (peer)")
                peers[mode] = try threadCounts.map { n in
                    try peer.run("python_audio.py", ["--list", list, "--processes", "\(n)", "--mode", mode, "--min-seconds", "\(minSeconds)"])["per_second"]?.doubleValue ?? 0
                }
            }
        }
        rows.append(Row(label: "libsndfile plain decode (whole file) [limit]", rates: plain))
        rows.append(Row(label: "tessera decode (whole file, every channel)", rates: measure("tessera decode", tessera(whole)), peer: peers["decode"]))
        rows.append(Row(label: "tessera decode + mono + resample 16 kHz (whole file)", rates: measure("tessera resample", tessera(resample)), peer: peers["resample"]))
        rows.append(Row(label: "tessera W1 audio: 1 s crop + resample + log-mel", rates: measure("tessera w1", tessera(w1)), peer: peers["mel"]))
        if runPeers {
            rows.append(Row(label: "Python soundfile.read [peer]", rates: peers["decode"] ?? []))
            rows.append(Row(label: "Python + mean + soxr.resample [peer]", rates: peers["resample"] ?? []))
            rows.append(Row(label: "Python + crop + librosa melspectrogram + log [peer]", rates: peers["mel"] ?? []))
        }
        let background = load.otherCores()
        let perFile = audioSeconds / Double(files.count)
        var lines = ["tessera bench audio \(folder): \(files.count) files, \(fixed(audioSeconds, 1)) s of audio (page cache)"]
        lines.append("machine: \(machineDescription()); other processes used \(fixed(background, 2)) cores during the run\(background > 0.1 ? " (CONTAMINATED)" : "")")
        let header = ["measurement"] + threadCounts.map { "\($0) thread\($0 > 1 ? "s" : ""): files/s (audio-s/s)" }
        let table: [[String]] = rows.map { row in
            [row.label] + row.rates.enumerated().map { i, rate in
                var cell = "\(formatRate(rate, "files/s")) (\(formatRate(rate * perFile, "s/s")))"
                if let peer = row.peer, i < peer.count, peer[i] > 0 { cell += " = \(formatRatio(rate / peer[i])) Python" }
                return cell
            }
        }
        lines += alignedTable(header: header, rows: table)
        return lines
    }
}
