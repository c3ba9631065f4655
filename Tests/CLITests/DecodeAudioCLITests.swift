import Foundation
import Testing
import TesseraCore
import TesseraTestSupport

@Suite struct DecodeAudioCLITests {
    let audio = packageRoot + "/fixtures/audio/"

    @Test func summaryLineAndTensors() throws {
        let out = try temporaryFolder() + "/a.safetensors"
        let path = audio + "wav_go_audio/bass.wav"
        let result = try tessera(["decode", path, "--audio-waveform", "--out", out])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "\(path): WAV (Microsoft), Signed 24 bit PCM, 44100 Hz, 2 channels, 0.543 s -> audio [1, 16000] -> audio_mel [64, 65]\nwrote audio, audio_mel to \(out)\n")
        let file = try SafetensorsFile(path: out)
        #expect(try file.tensor("audio").shape == [1, 16000])
        #expect(try file.tensor("audio_mel").dtype == .float32)
    }

    @Test func optionsReachTheTransform() throws {
        let out = try temporaryFolder() + "/a.safetensors"
        let result = try tessera(["decode", audio + "wav_go_audio/bass.wav", "--out", out, "--audio-rate", "8000",
                                  "--audio-seconds", "0.25", "--audio-channels", "keep", "--mel-bins", "0"])
        #expect(result.status == 0, "\(result.stderr)")
        let file = try SafetensorsFile(path: out)
        #expect(file.names == ["audio"])
        #expect(try file.tensor("audio").shape == [2, 2000])
        let mel = try tessera(["decode", audio + "fsdd/recordings/0_george_0.wav", "--out", out, "--audio-rate", "8000",
                               "--mel-bins", "40", "--n-fft", "256", "--hop", "80", "--mel-scale", "htk", "--mel-output", "db"])
        #expect(mel.status == 0, "\(mel.stderr)")
        #expect(try SafetensorsFile(path: out).tensor("audio_mel").shape == [40, 201])
    }

    @Test func badInputIsOneLineOnStderr() throws {
        let path = audio + "wav_hound/fuzz/oom-48ae4cd061ff8578ad3f23dc87624bd365cf5216.wav"
        let result = try tessera(["decode", path])
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr == "tessera: \(path): not a readable audio file: Error in WAV file. No 'data' chunk marker.\n")
        let nyquist = try tessera(["decode", audio + "wav_go_audio/kick.wav", "--audio-rate", "8000", "--fmax", "6000"])
        #expect(nyquist.status == 1)
        #expect(nyquist.stderr == "tessera: --fmax 6000.0 is above the Nyquist frequency 4000\n")
    }
}
