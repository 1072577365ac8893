// The elementwise row kernels of elementwise.h, written once over a vector type V (avx2::Vec8f,
// avx512::Vec16f). Included only by elementwise_<isa>.cpp, each compiled for its instruction set; everything
// here has internal linkage, so no out-of-line copy built for one instruction set can be merged by the linker
// into code that runs on a CPU without it.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "loom/backends/cpu/simd/elementwise.h"

namespace loom::cpu::simd {
namespace {

// The lanes of one operand: T is float or uint16_t (bfloat16 bit patterns).
template <class T>
float scalar_to_float(const char* p) {
  if constexpr (sizeof(T) == 4) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  } else {
    uint16_t h;
    std::memcpy(&h, p, 2);
    uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
}

// kLanes lanes of an operand with byte stride s starting at element i; m (1..kLanes) valid lanes, the rest 0.
template <class V, class T>
__attribute__((always_inline)) inline V load_lanes(const char* p, int64_t s, int64_t i, int64_t m) {
  constexpr int64_t L = V::kLanes;
  if (s == 0) return V(scalar_to_float<T>(p));
  if (s == sizeof(T)) {
    const T* q = reinterpret_cast<const T*>(p) + i;
    return m == L ? V::load(q) : V::load_n(q, m);
  }
  alignas(64) T buf[L] = {};
  for (int64_t j = 0; j < m; ++j) std::memcpy(&buf[j], p + (i + j) * s, sizeof(T));
  return V::load(buf);
}

template <class V, class T>
__attribute__((always_inline)) inline void store_lanes(char* p, int64_t s, int64_t i, int64_t m, V v) {
  constexpr int64_t L = V::kLanes;
  if (s == sizeof(T)) {
    T* q = reinterpret_cast<T*>(p) + i;
    if (m == L) v.store(q);
    else v.store_n(q, m);
    return;
  }
  alignas(64) T buf[L];
  v.store(buf);
  for (int64_t j = 0; j < m; ++j) std::memcpy(p + (i + j) * s, &buf[j], sizeof(T));
}

// out = f(x). Contiguous rows run a straight loop with a masked tail; others go through load/store_lanes.
template <class V, class T, class F>
void unary_row(char** p, const int64_t* s, int64_t n, float) {
  constexpr int64_t L = V::kLanes;
  const F f{};
  if (s[0] == sizeof(T) && s[1] == sizeof(T)) {
    T* out = reinterpret_cast<T*>(p[0]);
    const T* in = reinterpret_cast<const T*>(p[1]);
    int64_t i = 0;
    for (; i + L <= n; i += L) f(V::load(in + i)).store(out + i);
    if (i < n) f(V::load_n(in + i, n - i)).store_n(out + i, n - i);
    return;
  }
  for (int64_t i = 0; i < n; i += L) {
    int64_t m = n - i < L ? n - i : L;
    store_lanes<V, T>(p[0], s[0], i, m, f(load_lanes<V, T>(p[1], s[1], i, m)));
  }
}

// out = f(a, b, alpha); fast loops for contiguous rows and a broadcast (stride-0) operand.
template <class V, class T, class F>
void binary_row(char** p, const int64_t* s, int64_t n, float alpha) {
  constexpr int64_t L = V::kLanes, k = sizeof(T);
  const F f{};
  const V av(alpha);
  int64_t i = 0;
  if (s[0] == k && (s[1] == k || s[1] == 0) && (s[2] == k || s[2] == 0) && (s[1] | s[2]) != 0) {
    T* out = reinterpret_cast<T*>(p[0]);
    const T* a = reinterpret_cast<const T*>(p[1]);
    const T* b = reinterpret_cast<const T*>(p[2]);
    if (s[1] == k && s[2] == k) {
      for (; i + L <= n; i += L) f(V::load(a + i), V::load(b + i), av).store(out + i);
    } else if (s[2] == 0) {
      const V bv(scalar_to_float<T>(p[2]));
      for (; i + L <= n; i += L) f(V::load(a + i), bv, av).store(out + i);
    } else {
      const V a0(scalar_to_float<T>(p[1]));
      for (; i + L <= n; i += L) f(a0, V::load(b + i), av).store(out + i);
    }
  }
  for (; i < n; i += L) {
    int64_t m = n - i < L ? n - i : L;
    V r = f(load_lanes<V, T>(p[1], s[1], i, m), load_lanes<V, T>(p[2], s[2], i, m), av);
    store_lanes<V, T>(p[0], s[0], i, m, r);
  }
}

// bool out = f(a, b) for float32 operands, f returning a lane mask.
template <class V, class F>
void compare_row(char** p, const int64_t* s, int64_t n, float) {
  constexpr int64_t L = V::kLanes;
  const F f{};
  for (int64_t i = 0; i < n; i += L) {
    int64_t m = n - i < L ? n - i : L;
    auto mask = f(load_lanes<V, float>(p[1], s[1], i, m), load_lanes<V, float>(p[2], s[2], i, m));
    if (s[0] == 1 && m == L) {
      mask.to_bytes(reinterpret_cast<uint8_t*>(p[0] + i));
    } else {
      alignas(64) uint8_t bytes[L];
      mask.to_bytes(bytes);
      for (int64_t j = 0; j < m; ++j) p[0][(i + j) * s[0]] = static_cast<char>(bytes[j]);
    }
  }
}

// out = cond ? a : b for float32, cond a bool operand (1).
template <class V>
void where_row(char** p, const int64_t* s, int64_t n, float) {
  constexpr int64_t L = V::kLanes;
  for (int64_t i = 0; i < n; i += L) {
    int64_t m = n - i < L ? n - i : L;
    alignas(64) uint8_t bytes[L] = {};
    if (s[1] == 0) std::memset(bytes, *reinterpret_cast<const uint8_t*>(p[1]) != 0, L);
    else if (s[1] == 1 && m == L) std::memcpy(bytes, p[1] + i, L);
    else
      for (int64_t j = 0; j < m; ++j) bytes[j] = *reinterpret_cast<const uint8_t*>(p[1] + (i + j) * s[1]);
    auto cond = V::Mask::from_bytes(bytes);
    V a = load_lanes<V, float>(p[2], s[2], i, m), b = load_lanes<V, float>(p[3], s[3], i, m);
    store_lanes<V, float>(p[0], s[0], i, m, select(cond, a, b));
  }
}

template <class V>
void float_to_bf16_row(void* out, const void* in, int64_t n) {
  constexpr int64_t L = V::kLanes;
  auto* o = static_cast<uint16_t*>(out);
  const auto* x = static_cast<const float*>(in);
  int64_t i = 0;
  for (; i + L <= n; i += L) V::load(x + i).store(o + i);
  if (i < n) V::load_n(x + i, n - i).store_n(o + i, n - i);
}

template <class V>
void bf16_to_float_row(void* out, const void* in, int64_t n) {
  constexpr int64_t L = V::kLanes;
  auto* o = static_cast<float*>(out);
  const auto* x = static_cast<const uint16_t*>(in);
  int64_t i = 0;
  for (; i + L <= n; i += L) V::load(x + i).store(o + i);
  if (i < n) V::load_n(x + i, n - i).store_n(o + i, n - i);
}

// The ops. Results are bit-identical to the scalar functors for the single IEEE operations (neg, abs, sqrt,
// div, add, sub, mul, max, min, comparisons, where, relu and its backward); the math is within a few ulp.
#define LOOM_VEC_UNARY(Name, expr)                                               \
  struct Name {                                                                  \
    template <class V>                                                           \
    __attribute__((always_inline)) V operator()(V x) const { return expr; }      \
  };
LOOM_VEC_UNARY(NegF, -x)
LOOM_VEC_UNARY(AbsF, abs(x))
LOOM_VEC_UNARY(ExpF, exp(x))
LOOM_VEC_UNARY(LogF, log(x))
LOOM_VEC_UNARY(SqrtF, sqrt(x))
LOOM_VEC_UNARY(RsqrtF, V(1.0f) / sqrt(x))
LOOM_VEC_UNARY(ReciprocalF, V(1.0f) / x)
LOOM_VEC_UNARY(TanhF, tanh(x))
LOOM_VEC_UNARY(SigmoidF, sigmoid(x))
LOOM_VEC_UNARY(ErfF, erf(x))
LOOM_VEC_UNARY(ReluF, select(x <= V(0.0f), V(0.0f), x))  // NaN (unordered) stays
LOOM_VEC_UNARY(SiluF, x * sigmoid(x))
LOOM_VEC_UNARY(GeluF, gelu(x))
LOOM_VEC_UNARY(GeluTanhF, gelu_tanh(x))
#undef LOOM_VEC_UNARY

#define LOOM_VEC_BINARY(Name, expr)                                                      \
  struct Name {                                                                          \
    template <class V>                                                                   \
    __attribute__((always_inline)) V operator()(V a, V b, V alpha) const { return expr; } \
  };
LOOM_VEC_BINARY(AddF, fma(alpha, b, a))
LOOM_VEC_BINARY(SubF, fnma(alpha, b, a))
LOOM_VEC_BINARY(MulF, a * b)
LOOM_VEC_BINARY(DivF, a / b)
// NaN in either operand gives NaN (a + b); otherwise max/min, returning b on ties like the scalar functor.
LOOM_VEC_BINARY(MaximumF, select(is_unordered(a, b), a + b, max(a, b)))
LOOM_VEC_BINARY(MinimumF, select(is_unordered(a, b), a + b, min(a, b)))
LOOM_VEC_BINARY(GeluBackwardF, gelu_backward(a, b))
// 0 where the relu output is <= 0, else grad (NaN outputs pass the gradient), as threshold_backward.
LOOM_VEC_BINARY(ReluBackwardF, select(b <= V(0.0f), V(0.0f), a))
#undef LOOM_VEC_BINARY

template <int Predicate>
struct CompareF {
  template <class V>
  __attribute__((always_inline)) auto operator()(V a, V b) const { return compare<Predicate>(a, b); }
};

template <class V, class F>
void set_unary(ElementwiseKernels& k, UnaryKind kind) {
  k.unary[static_cast<int>(kind)][static_cast<int>(Storage::Float32)] = unary_row<V, float, F>;
  k.unary[static_cast<int>(kind)][static_cast<int>(Storage::BFloat16)] = unary_row<V, uint16_t, F>;
}
template <class V, class F>
void set_binary(ElementwiseKernels& k, BinaryKind kind) {
  k.binary[static_cast<int>(kind)][static_cast<int>(Storage::Float32)] = binary_row<V, float, F>;
  k.binary[static_cast<int>(kind)][static_cast<int>(Storage::BFloat16)] = binary_row<V, uint16_t, F>;
}

template <class V>
ElementwiseKernels make_elementwise_kernels() {
  ElementwiseKernels k{};
  set_unary<V, NegF>(k, UnaryKind::Neg);
  set_unary<V, AbsF>(k, UnaryKind::Abs);
  set_unary<V, ExpF>(k, UnaryKind::Exp);
  set_unary<V, LogF>(k, UnaryKind::Log);
  set_unary<V, SqrtF>(k, UnaryKind::Sqrt);
  set_unary<V, RsqrtF>(k, UnaryKind::Rsqrt);
  set_unary<V, ReciprocalF>(k, UnaryKind::Reciprocal);
  set_unary<V, TanhF>(k, UnaryKind::Tanh);
  set_unary<V, SigmoidF>(k, UnaryKind::Sigmoid);
  set_unary<V, ErfF>(k, UnaryKind::Erf);
  set_unary<V, ReluF>(k, UnaryKind::Relu);
  set_unary<V, SiluF>(k, UnaryKind::Silu);
  set_unary<V, GeluF>(k, UnaryKind::Gelu);
  set_unary<V, GeluTanhF>(k, UnaryKind::GeluTanh);
  set_binary<V, AddF>(k, BinaryKind::Add);
  set_binary<V, SubF>(k, BinaryKind::Sub);
  set_binary<V, MulF>(k, BinaryKind::Mul);
  set_binary<V, DivF>(k, BinaryKind::Div);
  set_binary<V, MaximumF>(k, BinaryKind::Maximum);
  set_binary<V, MinimumF>(k, BinaryKind::Minimum);
  set_binary<V, GeluBackwardF>(k, BinaryKind::GeluBackward);
  set_binary<V, ReluBackwardF>(k, BinaryKind::ReluBackward);
  k.compare[static_cast<int>(CompareKind::Eq)] = compare_row<V, CompareF<_CMP_EQ_OQ>>;
  k.compare[static_cast<int>(CompareKind::Ne)] = compare_row<V, CompareF<_CMP_NEQ_UQ>>;
  k.compare[static_cast<int>(CompareKind::Lt)] = compare_row<V, CompareF<_CMP_LT_OQ>>;
  k.compare[static_cast<int>(CompareKind::Le)] = compare_row<V, CompareF<_CMP_LE_OQ>>;
  k.compare[static_cast<int>(CompareKind::Gt)] = compare_row<V, CompareF<_CMP_GT_OQ>>;
  k.compare[static_cast<int>(CompareKind::Ge)] = compare_row<V, CompareF<_CMP_GE_OQ>>;
  k.where = where_row<V>;
  k.float_to_bf16 = float_to_bf16_row<V>;
  k.bf16_to_float = bf16_to_float_row<V>;
  return k;
}

}  // namespace
}  // namespace loom::cpu::simd
