// What a hand-written GEMM could win on W2's convolution products (docs/PERFORMANCE.md, "A hand-written
// micro-kernel"). Tessera's engine calls single-threaded OpenBLAS once per sample for each convolution
// product, and OpenBLAS packs both operands on every call (the weights once per sample) and, for beta 0,
// zeroes C in a pass of its own. This times, per product shape, over a block of 8 samples:
//
//   openblas   cblas_sgemm on one thread, operands laid out as the engine has them;
//   prepacked  a plain AVX-512 8x32 micro-kernel on operands already in its panel layout: the bound for
//              packing fused into im2col and weights packed once per step;
//   packing    the same kernel packing the per-sample operand on every call (the weights once per block),
//              writing C directly (no beta pass).
//
// Row-major, alpha 1, beta 0, best of 100 runs. The last column is max |custom - OpenBLAS| over C.
//
//   cc -O3 tools/bench/gemm_microkernel.c -o /tmp/gemm-microkernel -lopenblas
//   OPENBLAS_CORETYPE=ZEN /tmp/gemm-microkernel     (as Tessera runs OpenBLAS on Zen 4; needs AVX-512F)
#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern void openblas_set_num_threads(int);

enum { MR = 8, NR = 32, SAMPLES = 8, RUNS = 100 };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// C[MR x NR] (row stride ldc) = sum over k of a[k][0..MR) x b[k][0..NR).
__attribute__((target("avx512f"))) static void micro_kernel(int k, const float *restrict a, const float *restrict b, float *restrict c,
                                                            int ldc) {
    __m512 sum[MR][2];
    for (int i = 0; i < MR; i++) sum[i][0] = sum[i][1] = _mm512_setzero_ps();
    for (int p = 0; p < k; p++) {
        __m512 b0 = _mm512_loadu_ps(b + p * NR), b1 = _mm512_loadu_ps(b + p * NR + 16);
        for (int i = 0; i < MR; i++) {
            __m512 ai = _mm512_set1_ps(a[p * MR + i]);
            sum[i][0] = _mm512_fmadd_ps(ai, b0, sum[i][0]);
            sum[i][1] = _mm512_fmadd_ps(ai, b1, sum[i][1]);
        }
    }
    for (int i = 0; i < MR; i++) {
        _mm512_storeu_ps(c + i * ldc, sum[i][0]);
        _mm512_storeu_ps(c + i * ldc + 16, sum[i][1]);
    }
}

// op(X)[r][c] = x[r * rs + c * cs]: A [m x k] into panels [m/MR][k][MR], B [k x n] into [n/NR][k][NR].
static void pack_a(int m, int k, const float *x, long rs, long cs, float *out) {
    for (int p = 0; p < m / MR; p++)
        for (int q = 0; q < k; q++)
            for (int i = 0; i < MR; i++) out[(p * k + q) * MR + i] = x[(p * MR + i) * rs + q * cs];
}

static void pack_b(int k, int n, const float *x, long rs, long cs, float *out) {
    for (int p = 0; p < n / NR; p++)
        for (int q = 0; q < k; q++)
            for (int j = 0; j < NR; j++) out[(p * k + q) * NR + j] = x[q * rs + (p * NR + j) * cs];
}

static void packed_product(int m, int n, int k, const float *a, const float *b, float *c, int ldc) {
    for (int j = 0; j < n / NR; j++)
        for (int i = 0; i < m / MR; i++) micro_kernel(k, a + i * k * MR, b + j * k * NR, c + i * MR * ldc + j * NR, ldc);
}

static float *random_floats(long n) {
    float *x = malloc(sizeof(float) * n);
    for (long i = 0; i < n; i++) x[i] = rand() / (float)RAND_MAX - 0.5f;
    return x;
}

// A product C_s [m x n] = op(A) op(B_s) per sample s. The weight is A, shared by the samples (transA: the
// weight is stored [k x m]); B_s is sample s's columns at b + s * bStep, row stride ldb; C_s at c + s * cStep.
typedef struct {
    const char *name;
    int m, n, k, transA;
    long ldb, bStep, ldc, cStep;
} Shape;

