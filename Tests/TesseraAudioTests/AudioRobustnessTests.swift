import Foundation
import Testing
import TesseraCore
@testable import TesseraAudio

/// A canonical 44-byte WAV header.
func wavHeader(channels: Int, rate: Int, bits: Int, dataBytes: UInt32, float: Bool = false) -> [UInt8] {
    func le32(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)] }
    func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
    let block = channels * bits / 8
    return Array("RIFF".utf8) + le32(dataBytes &+ 36) + Array("WAVEfmt ".utf8) + le32(16) + le16(float ? 3 : 1)
        + le16(channels) + le32(UInt32(rate)) + le32(UInt32(rate * block)) + le16(block) + le16(bits)
        + Array("data".utf8) + le32(dataBytes)
}

@Suite struct AudioRobustnessTests {
    static let sources = [
        "fsdd/recordings/0_george_0.wav", "wav_go_audio/kick.wav", "wav_cpython_audiodata/wav/pluck-pcm24.wav",
        "wav_wavefile_js/8bit-mulaw-8kHz-noBext-mono-encoded.wav", "wav_wavefile_js/4bit-imaadpcm-8kHz-noBext-mono.wav",
        "derived/3_jackson_12.flac", "derived/3_jackson_12.aiff", "wav_scipy_tests/test-44100Hz-le-1ch-4bytes-rf64.wav",
        "derived/bass-float.wav", "wav_hound/waveformatextensible-24bit-192kHz-mono.wav",
    ]

    @Test func thousandMutationsDecodeOrFailClearly() throws {
        let originals = try AudioRobustnessTests.sources.map { try FilePath.readAll(audioFixtures + $0) }
        var rng = SeededRandom(seed: 44_100)
        var decoded = 0, refused = 0
        for index in 0..<1000 {
            var data = originals[index % originals.count]
            switch rng.nextInt(below: 4) {
            case 0: data = Array(data.prefix(rng.nextInt(below: data.count)))
            case 1:
                // Headers hold the interesting fields: aim half the flips at the first 64 bytes.
                for _ in 0..<(1 + rng.nextInt(below: 6)) {
                    let at = rng.nextInt(below: 2) == 0 ? rng.nextInt(below: min(64, data.count)) : rng.nextInt(below: data.count)
                    data[at] ^= UInt8(1 << rng.nextInt(below: 8))
                }
            case 2:
                let start = rng.nextInt(below: min(128, data.count))
                for i in start..<min(data.count, start + 1 + rng.nextInt(below: 16)) { data[i] = UInt8(truncatingIfNeeded: rng.next()) }
            default:
                data.removeSubrange(rng.nextInt(below: data.count)..<data.count)
                data += (0..<rng.nextInt(below: 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            }
            var config = AudioConfig()
            config.crop = [.start, .center, .random][index % 3]
            do {
                let result = try data.withUnsafeBytes { try AudioDecoding.decode(bytes: $0, config: config, cropSeed: UInt64(index)) }
                #expect(result.mel?.shape == [64, 65])
                #expect(result.mel.map { (try? $0.scalars(as: Float.self))?.allSatisfy(\.isFinite) ?? false } ?? false)
                decoded += 1
            } catch let error as TesseraError {
                #expect(error.code.hasPrefix("audio."), "mutation \(index): \(error)")
                refused += 1
            }
        }
        #expect(decoded > 100 && refused > 100, "\(decoded) decoded, \(refused) refused")
    }

    @Test func tenHourEightChannelHeaderIsReadOnlyAsFarAsNeeded() throws {
        // A sparse file whose header and size both say 10 hours of 8-channel 8 kHz 8-bit audio.
        let path = NSTemporaryDirectory() + "tessera-10h-\(UUID().uuidString).wav"
        let dataBytes: UInt32 = 10 * 3600 * 8000 * 8
        FileManager.default.createFile(atPath: path, contents: Data(wavHeader(channels: 8, rate: 8000, bits: 8, dataBytes: dataBytes)))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.truncate(atOffset: 44 + UInt64(dataBytes))
        try handle.close()
        let decoded = try AudioDecoding.decode(path: path, config: AudioConfig())
        #expect(decoded.info.header.frames == 10 * 3600 * 8000)
        #expect(decoded.info.framesRead < 8000 * 2, "read \(decoded.info.framesRead) frames for a 1 s crop")
        #expect(decoded.mel?.shape == [64, 65])
        // Asked for the whole file, it is refused from the header, before any sample is read.
        var whole = AudioConfig()
        whole.samples = 0
        let error = try #require(throws: TesseraError.self) { try AudioDecoding.decode(path: path, config: whole) }
        #expect(error.code == "audio.too-long")
        #expect(error.message.contains("36000.0 s"))
    }

    @Test func nonFiniteFloatSamplesAreRefused() throws {
        var bytes = wavHeader(channels: 1, rate: 16000, bits: 32, dataBytes: 16, float: true)
        for value: Float in [0.5, .nan, -0.25, .infinity] { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 } }
        var config = AudioConfig()
        config.rate = 0
        config.samples = 0
        let error = try #require(throws: TesseraError.self) {
            try bytes.withUnsafeBytes { try AudioDecoding.decode(bytes: $0, config: config) }
        }
        #expect(error.code == "audio.non-finite")
    }

