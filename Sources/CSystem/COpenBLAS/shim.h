// pkg-config "openblas" adds the multiarch openblas-pthread folder, where this cblas.h also declares
// openblas_set_num_threads and friends (the generic "blas" .pc file would link -lblas, which lacks them).
#include <cblas.h>
