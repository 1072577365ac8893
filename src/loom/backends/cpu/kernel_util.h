// Helpers shared by CPU kernels: preparing inputs (cast + broadcast) for the strided loops.
#pragma once
#include "loom/ops/creation.h"
#include "loom/ops/registry.h"
#include "loom/ops/shape.h"

namespace loom::cpu {

// `t` cast to `dtype` and broadcast (as a stride-0 view) to `shape`.
inline Tensor prepare(const Tensor& t, DType dtype, const Shape& shape) {
  Tensor out = t.dtype() == dtype ? t : to_dtype(t, dtype);
  return out.sizes() == shape ? out : expand(out, shape);
}

}  // namespace loom::cpu