static void run(const Shape *s) {
    float *a = random_floats((long)s->m * s->k), *b = random_floats(s->ldb * s->k + SAMPLES * s->bStep);
    long cCount = (long)s->ldc * s->m + SAMPLES * s->cStep;
    float *c = calloc(cCount, sizeof(float)), *mine = calloc(cCount, sizeof(float));
    float *packedA = malloc(sizeof(float) * s->m * s->k), *packedB = malloc(sizeof(float) * s->k * s->n * SAMPLES);
    long aRow = s->transA ? 1 : s->k, aCol = s->transA ? s->m : 1;
    double best[3] = {1e9, 1e9, 1e9};
    pack_a(s->m, s->k, a, aRow, aCol, packedA);
    for (int t = 0; t < SAMPLES; t++) pack_b(s->k, s->n, b + t * s->bStep, s->ldb, 1, packedB + (long)t * s->k * s->n);
    for (int r = 0; r < RUNS; r++) {
        double start = now();
        for (int t = 0; t < SAMPLES; t++)
            cblas_sgemm(CblasRowMajor, s->transA ? CblasTrans : CblasNoTrans, CblasNoTrans, s->m, s->n, s->k, 1, a, s->transA ? s->m : s->k,
                        b + t * s->bStep, s->ldb, 0, c + t * s->cStep, s->ldc);
        best[0] = fmin(best[0], now() - start);
        start = now();
        for (int t = 0; t < SAMPLES; t++)
            packed_product(s->m, s->n, s->k, packedA, packedB + (long)t * s->k * s->n, mine + t * s->cStep, s->ldc);
        best[1] = fmin(best[1], now() - start);
        start = now();
        pack_a(s->m, s->k, a, aRow, aCol, packedA);
        for (int t = 0; t < SAMPLES; t++) {
            pack_b(s->k, s->n, b + t * s->bStep, s->ldb, 1, packedB);
            packed_product(s->m, s->n, s->k, packedA, packedB, mine + t * s->cStep, s->ldc);
        }
        best[2] = fmin(best[2], now() - start);
    }
    double worst = 0;
    for (long i = 0; i < cCount; i++) worst = fmax(worst, fabs((double)c[i] - mine[i]));
    double gflop = 2.0 * s->m * s->n * s->k * SAMPLES / 1e9;
    printf("%-34s %4d %5d %4d  %6.1f  %6.1f (%.2fx)  %6.1f (%.2fx)  %.1e\n", s->name, s->m, s->n, s->k, gflop / best[0], gflop / best[1],
           best[0] / best[1], gflop / best[2], best[0] / best[2], worst);
    free(a), free(b), free(c), free(mine), free(packedA), free(packedB);
}

int main(void) {
    if (!__builtin_cpu_supports("avx512f")) {
        fprintf(stderr, "this machine has no AVX-512F\n");
        return 1;
    }
    openblas_set_num_threads(1);
    // Per-sample products of W2's convolutions as the engine issues them (Sources/TesseraEngine/Convolution.swift);
    // the column matrices hold a block of 8 samples side by side (row stride 8 x positions).
    const Shape shapes[] = {
        {"conv2 forward, deconv1 dX", 64, 256, 512, 0, 8 * 256, 256, 256, 64 * 256},
        {"conv2 dCols, deconv1 forward", 512, 256, 64, 1, 256, 64 * 256, 8 * 256, 256},
        {"conv1 forward, deconv2 dX", 32, 1024, 48, 0, 8 * 1024, 1024, 1024, 32 * 1024},
        {"deconv2 forward", 48, 1024, 32, 1, 1024, 32 * 1024, 8 * 1024, 1024},
    };
    printf("GFLOP/s, one thread, %d samples per block\n", SAMPLES);
    printf("%-34s %4s %5s %4s  %6s  %15s  %15s  %s\n", "product", "M", "N", "K", "openblas", "prepacked", "packing", "max diff");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) run(&shapes[i]);
    return 0;
}
