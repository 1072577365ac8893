#include "loom/backends/cpu/loops.h"

#include <algorithm>

#include "loom/core/error.h"

namespace loom::cpu {

void make_layout(const Tensor* const* operands, int n, StridedLayout& layout) {
  LOOM_CHECK(n >= 1 && n <= kMaxOperands, Runtime, "elementwise loop: ", n, " operands (at most ", kMaxOperands,
             ")");
  layout.num_operands = n;
  int nd = 0;
  const Shape& shape = operands[0]->sizes();
  int64_t item[kMaxOperands];
  for (int k = 0; k < n; ++k) item[k] = static_cast<int64_t>(operands[k]->itemsize());
  for (int k = 0; k < n; ++k) layout.data[k] = static_cast<char*>(operands[k]->data_ptr());
  // Nothing to visit: a zero-size tensor may have huge other dims, whose byte strides need not fit int64.
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) {
    layout.ndim = 1;
    layout.sizes[0] = 0;
    for (int k = 0; k < n; ++k) layout.strides[k][0] = 0;
    return;
  }
  // Drop size-1 dims, then merge neighbours that are contiguous with each other in every operand.
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = nd > 0;
    for (int k = 0; k < n && merge; ++k)
      merge = layout.strides[k][nd - 1] == operands[k]->strides()[d] * item[k] * shape[d];
    if (merge) {
      layout.sizes[nd - 1] *= shape[d];
      for (int k = 0; k < n; ++k) layout.strides[k][nd - 1] = operands[k]->strides()[d] * item[k];
      continue;
    }
    LOOM_CHECK(nd < kMaxLoopDims, NotImplemented, "elementwise loop: tensors with more than ", kMaxLoopDims,
               " non-contiguous dims are not supported (shape ", shape_str(shape), ")");
    layout.sizes[nd] = shape[d];
    for (int k = 0; k < n; ++k) layout.strides[k][nd] = operands[k]->strides()[d] * item[k];
    ++nd;
  }
  if (nd == 0) {
    layout.sizes[0] = 1;
    for (int k = 0; k < n; ++k) layout.strides[k][0] = 0;
    nd = 1;
  }
  layout.ndim = nd;
}

}  // namespace loom::cpu
