// Shapes and strides (in elements, row-major), and the helpers every op uses to check them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace loom {

using Shape = std::vector<int64_t>;

// "(2, 3)" — the way shapes appear in every error message.
std::string shape_str(const Shape& shape);
// Product of the sizes; raises ValueError on a negative size or an overflowing product.
int64_t checked_numel(const Shape& shape, const char* op);
int64_t numel(const Shape& shape);
Shape contiguous_strides(const Shape& shape);
// NumPy/PyTorch broadcasting of two shapes; raises ValueError naming `op` when they do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Wraps a possibly negative dim into [0, ndim); raises IndexError naming `op` when out of range.
// A 0-d tensor accepts dims -1 and 0, as in PyTorch.
int64_t normalize_dim(int64_t dim, int64_t ndim, const char* op);
// Normalizes a dim list (empty means all dims), rejecting repeats; returns a bitmask-friendly sorted list.
std::vector<int64_t> normalize_dims(const std::vector<int64_t>& dims, int64_t ndim, const char* op);

}  // namespace loom
