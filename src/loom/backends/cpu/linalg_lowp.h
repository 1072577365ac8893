// Matrix products on 16-bit floats (bfloat16, float16) for the CPU gemm driver (linalg.cpp).
#pragma once
#include "loom/core/tensor.h"

namespace loom::cpu {

// A matrix operand in BLAS terms: row-major with leading dimension `ld`, possibly transposed.
struct BlasMatrix {
  Tensor data;
  bool transposed = false;
  int64_t ld = 0;
};

// Uses the strides as they are when BLAS can read them; otherwise makes the matrix contiguous (linalg.cpp).
BlasMatrix as_blas(const Tensor& m);

// out (contiguous, n x m, bfloat16 or float16) = a (n x k) @ b (k x m), any strides, same dtype as out.
// Accumulates in float32 and rounds once at the end, as PyTorch's CPU bf16 matmul does.
void gemm_lowp(const Tensor& a, const Tensor& b, Tensor& out);

// out32 (contiguous float32, n x m) = alpha * a @ b + beta * out32 for 16-bit a and b (addmm/linear: the caller
// rounds out32 once).
void gemm_lowp_accumulate(const Tensor& a, const Tensor& b, Tensor& out32, float alpha, float beta);

}  // namespace loom::cpu
