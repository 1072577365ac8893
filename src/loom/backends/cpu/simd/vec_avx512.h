// AVX-512 building blocks: Vec16f, 16 floats with operators, and the vectorised math of vec_math.h
// instantiated for it. Only for files compiled with the AVX-512 flags (simd/*_avx512.cpp, see CMakeLists.txt),
// whose entry points run behind use_avx512() (simd/cpu_features.h); baseline code never includes this.
#pragma once
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512DQ__) || !defined(__AVX512VL__)
#error "vec_avx512.h needs -mavx512f -mavx512bw -mavx512dq -mavx512vl (only simd/*_avx512.cpp include it)"
#endif
#include <immintrin.h>

#include <cstdint>

#include "loom/backends/cpu/simd/vec_math.h"

#define LOOM_AVX512_INLINE __attribute__((always_inline)) inline

namespace loom::cpu::avx512 {

// A mask of the first n (0..16) lanes.
LOOM_AVX512_INLINE __mmask16 tail_mask(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }

struct Mask16 {
  __mmask16 m;
  LOOM_AVX512_INLINE unsigned bits() const { return m; }
  // From 16 bytes, nonzero = true.
  LOOM_AVX512_INLINE static Mask16 from_bytes(const uint8_t* p) {
    __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return {_mm_test_epi8_mask(b, b)};
  }
  // 16 bytes of 0/1.
  LOOM_AVX512_INLINE void to_bytes(uint8_t* p) const {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm_maskz_set1_epi8(m, 1));
  }
};

struct Vec16f {
  using Mask = Mask16;
  static constexpr int64_t kLanes = 16;
  __m512 v;

  Vec16f() = default;
  LOOM_AVX512_INLINE Vec16f(__m512 x) : v(x) {}
  LOOM_AVX512_INLINE Vec16f(float x) : v(_mm512_set1_ps(x)) {}

  // Masked loads and stores do not touch (or fault on) the lanes past n.
  LOOM_AVX512_INLINE static Vec16f load(const float* p) { return _mm512_loadu_ps(p); }
  LOOM_AVX512_INLINE static Vec16f load_n(const float* p, int64_t n) {
    return _mm512_maskz_loadu_ps(tail_mask(n), p);
  }
  LOOM_AVX512_INLINE void store(float* p) const { _mm512_storeu_ps(p, v); }
  LOOM_AVX512_INLINE void store_n(float* p, int64_t n) const { _mm512_mask_storeu_ps(p, tail_mask(n), v); }
  // bfloat16 bit patterns: widened exactly; narrowed round-to-nearest-even with NaN kept quiet (bits | 0x40),
  // bit-identical to loom::BFloat16(float) (and to Vec8f::to_bf16).
  LOOM_AVX512_INLINE static Vec16f from_bf16(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  LOOM_AVX512_INLINE __m256i to_bf16() const {
    __m512i u = _mm512_castps_si512(v);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    __m512i nan = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    r = _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), r, nan);
    return _mm512_cvtepi32_epi16(r);  // every value fits in 16 bits
  }
  LOOM_AVX512_INLINE static Vec16f load(const uint16_t* p) {
    return from_bf16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  LOOM_AVX512_INLINE static Vec16f load_n(const uint16_t* p, int64_t n) {
    return from_bf16(_mm256_maskz_loadu_epi16(tail_mask(n), p));
  }
  LOOM_AVX512_INLINE void store(uint16_t* p) const {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), to_bf16());
  }
  LOOM_AVX512_INLINE void store_n(uint16_t* p, int64_t n) const {
    _mm256_mask_storeu_epi16(p, tail_mask(n), to_bf16());
  }
};

