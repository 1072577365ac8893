// Overflow-checked int64 arithmetic for sizes, strides, offsets, indices and op geometry (pooling, conv,
// fold/unfold windows). Every such computation on user-controlled values goes through these helpers, so an
// overflow raises a ValueError naming the op and the quantity instead of wrapping into a wrong shape, an
// out-of-bounds view or a hang.
#pragma once
#include <cstdint>
#include <limits>

#include "loom/core/error.h"

namespace loom {

// a * b; raises ValueError "<op>: <what> overflows int64 (a * b)".
inline int64_t checked_mul(int64_t a, int64_t b, const char* op, const char* what) {
  int64_t out;
  if (__builtin_mul_overflow(a, b, &out)) fail(ErrorKind::Value, op, ": ", what, " overflows int64 (", a, " * ", b, ")");
  return out;
}

inline int64_t checked_add(int64_t a, int64_t b, const char* op, const char* what) {
  int64_t out;
  if (__builtin_add_overflow(a, b, &out)) fail(ErrorKind::Value, op, ": ", what, " overflows int64 (", a, " + ", b, ")");
  return out;
}

inline int64_t checked_sub(int64_t a, int64_t b, const char* op, const char* what) {
  int64_t out;
  if (__builtin_sub_overflow(a, b, &out)) fail(ErrorKind::Value, op, ": ", what, " overflows int64 (", a, " - ", b, ")");
  return out;
}

// The largest kernel_size, stride, padding, dilation or output_padding a pooling/conv/fold/unfold op accepts.
// PyTorch stores pooling geometry as C int and rejects larger values ("value cannot be converted to type int
// without overflow"); loom applies the same cap to every windowed op, so the derived quantities (dilated kernel
// extents, padded sizes) stay far from int64 overflow and a window loop never runs 2^62 times.
inline constexpr int64_t kMaxGeometry = std::numeric_limits<int32_t>::max();

// Raises ValueError unless 0 <= value <= kMaxGeometry (callers check positivity themselves where needed).
inline int64_t checked_geometry(int64_t value, const char* op, const char* name) {
  LOOM_CHECK(value <= kMaxGeometry, Value, op, ": ", name, " (", value, ") must be at most ", kMaxGeometry,
             " (2^31 - 1)");
  return value;
}

// The number of positions of a window of `kernel` taps spaced `dilation` apart, moved by `stride` over `size`
// elements padded by pad_before and pad_after: the output size of conv, pooling and unfold along one dim; 0 when
// the dilated window is longer than the padded input. Arguments are non-negative (kernel, dilation, stride > 0).
inline int64_t sliding_windows(int64_t size, int64_t pad_before, int64_t pad_after, int64_t kernel, int64_t dilation,
                               int64_t stride, const char* op) {
  int64_t padded = checked_add(checked_add(size, pad_before, op, "the padded input size"), pad_after, op,
                               "the padded input size");
  int64_t extent = checked_add(checked_mul(dilation, kernel - 1, op, "the dilated kernel size"), 1, op,
                               "the dilated kernel size");
  return padded < extent ? 0 : (padded - extent) / stride + 1;
}

}  // namespace loom
