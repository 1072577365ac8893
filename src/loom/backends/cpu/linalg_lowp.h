// Matrix products on 16-bit floats (bfloat16, float16) for the CPU gemm driver (linalg.cpp).
#pragma once
#include "loom/core/tensor.h"

namespace loom::cpu {

// out (contiguous, n x m, bfloat16 or float16) = a (n x k) @ b (k x m), any strides, same dtype as out.
// Accumulates in float32 and rounds once at the end, as PyTorch's CPU bf16 matmul does.
void gemm_lowp(const Tensor& a, const Tensor& b, Tensor& out);

}  // namespace loom::cpu