LOOM_AVX512_INLINE Vec16f operator+(Vec16f a, Vec16f b) { return _mm512_add_ps(a.v, b.v); }
LOOM_AVX512_INLINE Vec16f operator-(Vec16f a, Vec16f b) { return _mm512_sub_ps(a.v, b.v); }
LOOM_AVX512_INLINE Vec16f operator*(Vec16f a, Vec16f b) { return _mm512_mul_ps(a.v, b.v); }
LOOM_AVX512_INLINE Vec16f operator/(Vec16f a, Vec16f b) { return _mm512_div_ps(a.v, b.v); }
LOOM_AVX512_INLINE Vec16f operator-(Vec16f a) { return _mm512_xor_ps(a.v, _mm512_set1_ps(-0.0f)); }
// Bitwise, on the float bit patterns.
LOOM_AVX512_INLINE Vec16f operator&(Vec16f a, Vec16f b) { return _mm512_and_ps(a.v, b.v); }
LOOM_AVX512_INLINE Vec16f operator|(Vec16f a, Vec16f b) { return _mm512_or_ps(a.v, b.v); }
LOOM_AVX512_INLINE Vec16f fma(Vec16f a, Vec16f b, Vec16f c) { return _mm512_fmadd_ps(a.v, b.v, c.v); }
LOOM_AVX512_INLINE Vec16f fnma(Vec16f a, Vec16f b, Vec16f c) { return _mm512_fnmadd_ps(a.v, b.v, c.v); }
LOOM_AVX512_INLINE Vec16f min(Vec16f a, Vec16f b) { return _mm512_min_ps(a.v, b.v); }
LOOM_AVX512_INLINE Vec16f max(Vec16f a, Vec16f b) { return _mm512_max_ps(a.v, b.v); }
LOOM_AVX512_INLINE Vec16f abs(Vec16f a) { return _mm512_abs_ps(a.v); }
LOOM_AVX512_INLINE Vec16f sqrt(Vec16f a) { return _mm512_sqrt_ps(a.v); }
LOOM_AVX512_INLINE Vec16f round_nearest(Vec16f a) {
  return _mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
template <int Predicate>
LOOM_AVX512_INLINE Mask16 compare(Vec16f a, Vec16f b) {
  return {_mm512_cmp_ps_mask(a.v, b.v, Predicate)};
}
LOOM_AVX512_INLINE Mask16 operator<(Vec16f a, Vec16f b) { return compare<_CMP_LT_OQ>(a, b); }
LOOM_AVX512_INLINE Mask16 operator<=(Vec16f a, Vec16f b) { return compare<_CMP_LE_OQ>(a, b); }
LOOM_AVX512_INLINE Mask16 operator>(Vec16f a, Vec16f b) { return compare<_CMP_GT_OQ>(a, b); }
LOOM_AVX512_INLINE Mask16 operator>=(Vec16f a, Vec16f b) { return compare<_CMP_GE_OQ>(a, b); }
LOOM_AVX512_INLINE Mask16 operator==(Vec16f a, Vec16f b) { return compare<_CMP_EQ_OQ>(a, b); }
LOOM_AVX512_INLINE Mask16 operator!=(Vec16f a, Vec16f b) { return compare<_CMP_NEQ_UQ>(a, b); }
LOOM_AVX512_INLINE Mask16 is_nan(Vec16f a) { return compare<_CMP_UNORD_Q>(a, a); }
LOOM_AVX512_INLINE Mask16 is_unordered(Vec16f a, Vec16f b) { return compare<_CMP_UNORD_Q>(a, b); }
LOOM_AVX512_INLINE Vec16f select(Mask16 m, Vec16f a, Vec16f b) { return _mm512_mask_blend_ps(m.m, b.v, a.v); }

// p 2^k for integral k: vscalefps rounds once, giving the same bits as Vec8f's two-step scaling.
LOOM_AVX512_INLINE Vec16f scale_pow2(Vec16f p, Vec16f k) { return _mm512_scalef_ps(p.v, k.v); }
// x = 2^e m for a positive normal x: returns e (as float), sets m in [0.5, 1) (integer steps as in Vec8f, so
// that the results match bit for bit).
LOOM_AVX512_INLINE Vec16f split_exponent(Vec16f x, Vec16f& m) {
  __m512i xi = _mm512_castps_si512(x.v);
  m = _mm512_castsi512_ps(
      _mm512_or_si512(_mm512_and_si512(xi, _mm512_set1_epi32(0x007fffff)), _mm512_set1_epi32(0x3f000000)));
  return _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(xi, 23), _mm512_set1_epi32(126)));
}

}  // namespace loom::cpu::avx512
