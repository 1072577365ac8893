// The libraries behind gemm/engine.h, one namespace each (openblas.cpp, onednn.cpp); only engine.cpp calls them.
#pragma once
#include <cstdint>

#include "loom/core/dtype.h"

namespace loom::cpu::gemm::openblas {

void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
void dgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
           const double* b, int64_t ldb, double beta, double* c, int64_t ldc);
void sgemv(bool transpose, int64_t rows, int64_t cols, float alpha, const float* m, int64_t ld, const float* x,
           int64_t incx, float beta, float* y, int64_t incy);
void dgemv(bool transpose, int64_t rows, int64_t cols, double alpha, const double* m, int64_t ld, const double* x,
           int64_t incx, double beta, double* y, int64_t incy);
// OpenBLAS keeps its own pthread pool: its thread count, set from loom's.
void set_threads(int n);

}  // namespace loom::cpu::gemm::openblas

namespace loom::cpu::gemm::onednn {

void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
bool gemm_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const uint16_t* a, int64_t lda,
               const uint16_t* b, int64_t ldb, float beta, DType c_type, void* c, int64_t ldc);

}  // namespace loom::cpu::gemm::onednn