    @Test func emptyAndFramelessFilesAreClearErrors() throws {
        let empty = try #require(throws: TesseraError.self) {
            try [UInt8]().withUnsafeBytes { try AudioDecoding.decode(bytes: $0, config: AudioConfig()) }
        }
        #expect(empty.code == "audio.empty")
        let header = wavHeader(channels: 1, rate: 8000, bits: 16, dataBytes: 0)
        let frameless = try #require(throws: TesseraError.self) {
            try header.withUnsafeBytes { try AudioDecoding.decode(bytes: $0, config: AudioConfig()) }
        }
        #expect(frameless.code.hasPrefix("audio."))
        let text = Array("this is text, not audio".utf8)
        let foreign = try #require(throws: TesseraError.self) {
            try text.withUnsafeBytes { try AudioDecoding.decode(bytes: $0, config: AudioConfig()) }
        }
        #expect(foreign.code == "audio.unreadable")
        #expect(foreign.message.contains("Format not recognised"))
    }

    /// Reading only a crop's neighbourhood gives the samples of "resample everything, then crop".
    @Test(arguments: [AudioConfig.Crop.start, .center, .random])
    func partialReadsEqualTheWholeFileResample(_ crop: AudioConfig.Crop) throws {
        for file in ["wav_alsa_utils_speech/Front_Center.wav", "wav_go_audio/bass.wav", "fsdd/recordings/9_yweweler_25.wav"] {
            var whole = AudioConfig()
            whole.samples = 0
            whole.melBins = 0
            let full = try #require(try AudioDecoding.decode(path: audioFixtures + file, config: whole).waveform).scalars(as: Float.self)
            var part = whole
            part.samples = 4000
            part.crop = crop
            let decoded = try AudioDecoding.decode(path: audioFixtures + file, config: part, cropSeed: 7)
            let got = try #require(decoded.waveform).scalars(as: Float.self)
            let start: Int
            switch crop {
            case .start: start = 0
            case .center: start = (full.count - 4000) / 2
            case .random:
                var rng = SeededRandom(seed: 7, stream: 0xA0D10)
                start = rng.nextInt(below: full.count - 4000 + 1)
            }
            let expected = Array(full[start..<(start + 4000)])
            let worst = zip(got, expected).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 1e-5, "\(file) \(crop): \(worst)")
            #expect(decoded.info.framesRead < decoded.info.header.frames || decoded.info.header.frames < 40000)
        }
    }

    @Test func shortFilesArePaddedWithZeros() throws {
        var config = AudioConfig()
        config.melBins = 0
        config.samples = 48_000
        let decoded = try AudioDecoding.decode(path: audioFixtures + "fsdd/recordings/0_george_0.wav", config: config)
        let samples = try #require(decoded.waveform).scalars(as: Float.self)
        #expect(samples.count == 48_000)
        #expect(samples.suffix(1000).allSatisfy { $0 == 0 })
    }

    @Test func normalisationReachesItsTarget() throws {
        var config = AudioConfig()
        config.melBins = 0
        config.normalize = .peak
        let peak = try #require(try AudioDecoding.decode(path: audioFixtures + "wav_go_audio/kick.wav", config: config).waveform).scalars(as: Float.self)
        #expect(abs((peak.map { abs($0) }.max() ?? 0) - 1) < 1e-6)
        config.normalize = .rms
        let rms = try #require(try AudioDecoding.decode(path: audioFixtures + "wav_go_audio/kick.wav", config: config).waveform).scalars(as: Float.self)
        let level = (rms.map { Double($0) * Double($0) }.reduce(0, +) / Double(rms.count)).squareRoot()
        #expect(abs(level - 0.1) < 1e-4)
    }
}
