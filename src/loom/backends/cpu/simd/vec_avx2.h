// AVX2 + FMA building blocks for the CPU kernels: Vec8f, 8 floats with operators, and the vectorised math of
// vec_math.h instantiated for it.
//
// Everything here is compiled for AVX2 through `#pragma GCC target` (the rest of the library is built for
// baseline x86-64), so only call it behind `use_avx2()` (simd/cpu_features.h), from functions that carry
// LOOM_AVX2_FN themselves or from a file compiled with -mavx2 -mfma (simd/*_avx2.cpp) — GCC inlines these
// helpers only into code compiled for the same target. Accuracy and special values: see vec_math.h.
#pragma once
#if defined(__x86_64__)
#include <immintrin.h>

#include <cstdint>

#define LOOM_AVX2_FN __attribute__((target("avx2,fma")))
#define LOOM_AVX2_INLINE __attribute__((target("avx2,fma"), always_inline)) inline

#pragma GCC push_options
#pragma GCC target("avx2,fma")

namespace loom::cpu::avx2 {

inline constexpr int64_t kFloats = 8;  // floats per __m256

// A mask of the first n (0..8) lanes, for loads/stores of a row's tail.
LOOM_AVX2_INLINE __m256i tail_mask(int64_t n) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), lanes);
}

// Lane mask of a Vec8f comparison: all ones / all zeros per lane.
struct Mask8 {
  __m256 m;
  // One bit per lane (lane 0 the lowest).
  LOOM_AVX2_INLINE unsigned bits() const { return static_cast<unsigned>(_mm256_movemask_ps(m)); }
  // From 8 bytes, nonzero = true.
  LOOM_AVX2_INLINE static Mask8 from_bytes(const uint8_t* p) {
    __m256i w = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    return {_mm256_castsi256_ps(_mm256_cmpgt_epi32(w, _mm256_setzero_si256()))};
  }
  // 8 bytes of 0/1.
  LOOM_AVX2_INLINE void to_bytes(uint8_t* p) const {
    __m256i w = _mm256_srli_epi32(_mm256_castps_si256(m), 31);              // 0/1 per 32-bit lane
    __m128i h = _mm_packus_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packus_epi16(h, h));
  }
};

struct Vec8f {
  using Mask = Mask8;
  static constexpr int64_t kLanes = 8;
  __m256 v;

  Vec8f() = default;
  LOOM_AVX2_INLINE Vec8f(__m256 x) : v(x) {}
  LOOM_AVX2_INLINE Vec8f(float x) : v(_mm256_set1_ps(x)) {}

  LOOM_AVX2_INLINE static Vec8f load(const float* p) { return _mm256_loadu_ps(p); }
  LOOM_AVX2_INLINE static Vec8f load_n(const float* p, int64_t n) { return _mm256_maskload_ps(p, tail_mask(n)); }
  LOOM_AVX2_INLINE void store(float* p) const { _mm256_storeu_ps(p, v); }
  LOOM_AVX2_INLINE void store_n(float* p, int64_t n) const { _mm256_maskstore_ps(p, tail_mask(n), v); }
  // bfloat16 bit patterns: widened exactly; narrowed round-to-nearest-even with NaN kept quiet (bits | 0x40),
  // bit-identical to loom::BFloat16(float).
  LOOM_AVX2_INLINE static Vec8f from_bf16(__m128i h) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  LOOM_AVX2_INLINE __m128i to_bf16() const {
    __m256i u = _mm256_castps_si256(v);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
    __m256i nan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    r = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(r), _mm256_castsi256_ps(nan),
                                             _mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
    // 32 -> 16 bits: values fit, so unsigned saturation is exact; packus works per 128-bit lane.
    __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
    return _mm256_castsi256_si128(packed);
  }
  LOOM_AVX2_INLINE static Vec8f load(const uint16_t* p) {
    return from_bf16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  LOOM_AVX2_INLINE static Vec8f load_n(const uint16_t* p, int64_t n) {
    alignas(16) uint16_t buf[8] = {};
    __builtin_memcpy(buf, p, static_cast<size_t>(n) * 2);
    return from_bf16(_mm_load_si128(reinterpret_cast<const __m128i*>(buf)));
  }
  LOOM_AVX2_INLINE void store(uint16_t* p) const { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), to_bf16()); }
  LOOM_AVX2_INLINE void store_n(uint16_t* p, int64_t n) const {
    alignas(16) uint16_t buf[8];
    _mm_store_si128(reinterpret_cast<__m128i*>(buf), to_bf16());
    __builtin_memcpy(p, buf, static_cast<size_t>(n) * 2);
  }
};

