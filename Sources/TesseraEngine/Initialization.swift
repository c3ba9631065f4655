// PyTorch's default initialisations, drawn from Tessera's seeded generator: the same distributions as a
// freshly constructed PyTorch layer (use --init to start from the very same weights).
import TesseraCore

extension ParameterSet {
    /// U(-bound, bound) into `ref`.
    func uniform(_ ref: ParameterRef, bound: Double, _ rng: inout SeededRandom) {
        let p = value(ref)
        for i in 0..<ref.count { p[i] = T((rng.nextUnit() * 2 - 1) * bound) }
    }

    /// N(0, 1) into `ref` (nn.Embedding's default).
    func normal(_ ref: ParameterRef, _ rng: inout SeededRandom) {
        let p = value(ref)
        for i in 0..<ref.count { p[i] = T(rng.nextGaussian()) }
    }

    /// `kaiming_uniform_(a=sqrt(5))` on a weight with `fanIn` inputs gives U(-1/sqrt(fan_in), 1/sqrt(fan_in));
    /// PyTorch's bias default is the same bound.
    func pytorchDefault(weight: ParameterRef, bias: ParameterRef?, fanIn: Int, _ rng: inout SeededRandom) {
        let bound = 1 / Double(max(fanIn, 1)).squareRoot()
        uniform(weight, bound: bound, &rng)
        if let bias { uniform(bias, bound: bound, &rng) }
    }
}
