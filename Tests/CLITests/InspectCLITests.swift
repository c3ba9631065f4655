import Foundation
import Testing
import TesseraCore
import TesseraTestSupport

@Suite struct InspectCLITests {
    let fixture = packageRoot + "/fixtures/safetensors/python_torch.safetensors"

    @Test func printsTheTableOfAPythonWrittenFile() throws {
        let result = try tessera(["inspect", fixture])
        #expect(result.status == 0)
        let expected = """
        \(fixture): 3 tensors, 316 bytes (header 232)
        name  dtype  shape   bytes
        f32   F32    [2, 3]     24
        bf16  BF16   [4, 5]     40
        f16   F16    [6]        12
        metadata:
          written_by: safetensors.torch

        """
        #expect(result.stdout == expected)
    }

    @Test func jsonOutputParsesAndAgrees() throws {
        let result = try tessera(["inspect", "--json", fixture])
        #expect(result.status == 0)
        let json = try JSONValue.parse(result.stdout)
        let tensors = try #require(json["tensors"]?.arrayValue)
        #expect(tensors.compactMap { $0["name"]?.stringValue } == ["f32", "bf16", "f16"])
        #expect(tensors[1]["shape"] == .array([.int(4), .int(5)]))
        #expect(json["metadata"]?["written_by"]?.stringValue == "safetensors.torch")
        #expect(json["file_bytes"]?.intValue == 316)
    }

    @Test func badInputIsOneLineOnStderrAndExitOne() throws {
        let folder = try temporaryFolder()
        let path = folder + "/empty.safetensors"
        FileManager.default.createFile(atPath: path, contents: Data())
        let result = try tessera(["inspect", path])
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr == "tessera: \(path): not a safetensors file: the file is empty\n")
        let missing = try tessera(["inspect", folder + "/absent.safetensors"])
        #expect(missing.status == 1)
        #expect(missing.stderr.hasPrefix("tessera: \(folder)/absent.safetensors: cannot open: No such file"))
    }

    @Test func versionAndHelp() throws {
        #expect(try tessera(["--version"]).stdout == Tessera.version + "\n")
        let help = try tessera(["--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("inspect"))
    }
}
