import Testing
@testable import TesseraCore

@Suite struct JSONTests {
    @Test func parsesNestedValuesInOrder() throws {
        let value = try JSONValue.parse(#" {"b": [1, -2.5e3, true, null], "a": {"x": "y\u00e9\n"}} "#)
        #expect(value.objectValue?.keys == ["b", "a"])
        #expect(value["b"]?.arrayValue?.count == 4)
        #expect(value["b"]?.arrayValue?[1].doubleValue == -2500)
        #expect(value["a"]?["x"]?.stringValue == "yé\n")
    }

    @Test func keepsLargeIntegersExact() throws {
        let value = try JSONValue.parse("[9223372036854775807, 9223372036854775808]")
        #expect(value.arrayValue?[0].int64Value == Int64.max)
        #expect(value.arrayValue?[1].int64Value == nil)
    }

    @Test func decodesSurrogatePairs() throws {
        #expect(try JSONValue.parse(#""\ud83d\ude00""#).stringValue == "😀")
        #expect(throws: JSONParseError.self) { try JSONValue.parse(#""\ud83d""#) }
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\":1,}", "01", "1.", "\"\u{01}\"", "{\"a\":1,\"a\":2}", "[1] x", "nul", "{'a':1}"])
    func rejectsMalformedText(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(text) }
    }

    @Test func rejectsDeepNesting() {
        let deep = String(repeating: "[", count: 300) + String(repeating: "]", count: 300)
        #expect(throws: JSONParseError.self) { try JSONValue.parse(deep) }
        #expect((try? JSONValue.parse(Array(deep.utf8), maxDepth: 400)) != nil)
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: JSONParseError.self) { try JSONValue.parse([0x22, 0xFF, 0x22]) }
    }

    @Test func roundTripsThroughTheWriter() throws {
        let original = JSONValue.object(JSONObject([
            ("s", .string("tab\there \"quoted\" \u{1} é 😀")), ("n", .int(-12)), ("d", .double(0.1)),
            ("a", .array([.bool(true), .null])), ("o", .object(JSONObject())),
        ]))
        #expect(try JSONValue.parse(original.serialized()) == original)
        #expect(try JSONValue.parse(original.prettySerialized()) == original)
    }
}
