// The tool's version, recorded in every manifest and checkpoint.

/// Tessera's version.
public enum Tessera {
    /// Semantic version of this build.
    public static let version = "0.1.0"
}