LOOM_AVX2_INLINE Vec8f operator+(Vec8f a, Vec8f b) { return _mm256_add_ps(a.v, b.v); }
LOOM_AVX2_INLINE Vec8f operator-(Vec8f a, Vec8f b) { return _mm256_sub_ps(a.v, b.v); }
LOOM_AVX2_INLINE Vec8f operator*(Vec8f a, Vec8f b) { return _mm256_mul_ps(a.v, b.v); }
LOOM_AVX2_INLINE Vec8f operator/(Vec8f a, Vec8f b) { return _mm256_div_ps(a.v, b.v); }
LOOM_AVX2_INLINE Vec8f operator-(Vec8f a) { return _mm256_xor_ps(a.v, _mm256_set1_ps(-0.0f)); }
// Bitwise, on the float bit patterns.
LOOM_AVX2_INLINE Vec8f operator&(Vec8f a, Vec8f b) { return _mm256_and_ps(a.v, b.v); }
LOOM_AVX2_INLINE Vec8f operator|(Vec8f a, Vec8f b) { return _mm256_or_ps(a.v, b.v); }
LOOM_AVX2_INLINE Vec8f fma(Vec8f a, Vec8f b, Vec8f c) { return _mm256_fmadd_ps(a.v, b.v, c.v); }
LOOM_AVX2_INLINE Vec8f fnma(Vec8f a, Vec8f b, Vec8f c) { return _mm256_fnmadd_ps(a.v, b.v, c.v); }
LOOM_AVX2_INLINE Vec8f min(Vec8f a, Vec8f b) { return _mm256_min_ps(a.v, b.v); }
LOOM_AVX2_INLINE Vec8f max(Vec8f a, Vec8f b) { return _mm256_max_ps(a.v, b.v); }
LOOM_AVX2_INLINE Vec8f abs(Vec8f a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a.v); }
LOOM_AVX2_INLINE Vec8f sqrt(Vec8f a) { return _mm256_sqrt_ps(a.v); }
LOOM_AVX2_INLINE Vec8f round_nearest(Vec8f a) {
  return _mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
template <int Predicate>
LOOM_AVX2_INLINE Mask8 compare(Vec8f a, Vec8f b) {
  return {_mm256_cmp_ps(a.v, b.v, Predicate)};
}
LOOM_AVX2_INLINE Mask8 operator<(Vec8f a, Vec8f b) { return compare<_CMP_LT_OQ>(a, b); }
LOOM_AVX2_INLINE Mask8 operator<=(Vec8f a, Vec8f b) { return compare<_CMP_LE_OQ>(a, b); }
LOOM_AVX2_INLINE Mask8 operator>(Vec8f a, Vec8f b) { return compare<_CMP_GT_OQ>(a, b); }
LOOM_AVX2_INLINE Mask8 operator>=(Vec8f a, Vec8f b) { return compare<_CMP_GE_OQ>(a, b); }
LOOM_AVX2_INLINE Mask8 operator==(Vec8f a, Vec8f b) { return compare<_CMP_EQ_OQ>(a, b); }
LOOM_AVX2_INLINE Mask8 operator!=(Vec8f a, Vec8f b) { return compare<_CMP_NEQ_UQ>(a, b); }
LOOM_AVX2_INLINE Mask8 is_nan(Vec8f a) { return compare<_CMP_UNORD_Q>(a, a); }
LOOM_AVX2_INLINE Mask8 is_unordered(Vec8f a, Vec8f b) { return compare<_CMP_UNORD_Q>(a, b); }
LOOM_AVX2_INLINE Vec8f select(Mask8 m, Vec8f a, Vec8f b) { return _mm256_blendv_ps(b.v, a.v, m.m); }

// p 2^k for integral k in [-150, 128], in two halves so that subnormal results and 2^128 scale without
// overflow of the exponent field.
LOOM_AVX2_INLINE Vec8f scale_pow2(Vec8f p, Vec8f k) {
  __m256i ki = _mm256_cvtps_epi32(k.v);
  __m256i k1 = _mm256_srai_epi32(ki, 1), k2 = _mm256_sub_epi32(ki, k1);
  const __m256i bias = _mm256_set1_epi32(127);
  __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, bias), 23));
  __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p.v, s1), s2);
}
// x = 2^e m for a positive normal x: returns e (as float), sets m in [0.5, 1).
LOOM_AVX2_INLINE Vec8f split_exponent(Vec8f x, Vec8f& m) {
  __m256i xi = _mm256_castps_si256(x.v);
  m = _mm256_castsi256_ps(
      _mm256_or_si256(_mm256_and_si256(xi, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f000000)));
  return _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(xi, 23), _mm256_set1_epi32(126)));
}

}  // namespace loom::cpu::avx2

#include "loom/backends/cpu/simd/vec_math.h"

namespace loom::cpu::avx2 {

// Horizontal sum of the 8 lanes.
LOOM_AVX2_INLINE float reduce_add(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Horizontal max of the 8 lanes (NaN handling is the caller's: _mm256_max_ps returns the second operand).
LOOM_AVX2_INLINE float reduce_max(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// The math of vec_math.h on raw registers, for the kernels written with intrinsics (reductions, norms, losses).
LOOM_AVX2_INLINE __m256 exp(__m256 x) { return simd::exp(Vec8f(x)).v; }
LOOM_AVX2_INLINE __m256 log(__m256 x) { return simd::log(Vec8f(x)).v; }
LOOM_AVX2_INLINE __m256 tanh(__m256 x) { return simd::tanh(Vec8f(x)).v; }
LOOM_AVX2_INLINE __m256 sigmoid(__m256 x) { return simd::sigmoid(Vec8f(x)).v; }
LOOM_AVX2_INLINE __m256 erf(__m256 x) { return simd::erf(Vec8f(x)).v; }
LOOM_AVX2_INLINE __m128i float_to_bf16(__m256 x) { return Vec8f(x).to_bf16(); }
LOOM_AVX2_INLINE __m256 bf16_to_float(__m128i h) { return Vec8f::from_bf16(h).v; }

}  // namespace loom::cpu::avx2

#pragma GCC pop_options
#endif
