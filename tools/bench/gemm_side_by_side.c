// Two ways to spend two cores on W2's matrix products (docs/PERFORMANCE.md, "Products side by side"):
// each product on two OpenBLAS threads, one after the other, against the same work as two single-threaded
// products running at the same time on two threads of our own (what Tessera's engine does). For the
// convolutions the two products are two blocks of samples; for the linear layers, the two halves of one
// product's output, split across its longer side. Row-major, alpha 1, beta 0; best of five runs per shape.
//
//   cc -O2 tools/bench/gemm_side_by_side.c -o /tmp/gemm-side-by-side -lopenblas -lpthread
//   OPENBLAS_CORETYPE=ZEN OPENBLAS_THREAD_TIMEOUT=4 /tmp/gemm-side-by-side     (as Tessera runs OpenBLAS on Zen 4)
#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

extern void openblas_set_num_threads(int);

typedef struct {
    int ta, tb, m, n, k, lda, ldb, ldc;
    const float *a, *b;
    float *c;
    int repeats;
} Product;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void run(const Product *p) {
    for (int r = 0; r < p->repeats; r++)
        cblas_sgemm(CblasRowMajor, p->ta ? CblasTrans : CblasNoTrans, p->tb ? CblasTrans : CblasNoTrans, p->m, p->n, p->k, 1,
                    p->a, p->lda, p->b, p->ldb, 0, p->c, p->ldc);
}

static void *run_thread(void *p) {
    run(p);
    return NULL;
}

static float *filled(size_t count) {
    float *x = aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64);
    for (size_t i = 0; i < count; i++) x[i] = (float)(rand() % 1000) / 1000.0f - 0.5f;
    return x;
}

static Product product(int ta, int tb, int m, int n, int k, const float *a, const float *b, float *c, int repeats) {
    Product p = {ta, tb, m, n, k, ta ? m : k, tb ? k : n, n, a, b, c, repeats};
    return p;
}

// Seconds for `first` and `second` one after the other on two OpenBLAS threads, and side by side on one each.
static void time_pair(const Product *first, const Product *second, double *sequential, double *side_by_side) {
    *sequential = *side_by_side = 1e30;
    for (int round = 0; round < 5; round++) {
        openblas_set_num_threads(2);
        double t0 = now();
        run(first);
        run(second);
        double t = now() - t0;
        if (t < *sequential) *sequential = t;
        openblas_set_num_threads(1);
        pthread_t thread;
        t0 = now();
        pthread_create(&thread, NULL, run_thread, (void *)second);
        run(first);
        pthread_join(thread, NULL);
        t = now() - t0;
        if (t < *side_by_side) *side_by_side = t;
    }
}

int main(void) {
    // Convolutions: one block's product (the W2 layer, a block of its samples), twice, on separate data.
    struct { const char *name; int ta, tb, m, n, k; } blocks[] = {
        {"conv1 forward (32 x 10 samples*1024 x 48)", 0, 0, 32, 10240, 48},
        {"conv1 weight gradient", 0, 1, 32, 48, 10240},
        {"conv2 forward (64 x 4 samples*256 x 512)", 0, 0, 64, 1024, 512},
        {"conv2 weight gradient", 0, 1, 64, 512, 1024},
        {"conv2 column gradient", 1, 0, 512, 1024, 64},
        {"deconv2 input gradient", 0, 0, 32, 10240, 48},
    };
    // Linear layers at batch 64: the whole product, split in two halves of its output.
    struct { const char *name; int ta, tb, m, n, k; } linears[] = {
        {"image.fc forward", 0, 1, 64, 256, 16384},     {"image.fc weight gradient", 1, 0, 256, 16384, 64},
        {"image.fc input gradient", 0, 0, 64, 16384, 256}, {"image.dec.fc forward", 0, 1, 64, 16384, 256},
        {"image.dec.fc weight gradient", 1, 0, 16384, 256, 64}, {"audio.fc1 forward", 0, 1, 64, 512, 4160},
        {"audio.fc1 weight gradient", 1, 0, 512, 4160, 64}, {"audio.dec.fc2 forward", 0, 1, 64, 4160, 512},
        {"audio.dec.fc2 weight gradient", 1, 0, 4160, 512, 64}, {"audio.dec.fc2 input gradient", 0, 0, 64, 512, 4160},
        {"text logits forward (960 rows)", 0, 1, 960, 4096, 64}, {"text logits weight gradient", 1, 0, 4096, 64, 960},
        {"text logits input gradient", 0, 0, 960, 64, 4096},
    };
    double total_sequential = 0, total_side = 0;
    printf("%-44s %14s %14s %7s\n", "products (two of each)", "2 threads each", "side by side", "ratio");
    for (size_t s = 0; s < sizeof blocks / sizeof blocks[0]; s++) {
        int m = blocks[s].m, n = blocks[s].n, k = blocks[s].k, repeats = 10;
        Product p[2];
        for (int i = 0; i < 2; i++)
            p[i] = product(blocks[s].ta, blocks[s].tb, m, n, k, filled((size_t)m * k), filled((size_t)k * n), filled((size_t)m * n), repeats);
        double sequential, side;
        time_pair(&p[0], &p[1], &sequential, &side);
        double flop = 2.0 * 2.0 * m * n * k * repeats;
        printf("%-44s %9.0f GF/s %9.0f GF/s %6.2fx\n", blocks[s].name, flop / sequential / 1e9, flop / side / 1e9, sequential / side);
        total_sequential += sequential / repeats;
        total_side += side / repeats;
        for (int i = 0; i < 2; i++) { free((void *)p[i].a); free((void *)p[i].b); free(p[i].c); }
    }
    printf("%-44s %14s %14s %7s\n", "linear products (whole, or two halves)", "whole, 2 thr.", "halves", "ratio");
    for (size_t s = 0; s < sizeof linears / sizeof linears[0]; s++) {
        int ta = linears[s].ta, tb = linears[s].tb, m = linears[s].m, n = linears[s].n, k = linears[s].k, repeats = 10;
        float *a = filled((size_t)m * k), *b = filled((size_t)k * n), *c = filled((size_t)m * n);
        Product whole = product(ta, tb, m, n, k, a, b, c, repeats), empty = whole, half[2];
        empty.repeats = 0;
        if (n >= m) {
            int first = n / 2;
            half[0] = product(ta, tb, m, first, k, a, b, c, repeats);
            half[1] = product(ta, tb, m, n - first, k, a, tb ? b + (size_t)first * k : b + first, c + first, repeats);
            half[0].ldb = half[1].ldb = whole.ldb;
            half[0].ldc = half[1].ldc = n;
        } else {
            int first = m / 2;
            half[0] = product(ta, tb, first, n, k, a, b, c, repeats);
            half[1] = product(ta, tb, m - first, n, k, ta ? a + first : a + (size_t)first * k, b, c + (size_t)first * n, repeats);
            half[0].lda = half[1].lda = whole.lda;
        }
        double sequential, unused, side;
        time_pair(&whole, &empty, &sequential, &unused);
        time_pair(&half[0], &half[1], &unused, &side);
        double flop = 2.0 * m * n * k * repeats;
        printf("%-44s %9.0f GF/s %9.0f GF/s %6.2fx\n", linears[s].name, flop / sequential / 1e9, flop / side / 1e9, sequential / side);
        total_sequential += sequential / repeats;
        total_side += side / repeats;
        free(a); free(b); free(c);
    }
    printf("all of the above: %.1f ms on two OpenBLAS threads each, %.1f ms side by side (%.2fx)\n", total_sequential * 1e3, total_side * 1e3,
           total_sequential / total_side);
    return 0;
}
