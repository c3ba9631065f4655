import Foundation
import TesseraCore

let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

let imageFixtures = packageRoot + "/fixtures/images/"

/// One case of fixtures/images/goldens.json (made by tools/fixtures/make_image_goldens.py with Pillow).
struct GoldenCase: Decodable, Sendable, CustomStringConvertible {
    let name: String
    let file: String
    let config: [String: JSONAny]
    let expect: String
    let tolerance: Int
    var description: String { name }
}


/// A JSON value for the config dictionary (numbers, strings, booleans).
enum JSONAny: Decodable, Encodable, Sendable {
    case int(Int), double(Double), string(String), bool(Bool)
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else { self = .string(try c.decode(String.self)) }
    }
    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .bool(let b): try c.encode(b)
        }
    }
}

struct GoldenFile: Decodable {
    let cases: [GoldenCase]
}

let goldenCases: [GoldenCase] = {
    guard let data = FileManager.default.contents(atPath: imageFixtures + "goldens.json"),
          let file = try? JSONDecoder().decode(GoldenFile.self, from: data) else { return [] }
    return file.cases
}()
