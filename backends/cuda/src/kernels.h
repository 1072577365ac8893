// Registration of the CUDA kernels, and the helpers the loom side of them shares.
#pragma once
#include <vector>

#include "launch.h"
#include "loom/core/tensor.h"
#include "loom/ops/registry.h"

namespace loom_cuda {

void register_kernels(loom::DeviceType type);
void register_matmul_kernels(loom::DeviceType type);  // matmul.cpp (cuBLAS)

ScalarType scalar_type(loom::DType dtype);
// The geometry of an elementwise loop over `shape` (operand 0 first; each tensor already broadcast to `shape`, or
// undefined for a host-number operand, which gets stride 0), dims coalesced.
Geometry make_geometry(const loom::Shape& shape, const std::vector<loom::Tensor>& operands);

}  // namespace loom_cuda
