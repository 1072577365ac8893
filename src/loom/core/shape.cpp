#include "loom/core/shape.h"

#include <algorithm>

#include "loom/core/checked.h"
#include "loom/core/error.h"

namespace loom {

std::string shape_str(const Shape& shape) {
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  if (shape.size() == 1) out += ",";
  return out + ")";
}

int64_t numel(const Shape& shape) {
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  int64_t n = 1;
  for (int64_t s : shape) n = checked_mul(n, s, "numel", "the number of elements");
  return n;
}

void check_rank(int64_t ndim, const char* op) {
  LOOM_CHECK(ndim <= kMaxRank, Value, op, ": tensors may have at most ", kMaxRank, " dimensions, got ", ndim);
}

int64_t checked_numel(const Shape& shape, const char* op) {
  for (int64_t s : shape) LOOM_CHECK(s >= 0, Value, op, ": negative dimension in shape ", shape_str(shape));
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  int64_t n = 1;
  for (int64_t s : shape)
    LOOM_CHECK(!__builtin_mul_overflow(n, s, &n), Value, op, ": shape ", shape_str(shape), " has too many elements");
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t stride = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    // The stride before dim 0 is never used; any other overflow makes the shape unaddressable.
    if (i > 0 && __builtin_mul_overflow(stride, std::max<int64_t>(shape[i], 1), &stride))
      fail(ErrorKind::Value, "shape ", shape_str(shape), ": the strides of this shape overflow int64");
  }
  return strides;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t ndim = std::max(a.size(), b.size());
  Shape out(ndim);
  for (size_t i = 0; i < ndim; ++i) {
    int64_t da = i < ndim - a.size() ? 1 : a[i - (ndim - a.size())];
    int64_t db = i < ndim - b.size() ? 1 : b[i - (ndim - b.size())];
    LOOM_CHECK(da == db || da == 1 || db == 1, Value, op, ": shapes ", shape_str(a), " and ", shape_str(b),
               " cannot be broadcast together (dimension ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

int64_t normalize_dim(int64_t dim, int64_t ndim, const char* op) {
  int64_t range = std::max<int64_t>(ndim, 1);
  LOOM_CHECK(dim >= -range && dim < range, Index, op, ": dim ", dim, " is out of range for a tensor of ", ndim,
             " dimension(s) (expected in [", -range, ", ", range - 1, "])");
  return dim < 0 ? dim + range : dim;
}

std::vector<int64_t> normalize_dims(const std::vector<int64_t>& dims, int64_t ndim, const char* op) {
  std::vector<int64_t> out;
  if (dims.empty()) {
    for (int64_t i = 0; i < ndim; ++i) out.push_back(i);
    return out;
  }
  for (int64_t d : dims) {
    int64_t n = normalize_dim(d, ndim, op);
    if (ndim == 0) continue;  // dim 0 / -1 of a 0-d tensor names no real dimension
    LOOM_CHECK(std::find(out.begin(), out.end(), n) == out.end(), Value, op, ": dim ", d,
               " appears more than once in the list of dims");
    out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace loom
