// AVX2 + FMA building blocks for the CPU kernels: 8-float vectors and vectorised math.
//
// Everything here is compiled for AVX2 through function attributes (the rest of the library is built for
// baseline x86-64), so only call it behind `use_avx2()` (simd/cpu_features.h) and only from functions that
// carry LOOM_AVX2_FN themselves — GCC inlines these helpers only into code compiled for the same target.
// Accuracy (tests/cpp/test_vec_avx2.cpp checks every function against the double-precision libm result over
// float's range, and tests/python/test_simd.py against PyTorch through the ops): exp, log, tanh, sigmoid and erf
// are within a few ulp (relative) and exact at the special values: NaN -> NaN, exp(-inf) = 0, exp(inf) = inf,
// log(0) = -inf, log(x < 0) = NaN, log(inf) = inf, tanh(+-inf) = +-1, sigmoid(-inf) = 0, sigmoid(inf) = 1,
// erf(+-inf) = +-1, and the sign of zero is kept by log/tanh/erf as libm keeps it.
#pragma once
#if defined(__x86_64__)
#include <immintrin.h>

#include <cstdint>

#define LOOM_AVX2_FN __attribute__((target("avx2,fma")))
#define LOOM_AVX2_INLINE __attribute__((target("avx2,fma"), always_inline)) inline

namespace loom::cpu::avx2 {

inline constexpr int64_t kFloats = 8;  // floats per __m256

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

// A mask of the first n (0..8) lanes, for loads/stores of a row's tail.
LOOM_AVX2_INLINE __m256i tail_mask(int64_t n) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), lanes);
}

// e^x: Cody-Waite range reduction x = k ln2 + r, |r| <= ln2/2, then a degree-6 polynomial (Cephes expf).
LOOM_AVX2_INLINE __m256 exp(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.72283935546875f), lo = _mm256_set1_ps(-103.97208f);
  const __m256 log2e = _mm256_set1_ps(1.44269504088896341f);
  const __m256 ln2_hi = _mm256_set1_ps(0.693359375f), ln2_lo = _mm256_set1_ps(-2.12194440e-4f);
  __m256 k = _mm256_round_ps(_mm256_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(k, ln2_hi, x);
  r = _mm256_fnmadd_ps(k, ln2_lo, r);
  __m256 p = _mm256_set1_ps(1.9875691500E-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507E-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073E-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894E-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459E-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201E-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // 2^k in two halves so that k down to -150 (subnormal results) and up to 128 scale without overflow.
  __m256i ki = _mm256_cvtps_epi32(k);
  __m256i k1 = _mm256_srai_epi32(ki, 1), k2 = _mm256_sub_epi32(ki, k1);
  const __m256i bias = _mm256_set1_epi32(127);
  __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, bias), 23));
  __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, bias), 23));
  __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
  y = _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
  y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));  // NaN in, NaN out
}

// Lanes of x with the sign bit cleared / only the sign bit.
LOOM_AVX2_INLINE __m256 abs(__m256 x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x); }
LOOM_AVX2_INLINE __m256 sign_bit(__m256 x) { return _mm256_and_ps(_mm256_set1_ps(-0.0f), x); }

