// Helpers of the recurrent layers (nn.RNN / LSTM / GRU run step by step in loom ops).
#pragma once
#include <vector>
#include "loom/core/tensor.h"

namespace loom {

// _split_steps: splits `input` along dim 0 into consecutive pieces of the given sizes (a packed sequence's
// batch_sizes, or [batch] * steps for a padded one), each a contiguous copy. Unlike split(), whose pieces are views
// with one backward each (every one scattering into a full-size zero tensor: quadratic in the number of steps), the
// backward is a single cat of the pieces' gradients. Works on every device (it only copies).
std::vector<Tensor> split_steps(const Tensor& input, const std::vector<int64_t>& sizes);

}  // namespace loom
