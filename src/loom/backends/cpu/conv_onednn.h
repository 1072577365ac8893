// conv2d on oneDNN's direct convolutions (float32), for the CPUs where they beat loom's im2col + GEMM kernels.
//
// Measured on a 2-vCPU Intel Sapphire Rapids (docs/performance.md): oneDNN's AVX-512 JIT convolutions, reorders
// to and from its blocked layouts included, ran the suite's 3x3 conv2d forward+backward cases in 0.63-0.78 of
// loom's own time. On AVX2-only CPUs loom keeps its own packed kernels (0.61-1.00 of PyTorch's oneDNN there).
#pragma once
#include "loom/backends/cpu/conv_geometry.h"
#include "loom/core/tensor.h"

namespace loom::cpu {

// True when conv2d of this dtype runs on oneDNN: float32, CPU capability avx512, and LOOM_CONV not "loom".
bool onednn_conv_wanted(DType dtype);

// out (N, O, oh, ow) = conv2d(x, w) + bias (bias may be undefined); contiguous float32 tensors.
void onednn_conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& out, const Geo& g);

// grad_input (when need_x) and grad_weight (when need_w) of conv2d; contiguous float32 tensors.
void onednn_conv2d_backward(const Tensor& gout, const Tensor& x, const Tensor& w, Tensor& gx, Tensor& gw,
                            const Geo& g, bool need_x, bool need_w);

}  // namespace loom::cpu