// Natural log: x = 2^e m with m in [sqrt(1/2), sqrt(2)), log x = e ln2 + log1p(m - 1), log1p by a degree-9
// polynomial (Cephes logf). Subnormal inputs are scaled by 2^23 first.
LOOM_AVX2_INLINE __m256 log(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(1.17549435e-38f), _CMP_LT_OQ);  // subnormal (or <= 0)
  __m256 xs = _mm256_blendv_ps(x, _mm256_mul_ps(x, _mm256_set1_ps(8388608.0f)), tiny);
  __m256 eadj = _mm256_and_ps(tiny, _mm256_set1_ps(23.0f));
  __m256i xi = _mm256_castps_si256(xs);
  __m256 e = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(xi, 23), _mm256_set1_epi32(126)));
  e = _mm256_sub_ps(e, eadj);
  // m in [0.5, 1)
  __m256 m = _mm256_castsi256_ps(
      _mm256_or_si256(_mm256_and_si256(xi, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f000000)));
  __m256 small = _mm256_cmp_ps(m, _mm256_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
  // m < sqrt(1/2): f = 2m - 1, e -= 1; else f = m - 1
  __m256 f = _mm256_sub_ps(_mm256_add_ps(m, _mm256_and_ps(small, m)), one);
  e = _mm256_sub_ps(e, _mm256_and_ps(small, one));
  __m256 z = _mm256_mul_ps(f, f);
  __m256 p = _mm256_set1_ps(7.0376836292E-2f);
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(-1.1514610310E-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.1676998740E-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(-1.2420140846E-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.4249322787E-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(-1.6668057665E-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.0000714765E-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(-2.4999993993E-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(3.3333331174E-1f));
  __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, f), z);
  y = _mm256_fmadd_ps(e, _mm256_set1_ps(-2.12194440e-4f), y);
  y = _mm256_fnmadd_ps(_mm256_set1_ps(0.5f), z, y);
  y = _mm256_add_ps(f, y);
  y = _mm256_fmadd_ps(e, _mm256_set1_ps(0.693359375f), y);
  const __m256 inf = _mm256_set1_ps(__builtin_inff());
  y = _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_nanf("")), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
  y = _mm256_blendv_ps(y, _mm256_set1_ps(-__builtin_inff()), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_EQ_OQ));
  y = _mm256_blendv_ps(y, inf, _mm256_cmp_ps(x, inf, _CMP_EQ_OQ));
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));  // NaN in, NaN out
}

// Logistic sigmoid 1 / (1 + e^-x), written as e^-|x| / (1 + e^-|x|) for x < 0 so that large negative inputs
// keep their (tiny, possibly subnormal) relative accuracy instead of underflowing through 1 / inf.
LOOM_AVX2_INLINE __m256 sigmoid(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 e = exp(_mm256_or_ps(abs(x), _mm256_set1_ps(-0.0f)));  // e^-|x| in (0, 1]
  __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, e));
  return _mm256_blendv_ps(s, _mm256_mul_ps(e, s), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
}

// Hyperbolic tangent: for |x| < 0.625 x + x^3 P(x^2) (Cephes tanhf), else sign(x) (1 - 2 / (e^{2|x|} + 1)).
LOOM_AVX2_INLINE __m256 tanh(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 a = abs(x);
  __m256 z = _mm256_mul_ps(x, x);
  __m256 p = _mm256_set1_ps(-5.70498872745E-3f);
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.06390887954E-2f));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-5.37397155531E-2f));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.33314422036E-1f));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-3.33332819422E-1f));
  __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), a, a);
  // e^{2|x|} overflows to inf for |x| > 44: 2 / inf = 0 gives exactly 1.
  __m256 e = exp(_mm256_add_ps(a, a));
  __m256 large = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
  __m256 y = _mm256_blendv_ps(large, small, _mm256_cmp_ps(a, _mm256_set1_ps(0.625f), _CMP_LT_OQ));
  y = _mm256_or_ps(y, sign_bit(x));  // tanh(-0) = -0
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

