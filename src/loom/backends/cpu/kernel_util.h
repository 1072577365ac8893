// Helpers shared by CPU kernels: preparing inputs (cast + broadcast) for the strided loops.
#pragma once
#include <type_traits>

#include "loom/ops/creation.h"
#include "loom/ops/registry.h"
#include "loom/ops/shape.h"

namespace loom::cpu {

// `t` cast to `dtype` and broadcast (as a stride-0 view) to `shape`.
inline Tensor prepare(const Tensor& t, DType dtype, const Shape& shape) {
  Tensor out = t.dtype() == dtype ? t : to_dtype(t, dtype);
  return out.sizes() == shape ? out : expand(out, shape);
}

// Integer tensor arithmetic wraps modulo 2^bits, as PyTorch's results do. Signed overflow is undefined in C++,
// so the integer kernels compute in the unsigned type (at least unsigned int, so that uint16 * uint16 is not
// promoted to a signed int that can overflow) and convert back, which is defined. We chose this over building
// with -fwrapv: the flag would also make overflow in size and index arithmetic "defined", so UBSan would stop
// reporting exactly the bugs (wrapped shapes, out-of-bounds views) it exists to catch. Floats and bool pass
// through unchanged.
template <class T>
using wrap_unsigned_t = std::make_unsigned_t<std::common_type_t<T, unsigned>>;

template <class T>
inline T wrap_add(T a, T b) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
    return static_cast<T>(static_cast<wrap_unsigned_t<T>>(a) + static_cast<wrap_unsigned_t<T>>(b));
  else return a + b;
}

template <class T>
inline T wrap_sub(T a, T b) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
    return static_cast<T>(static_cast<wrap_unsigned_t<T>>(a) - static_cast<wrap_unsigned_t<T>>(b));
  else return a - b;
}

template <class T>
inline T wrap_mul(T a, T b) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
    return static_cast<T>(static_cast<wrap_unsigned_t<T>>(a) * static_cast<wrap_unsigned_t<T>>(b));
  else return a * b;
}

// -a; for floats this is the sign flip (so -0.0 stays distinct from 0.0), not 0 - a.
template <class T>
inline T wrap_neg(T a) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
    return static_cast<T>(wrap_unsigned_t<T>(0) - static_cast<wrap_unsigned_t<T>>(a));
  else return static_cast<T>(-a);
}

}  // namespace loom::cpu
