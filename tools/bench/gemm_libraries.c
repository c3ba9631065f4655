// W2's matrix-product shapes timed on one GEMM library, to compare the libraries Debian packages
// (docs/PERFORMANCE.md, "Other matrix-multiply libraries"). Row-major, alpha 1, beta 0; best of three runs
// of at least 0.2 s per shape, on 1 and 2 threads. Build one of:
//
//   cc -O2 -DWITH_OPENBLAS tools/bench/gemm_libraries.c -o /tmp/gemm-openblas -lopenblas
//       (run as OPENBLAS_CORETYPE=ZEN /tmp/gemm-openblas on AMD Zen 4, as Tessera does)
//   apt-get install libblis-pthread-dev
//   cc -O2 -DWITH_BLIS -I/usr/include/x86_64-linux-gnu/blis-pthread tools/bench/gemm_libraries.c -o /tmp/gemm-blis
//       -L/usr/lib/x86_64-linux-gnu/blis-pthread -lblis -lpthread -lm   (one line with the above)
//       (run with LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/blis-pthread)
//   apt-get install libdnnl-dev
//   cc -O2 -fopenmp -DWITH_DNNL tools/bench/gemm_libraries.c -o /tmp/gemm-dnnl -ldnnl
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(WITH_OPENBLAS)
#include <cblas.h>
extern void openblas_set_num_threads(int);
static const char *library = "OpenBLAS";
static void set_threads(int n) { openblas_set_num_threads(n); }
static void gemm(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1, a, lda, b, ldb, 0, c, ldc);
}
#elif defined(WITH_BLIS)
#include <blis.h>
static const char *library = "BLIS";
static void set_threads(int n) { bli_thread_set_num_threads(n); }
static void gemm(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc) {
    float one = 1, zero = 0;
    bli_sgemm(ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, m, n, k, &one, (float *)a, lda, 1,
              (float *)b, ldb, 1, &zero, c, ldc, 1);
}
#elif defined(WITH_DNNL)
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
static const char *library = "oneDNN";
static void set_threads(int n) { omp_set_num_threads(n); }
static void gemm(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc) {
    dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
}
#else
#error "define WITH_OPENBLAS, WITH_BLIS or WITH_DNNL"
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

typedef struct { const char *name; int ta, tb, m, n, k; } Shape;

int main(void) {
    // Tessera's orientation of each product (batch 64; convolutions in blocks of 16 samples).
    const Shape shapes[] = {
        {"conv2 forward", 0, 0, 64, 16384, 512},        {"conv2 weight grad", 0, 1, 64, 512, 16384},
        {"conv2 column grad", 1, 0, 512, 16384, 64},    {"deconv1 forward", 1, 0, 512, 16384, 64},
        {"deconv1 input grad", 0, 0, 64, 16384, 512},   {"conv1 forward", 0, 0, 32, 65536, 48},
        {"conv1 weight grad", 0, 1, 32, 48, 65536},     {"deconv2 forward", 1, 0, 48, 65536, 32},
        {"image.fc forward", 0, 1, 64, 256, 16384},     {"image.fc weight grad", 1, 0, 256, 16384, 64},
        {"image.fc input grad", 0, 0, 64, 16384, 256},  {"image.dec.fc forward", 0, 1, 64, 16384, 256},
        {"audio.fc1 forward", 0, 1, 64, 512, 4160},     {"text.dec.out forward", 0, 1, 960, 4096, 64},
    };
    const long elements = 20000000;
    float *a = malloc(sizeof(float) * elements), *b = malloc(sizeof(float) * elements), *c = malloc(sizeof(float) * elements);
    if (!a || !b || !c) return 1;
    for (long i = 0; i < elements; i++) { a[i] = (i % 7) * 0.1f; b[i] = (i % 5) * 0.1f; c[i] = 0; }
    printf("%s, GFLOP/s\n%-22s %8s %8s\n", library, "shape", "1 thread", "2 threads");
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const Shape x = shapes[s];
        double rate[2];
        for (int threads = 1; threads <= 2; threads++) {
            set_threads(threads);
            int lda = x.ta ? x.m : x.k, ldb = x.tb ? x.k : x.n;
            double best = 1e9;
            for (int run = 0; run < 3; run++) {
                int calls = 0;
                double start = now(), elapsed;
                do {
                    gemm(x.ta, x.tb, x.m, x.n, x.k, a, lda, b, ldb, c, x.n);
                    calls++;
                    elapsed = now() - start;
                } while (elapsed < 0.2);
                if (elapsed / calls < best) best = elapsed / calls;
            }
            rate[threads - 1] = 2.0 * x.m * x.n * x.k / best / 1e9;
        }
        printf("%-22s %8.1f %8.1f\n", x.name, rate[0], rate[1]);
    }
    return 0;
}
