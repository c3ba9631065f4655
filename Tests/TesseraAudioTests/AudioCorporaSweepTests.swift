import Foundation
import Testing
import TesseraCore
@testable import TesseraAudio

/// Every file of the shared audio corpora (on the team's machines, not in a user's clone): decoded or a
/// clear error, never a crash. Sample equality with soundfile over the same files is measured by
/// tools/conformance/audio_corpora.py and reported in docs/AUDIO-CONFORMANCE.md.
@Suite struct AudioCorporaSweepTests {
    static let corpora = packageRoot + "/../shared/corpora"
    static let present = FileManager.default.fileExists(atPath: corpora + "/fsdd")

    @Test(.enabled(if: present, "../shared/corpora is not on this machine"))
    func everyCorpusFileDecodesOrFailsClearly() throws {
        var files: [String] = []
        for corpus in try FileManager.default.contentsOfDirectory(atPath: AudioCorporaSweepTests.corpora).sorted()
        where corpus.hasPrefix("wav_") || corpus == "fsdd" {
            let root = AudioCorporaSweepTests.corpora + "/" + corpus
            for case let relative as String in FileManager.default.enumerator(atPath: root) ?? FileManager.DirectoryEnumerator() {
                var isFolder: ObjCBool = false
                if FileManager.default.fileExists(atPath: root + "/" + relative, isDirectory: &isFolder), !isFolder.boolValue {
                    files.append(root + "/" + relative)
                }
            }
        }
        #expect(files.count > 3000)
        var decoded = 0
        for path in files {
            do {
                let result = try AudioDecoding.decode(path: path, config: AudioConfig())
                #expect(result.mel?.shape == [64, 65])
                decoded += 1
            } catch let error as TesseraError {
                #expect(error.path == path)
                #expect(error.code.hasPrefix("audio."), "\(path): \(error.code)")
            }
        }
        #expect(decoded > 3000)
    }
}
