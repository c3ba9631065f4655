import Foundation
import Testing
import TesseraCore
import TesseraTestSupport

@Suite struct DecodeTextCLITests {
    @Test func summaryShowAndTensors() throws {
        let folder = try temporaryFolder()
        let text = folder + "/caption.txt"
        try Data("Hello, world!".utf8).write(to: URL(fileURLWithPath: text))
        let tokenizer = packageRoot + "/fixtures/text/tokenizers/bert-wordpiece.json"
        let out = folder + "/t.safetensors"
        let result = try tessera(["decode", text, "--tokenizer", tokenizer, "--text-length", "8", "--add-special", "--show", "--out", out])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == """
            \(text): 7 tokens (tokenizer.json \(tokenizer)) -> text_ids [8], text_len 7
            "[CLS]" "hell" "##o" "," "world" "!" "[SEP]"
            wrote text_ids, text_len to \(out)

            """)
        let file = try SafetensorsFile(path: out)
        #expect(try file.tensor("text_ids").scalars(as: Int32.self).last == 0)
        #expect(try file.tensor("text_len").scalars(as: Int32.self) == [7])
        #expect(file.metadata["tokenizer"]?.contains("sha256") == true)
    }

    @Test func badInputIsOneLineOnStderr() throws {
        let folder = try temporaryFolder()
        let bad = folder + "/bad.txt"
        try Data([0x61, 0xC3]).write(to: URL(fileURLWithPath: bad))
        let result = try tessera(["decode", bad])
        #expect(result.status == 1)
        #expect(result.stderr == "tessera: \(bad): invalid UTF-8 near byte 1 (--invalid-utf8 replace turns it into U+FFFD)\n")
        let unsupported = folder + "/tok.json"
        try Data(#"{"model": {"type": "CharLevel", "vocab": {}}}"#.utf8).write(to: URL(fileURLWithPath: unsupported))
        let tokenizerError = try tessera(["decode", bad, "--tokenizer", unsupported])
        #expect(tokenizerError.status == 1)
        #expect(tokenizerError.stderr.hasPrefix("tessera: \(unsupported): unsupported model type \"CharLevel\""))
    }
}