// Error function (N. Juffa's faithfully rounded erff, max error ~1 ulp): for |x| <= 0.9277 x + x P(x^2),
// else sign(x) (1 - e^{Q(|x|)}) with Q a degree-7 polynomial.
LOOM_AVX2_INLINE __m256 erf(__m256 x) {
  __m256 t = _mm256_min_ps(abs(x), _mm256_set1_ps(10.0f));  // erf(10) rounds to 1; keeps Q finite
  __m256 s = _mm256_mul_ps(x, x);
  // small branch
  __m256 r = _mm256_set1_ps(-5.96761703e-4f);
  r = _mm256_fmadd_ps(r, s, _mm256_set1_ps(4.99119423e-3f));
  r = _mm256_fmadd_ps(r, s, _mm256_set1_ps(-2.67681349e-2f));
  r = _mm256_fmadd_ps(r, s, _mm256_set1_ps(1.12819925e-1f));
  r = _mm256_fmadd_ps(r, s, _mm256_set1_ps(-3.76125336e-1f));
  r = _mm256_fmadd_ps(r, s, _mm256_set1_ps(1.28379166e-1f));
  __m256 small = _mm256_fmadd_ps(r, x, x);
  // large branch
  __m256 ts = _mm256_mul_ps(t, t);
  __m256 q = _mm256_fmadd_ps(_mm256_set1_ps(-1.72853470e-5f), t, _mm256_set1_ps(3.83197126e-4f));
  __m256 u = _mm256_fmadd_ps(_mm256_set1_ps(-3.88396438e-3f), t, _mm256_set1_ps(2.42546219e-2f));
  q = _mm256_fmadd_ps(q, ts, u);
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(-1.06777877e-1f));
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(-6.34846687e-1f));
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(-1.28717512e-1f));
  q = _mm256_fmadd_ps(q, t, _mm256_sub_ps(_mm256_setzero_ps(), t));
  __m256 large = _mm256_sub_ps(_mm256_set1_ps(1.0f), exp(q));
  large = _mm256_or_ps(large, sign_bit(x));
  __m256 y = _mm256_blendv_ps(large, small, _mm256_cmp_ps(abs(x), _mm256_set1_ps(0.927734375f), _CMP_LE_OQ));
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

// The standard normal CDF Phi(x) = (1 + erf(x / sqrt 2)) / 2 for exact GELU, with erf from Abramowitz and Stegun
// 7.1.26 (absolute error <= 1.5e-7, the approximation PyTorch's vectorised GELU uses): one exp and one division,
// and that exp, e^(-x^2/2), is also what GELU's backward needs for the density, so it is handed back in `gauss`.
// Phi's absolute error stays below 1e-7 and, for x < 0, its tail is computed without cancellation;
// avx2::erf remains the accurate erf for the erf op itself.
LOOM_AVX2_INLINE __m256 normal_cdf(__m256 x, __m256& gauss) {
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 z = _mm256_mul_ps(abs(x), _mm256_set1_ps(0.70710678118654752f));
  __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), z, one));
  __m256 r = _mm256_fmadd_ps(_mm256_set1_ps(1.061405429f), t, _mm256_set1_ps(-1.453152027f));
  r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(1.421413741f));
  r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(-0.284496736f));
  r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(0.254829592f));
  gauss = exp(_mm256_mul_ps(_mm256_set1_ps(-0.5f), _mm256_mul_ps(x, x)));
  // The tail 1 - Phi(|x|) = (1 - erf(|x| / sqrt 2)) / 2 directly, so Phi of a negative x keeps its relative
  // accuracy instead of cancelling in 1 + erf.
  __m256 tail = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), _mm256_mul_ps(r, t)), gauss);
  __m256 cdf = _mm256_blendv_ps(_mm256_sub_ps(one, tail), tail, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
  return _mm256_blendv_ps(cdf, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));  // NaN in, NaN out
}

// 8 floats -> 8 bfloat16 bit patterns (the low 128 bits): round to nearest even; NaN stays a quiet NaN
// (bits | 0x40), bit-identical to loom::BFloat16(float).
LOOM_AVX2_INLINE __m128i float_to_bf16(__m256 x) {
  __m256i u = _mm256_castps_si256(x);
  __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
  __m256i nan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  r = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(r), _mm256_castsi256_ps(nan),
                                           _mm256_cmp_ps(x, x, _CMP_UNORD_Q)));
  // 32 -> 16 bits: values fit, so unsigned saturation is exact; packus works per 128-bit lane.
  __m256i packed = _mm256_packus_epi32(r, r);
  packed = _mm256_permute4x64_epi64(packed, 0x08);  // 64-bit lanes 0 and 2 -> the low 128 bits
  return _mm256_castsi256_si128(packed);
}

// 8 bfloat16 bit patterns -> 8 floats (exact).
LOOM_AVX2_INLINE __m256 bf16_to_float(__m128i h) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

}  // namespace loom::cpu::avx2
#endif
