// Element types of tensors, named as the safetensors format names them.

/// The element type of a tensor. Raw values are the safetensors dtype strings.
public enum DType: String, Sendable, CaseIterable, Codable {
    case bool = "BOOL"
    case uint8 = "U8"
    case int8 = "I8"
    case uint16 = "U16"
    case int16 = "I16"
    case uint32 = "U32"
    case int32 = "I32"
    case uint64 = "U64"
    case int64 = "I64"
    case float16 = "F16"
    case bfloat16 = "BF16"
    case float32 = "F32"
    case float64 = "F64"
    case float8E4M3 = "F8_E4M3"
    case float8E5M2 = "F8_E5M2"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .bool, .uint8, .int8, .float8E4M3, .float8E5M2: return 1
        case .uint16, .int16, .float16, .bfloat16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64: return 8
        }
    }

    /// Whether values of this type can be NaN or infinite.
    public var isFloatingPoint: Bool {
        switch self {
        case .float16, .bfloat16, .float32, .float64, .float8E4M3, .float8E5M2: return true
        default: return false
        }
    }

    /// The lower-case name used in the CLI and the docs (`float32`, `uint8`, ...).
    public var displayName: String {
        switch self {
        case .bool: return "bool"
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .uint16: return "uint16"
        case .int16: return "int16"
        case .uint32: return "uint32"
        case .int32: return "int32"
        case .uint64: return "uint64"
        case .int64: return "int64"
        case .float16: return "float16"
        case .bfloat16: return "bfloat16"
        case .float32: return "float32"
        case .float64: return "float64"
        case .float8E4M3: return "float8_e4m3"
        case .float8E5M2: return "float8_e5m2"
        }
    }
}

/// A Swift type that can be the element of a tensor, with typed access.
public protocol TensorScalar: Sendable {
    static var dtype: DType { get }
    /// The value as a Double (exact for every supported type except the largest 64-bit integers).
    var doubleValue: Double { get }
}

extension UInt8: TensorScalar {
    public static var dtype: DType { .uint8 }
    public var doubleValue: Double { Double(self) }
}
extension Int8: TensorScalar {
    public static var dtype: DType { .int8 }
    public var doubleValue: Double { Double(self) }
}
extension UInt16: TensorScalar {
    public static var dtype: DType { .uint16 }
    public var doubleValue: Double { Double(self) }
}
extension Int16: TensorScalar {
    public static var dtype: DType { .int16 }
    public var doubleValue: Double { Double(self) }
}
extension UInt32: TensorScalar {
    public static var dtype: DType { .uint32 }
    public var doubleValue: Double { Double(self) }
}
extension Int32: TensorScalar {
    public static var dtype: DType { .int32 }
    public var doubleValue: Double { Double(self) }
}
extension UInt64: TensorScalar {
    public static var dtype: DType { .uint64 }
    public var doubleValue: Double { Double(self) }
}
extension Int64: TensorScalar {
    public static var dtype: DType { .int64 }
    public var doubleValue: Double { Double(self) }
}
extension Float16: TensorScalar {
    public static var dtype: DType { .float16 }
    public var doubleValue: Double { Double(self) }
}
extension Float: TensorScalar {
    public static var dtype: DType { .float32 }
    public var doubleValue: Double { Double(self) }
}
extension Double: TensorScalar {
    public static var dtype: DType { .float64 }
    public var doubleValue: Double { self }
}
