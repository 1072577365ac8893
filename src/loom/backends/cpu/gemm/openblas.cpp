// OpenBLAS (Debian's pthread build) behind gemm/engine.h: float64 always, float32 on CPUs where it wins.
#include <cblas.h>

#include "loom/backends/cpu/gemm/libraries.h"

namespace loom::cpu::gemm::openblas {

namespace {
CBLAS_TRANSPOSE op(bool t) { return t ? CblasTrans : CblasNoTrans; }
int i32(int64_t v) { return static_cast<int>(v); }  // OpenBLAS's cblas takes int (LP64 build)
}  // namespace

void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, op(ta), op(tb), i32(m), i32(n), i32(k), alpha, a, i32(lda), b, i32(ldb), beta, c,
              i32(ldc));
}

void dgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
           const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, op(ta), op(tb), i32(m), i32(n), i32(k), alpha, a, i32(lda), b, i32(ldb), beta, c,
              i32(ldc));
}

void sgemv(bool transpose, int64_t rows, int64_t cols, float alpha, const float* m, int64_t ld, const float* x,
           int64_t incx, float beta, float* y, int64_t incy) {
  cblas_sgemv(CblasRowMajor, op(transpose), i32(rows), i32(cols), alpha, m, i32(ld), x, i32(incx), beta, y,
              i32(incy));
}

void dgemv(bool transpose, int64_t rows, int64_t cols, double alpha, const double* m, int64_t ld, const double* x,
           int64_t incx, double beta, double* y, int64_t incy) {
  cblas_dgemv(CblasRowMajor, op(transpose), i32(rows), i32(cols), alpha, m, i32(ld), x, i32(incx), beta, y,
              i32(incy));
}

void set_threads(int n) { openblas_set_num_threads(n); }

}  // namespace loom::cpu::gemm::openblas
