// Type promotion across op inputs, with PyTorch's priorities: dimensioned tensors > 0-d tensors > numbers.
#pragma once
#include <vector>

#include "loom/core/tensor.h"

namespace loom {

// torch.result_type over the defined tensors in `inputs` (wrapped numbers take the lowest priority).
DType result_type(const std::vector<Tensor>& inputs);
// The dtype a float-valued function (exp, div, mean...) returns for an input of `dtype`.
inline DType float_result(DType dtype) { return is_floating(dtype) ? dtype : default_float_dtype(); }

}  // namespace loom
