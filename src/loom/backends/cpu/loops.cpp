#include "loom/backends/cpu/loops.h"

namespace loom::cpu {

StridedLayout make_layout(const std::vector<const Tensor*>& operands) {
  StridedLayout layout;
  layout.num_operands = static_cast<int>(operands.size());
  const Shape& shape = operands[0]->sizes();
  // Drop size-1 dims, then merge neighbours that are contiguous with each other in every operand.
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !layout.sizes.empty();
    for (int k = 0; k < layout.num_operands && merge; ++k) {
      int64_t item = static_cast<int64_t>(operands[k]->itemsize());
      int64_t stride = operands[k]->strides()[d] * item;
      merge = layout.strides[k].back() == stride * shape[d];
    }
    if (merge) {
      layout.sizes.back() *= shape[d];
      for (int k = 0; k < layout.num_operands; ++k)
        layout.strides[k].back() = operands[k]->strides()[d] * static_cast<int64_t>(operands[k]->itemsize());
      continue;
    }
    layout.sizes.push_back(shape[d]);
    for (int k = 0; k < layout.num_operands; ++k)
      layout.strides[k].push_back(operands[k]->strides()[d] * static_cast<int64_t>(operands[k]->itemsize()));
  }
  if (layout.sizes.empty()) {
    bool empty = false;
    for (int64_t s : shape) empty |= s == 0;
    layout.sizes.push_back(empty ? 0 : 1);
    for (int k = 0; k < layout.num_operands; ++k) layout.strides[k].push_back(0);
  }
  layout.ndim = static_cast<int>(layout.sizes.size());
  for (int k = 0; k < layout.num_operands; ++k) layout.data[k] = static_cast<char*>(operands[k]->data_ptr());
  return layout;
}

}  // namespace loom::cpu
