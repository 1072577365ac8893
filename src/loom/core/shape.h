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
// Product of the sizes (0 when any size is 0, however large the others are).
int64_t numel(const Shape& shape);
// Row-major strides; raises ValueError when a stride overflows int64 (zero-size tensors may have huge dims).
Shape contiguous_strides(const Shape& shape);

// The largest number of dimensions a tensor may have: NumPy's and safetensors' limit (NPY_MAXDIMS = 64), so
// every tensor can be exported with .numpy() and saved. Enforced wherever a shape is created.
inline constexpr int64_t kMaxRank = 64;
// Raises ValueError naming `op` when ndim > kMaxRank.
void check_rank(int64_t ndim, const char* op);
// NumPy/PyTorch broadcasting of two shapes; raises ValueError naming `op` when they do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Wraps a possibly negative dim into [0, ndim); raises IndexError naming `op` when out of range.
// A 0-d tensor accepts dims -1 and 0, as in PyTorch.
int64_t normalize_dim(int64_t dim, int64_t ndim, const char* op);
// Normalizes a dim list (empty means all dims), rejecting repeats; returns a bitmask-friendly sorted list.
std::vector<int64_t> normalize_dims(const std::vector<int64_t>& dims, int64_t ndim, const char* op);

}  // namespace loom
