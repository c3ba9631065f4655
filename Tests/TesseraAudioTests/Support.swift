import Foundation
import TesseraCore

let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

let audioFixtures = packageRoot + "/fixtures/audio/"

/// fixtures/audio/goldens.json, made by tools/fixtures/make_audio_goldens.py with soundfile, soxr, librosa.
struct AudioGoldens: Decodable {
    struct Read: Decodable, Sendable, CustomStringConvertible {
        let file: String
        let frames: Int?
        let channels: Int?
        let rate: Int?
        let sha256: String?
        let error: String?
        let lossy: Bool?
        var description: String { file }
    }
    struct Transform: Decodable, Sendable, CustomStringConvertible {
        let name: String
        let file: String
        let kind: String
        let config: [String: ConfigValue]
        var description: String { name }
    }
    let reads: [Read]
    let transforms: [Transform]
}

enum ConfigValue: Codable, Sendable {
    case int(Int), double(Double), string(String)
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else { self = .string(try c.decode(String.self)) }
    }
    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        }
    }
}

let audioGoldens: AudioGoldens? = {
    guard let data = FileManager.default.contents(atPath: audioFixtures + "goldens.json") else { return nil }
    return try? JSONDecoder().decode(AudioGoldens.self, from: data)
}()
