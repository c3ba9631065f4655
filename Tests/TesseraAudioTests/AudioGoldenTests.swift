import Foundation
import Testing
import TesseraCore
@testable import TesseraAudio

/// Tessera against soundfile (exact samples), soxr (1e-5) and librosa (1e-3) on real audio fixtures.
@Suite struct AudioGoldenTests {
    static let goldens: SafetensorsFile? = try? SafetensorsFile(path: audioFixtures + "goldens.safetensors")

    /// Samples as soundfile reads them: native rate, every channel, the whole file.
    static var rawConfig: AudioConfig {
        var config = AudioConfig()
        config.rate = 0
        config.samples = 0
        config.melBins = 0
        config.channels = .keep
        return config
    }

    @Test func goldensArePresent() {
        #expect((audioGoldens?.reads.count ?? 0) > 80)
        #expect((audioGoldens?.transforms.count ?? 0) > 30)
        #expect(AudioGoldenTests.goldens != nil)
    }

    @Test(arguments: audioGoldens?.reads ?? [])
    func readsExactlyWhatSoundfileReads(_ golden: AudioGoldens.Read) throws {
        let path = audioFixtures + golden.file
        if golden.error != nil {
            let error = try #require(throws: TesseraError.self, "soundfile refuses it: \(golden.error ?? "")") {
                try AudioDecoding.decode(path: path, config: AudioGoldenTests.rawConfig)
            }
            #expect(error.path == path)
            #expect(error.code.hasPrefix("audio."))
            return
        }
        let decoded: DecodedAudio
        do {
            decoded = try AudioDecoding.decode(path: path, config: AudioGoldenTests.rawConfig)
        } catch let error as TesseraError where error.code == "audio.truncated" {
            // Truncated files are refused by default (soundfile reads what is there); accepted, they must
            // give soundfile's samples. Only the scipy early-EOF file is truncated among the fixtures.
            #expect(golden.file.contains("early-eof"), "\(golden.file) is unexpectedly refused as truncated")
            var accepting = AudioGoldenTests.rawConfig
            accepting.acceptTruncated = true
            decoded = try AudioDecoding.decode(path: path, config: accepting)
        }
        let waveform = try #require(decoded.waveform)
        #expect(waveform.shape == [golden.channels ?? 0, golden.frames ?? 0])
        #expect(decoded.info.header.rate == golden.rate)
        // Back to soundfile's [frames, channels] interleaving.
        let planar = try waveform.scalars(as: Float.self)
        let channels = waveform.shape[0], frames = waveform.shape[1]
        var interleaved = [Float](repeating: 0, count: planar.count)
        for c in 0..<channels { for f in 0..<frames { interleaved[f * channels + c] = planar[c * frames + f] } }
        if golden.lossy == true {
            let expected = try #require(try AudioGoldenTests.goldens?.tensor("read|\(golden.file)"))
            let got = try Tensor(shape: expected.shape, scalars: interleaved)
            #expect(try Tensor.maxAbsDifference(got, expected) <= 1e-6)
        } else {
            #expect(interleaved.withUnsafeBytes { SHA256Digest.hex($0) } == golden.sha256, "\(golden.file): samples differ from soundfile's")
        }
    }

    @Test(arguments: audioGoldens?.transforms ?? [])
    func matchesSoxrAndLibrosa(_ golden: AudioGoldens.Transform) throws {
        var config = try JSONDecoder().decode(AudioConfig.self, from: JSONEncoder().encode(golden.config))
        config.rate = 16_000
        config.channels = .mono
        let decoded = try AudioDecoding.decode(path: audioFixtures + golden.file, config: config)
        let expected = try #require(try AudioGoldenTests.goldens?.tensor(golden.name))
        switch golden.kind {
        case "resample":
            let waveform = try #require(decoded.waveform)
            #expect(waveform.shape == [1, expected.shape[0]], "resampled length")
            let got = try waveform.reshaped([expected.shape[0]])
            #expect(try Tensor.maxAbsDifference(got, expected) <= 1e-5, "\(golden.name)")
        default:
            let mel = try #require(decoded.mel)
            #expect(mel.shape == expected.shape)
            #expect(try Tensor.maxAbsDifference(mel, expected) <= 1e-3, "\(golden.name)")
        }
    }
}
