// Vectorised float math written once over a vector type V (avx2::Vec8f in vec_avx2.h, avx512::Vec16f in
// vec_avx512.h) and instantiated per instruction set. Only include this through one of those headers: they wrap
// it in the right target, so that e.g. exp<Vec16f> exists only where AVX-512 code is compiled.
//
// V provides: construction from float (broadcast), + - * / and unary -, bitwise & | on the bit patterns,
// fma(a, b, c) = a b + c and fnma(a, b, c) = c - a b (one rounding), min/max (the second operand when either is
// NaN, like minps/maxps), abs, sqrt, round_nearest, ordered comparisons < <= > >= == and != (unordered) giving
// V::Mask, is_nan, select(mask, a, b) = mask ? a : b, scale_pow2(p, k) = p 2^k for integral k in [-150, 128],
// and split_exponent(x, m) giving the exponent e and mantissa m in [0.5, 1) of a positive normal x = 2^e m.
// Every step is the same IEEE operation on every V, so AVX2 and AVX-512 give the same bits.
//
// Accuracy (tests/cpp/test_vec_math.cpp sweeps each function against double-precision libm over float's
// range, for every instruction set the CPU has): exp, log, tanh, sigmoid and erf are within a few ulp
// (relative) and exact at the special values: NaN -> NaN, exp(-inf) = 0, exp(inf) = inf, log(0) = -inf,
// log(x < 0) = NaN, log(inf) = inf, tanh(+-inf) = +-1, sigmoid(-inf) = 0, sigmoid(inf) = 1, erf(+-inf) = +-1,
// and the sign of zero is kept by log/tanh/erf as libm keeps it.
#pragma once

#define LOOM_VEC_INLINE __attribute__((always_inline)) inline

namespace loom::cpu::simd {

// Lanes of x with the sign bit cleared / only the sign bit.
template <class V>
LOOM_VEC_INLINE V sign_bit(V x) {
  return x & V(-0.0f);
}

// e^x: Cody-Waite range reduction x = k ln2 + r, |r| <= ln2/2, then a degree-6 polynomial (Cephes expf).
template <class V>
LOOM_VEC_INLINE V exp(V x) {
  V k = round_nearest(x * V(1.44269504088896341f));
  V r = fnma(k, V(0.693359375f), x);
  r = fnma(k, V(-2.12194440e-4f), r);
  V p = fma(V(1.9875691500E-4f), r, V(1.3981999507E-3f));
  p = fma(p, r, V(8.3334519073E-3f));
  p = fma(p, r, V(4.1665795894E-2f));
  p = fma(p, r, V(1.6666665459E-1f));
  p = fma(p, r, V(5.0000001201E-1f));
  p = fma(p, r * r, r + V(1.0f));
  V y = scale_pow2(p, k);
  y = select(x > V(88.72283935546875f), V(__builtin_inff()), y);
  y = select(x < V(-103.97208f), V(0.0f), y);
  return select(is_nan(x), x, y);  // NaN in, NaN out
}

// Natural log: x = 2^e m with m in [sqrt(1/2), sqrt(2)), log x = e ln2 + log1p(m - 1), log1p by a degree-9
// polynomial (Cephes logf). Subnormal inputs are scaled by 2^23 first.
template <class V>
LOOM_VEC_INLINE V log(V x) {
  const V one(1.0f), zero(0.0f);
  auto tiny = x < V(1.17549435e-38f);  // subnormal (or <= 0)
  V xs = select(tiny, x * V(8388608.0f), x);
  V m;
  V e = split_exponent(xs, m) - select(tiny, V(23.0f), zero);
  // m < sqrt(1/2): f = 2m - 1, e -= 1; else f = m - 1
  auto small = m < V(0.707106781186547524f);
  V f = (m + select(small, m, zero)) - one;
  e = e - select(small, one, zero);
  V z = f * f;
  V p = fma(V(7.0376836292E-2f), f, V(-1.1514610310E-1f));
  p = fma(p, f, V(1.1676998740E-1f));
  p = fma(p, f, V(-1.2420140846E-1f));
  p = fma(p, f, V(1.4249322787E-1f));
  p = fma(p, f, V(-1.6668057665E-1f));
  p = fma(p, f, V(2.0000714765E-1f));
  p = fma(p, f, V(-2.4999993993E-1f));
  p = fma(p, f, V(3.3333331174E-1f));
  V y = (p * f) * z;
  y = fma(e, V(-2.12194440e-4f), y);
  y = fnma(V(0.5f), z, y);
  y = f + y;
  y = fma(e, V(0.693359375f), y);
  const V inf(__builtin_inff());
  y = select(x < zero, V(__builtin_nanf("")), y);
  y = select(x == zero, V(-__builtin_inff()), y);
  y = select(x == inf, inf, y);
  return select(is_nan(x), x, y);  // NaN in, NaN out
}

// Logistic sigmoid 1 / (1 + e^-x), written as e^-|x| / (1 + e^-|x|) for x < 0 so that large negative inputs
// keep their (tiny, possibly subnormal) relative accuracy instead of underflowing through 1 / inf.
template <class V>
LOOM_VEC_INLINE V sigmoid(V x) {
  const V one(1.0f);
  V e = exp(abs(x) | V(-0.0f));  // e^-|x| in (0, 1]
  V s = one / (one + e);
  return select(x < V(0.0f), e * s, s);
}

// Hyperbolic tangent: for |x| < 0.625 x + x^3 P(x^2) (Cephes tanhf), else sign(x) (1 - 2 / (e^{2|x|} + 1)).
template <class V>
LOOM_VEC_INLINE V tanh(V x) {
  const V one(1.0f);
  V a = abs(x);
  V z = x * x;
  V p = fma(V(-5.70498872745E-3f), z, V(2.06390887954E-2f));
  p = fma(p, z, V(-5.37397155531E-2f));
  p = fma(p, z, V(1.33314422036E-1f));
  p = fma(p, z, V(-3.33332819422E-1f));
  V small = fma(p * z, a, a);
  // e^{2|x|} overflows to inf for |x| > 44: 2 / inf = 0 gives exactly 1.
  V large = one - V(2.0f) / (exp(a + a) + one);
  V y = select(a < V(0.625f), small, large) | sign_bit(x);  // tanh(-0) = -0
  return select(is_nan(x), x, y);
}

// Error function (N. Juffa's faithfully rounded erff, max error ~1 ulp): for |x| <= 0.9277 x + x P(x^2),
// else sign(x) (1 - e^{Q(|x|)}) with Q a degree-7 polynomial.
template <class V>
LOOM_VEC_INLINE V erf(V x) {
  V t = min(abs(x), V(10.0f));  // erf(10) rounds to 1; keeps Q finite
  V s = x * x;
  V r = fma(V(-5.96761703e-4f), s, V(4.99119423e-3f));
  r = fma(r, s, V(-2.67681349e-2f));
  r = fma(r, s, V(1.12819925e-1f));
  r = fma(r, s, V(-3.76125336e-1f));
  r = fma(r, s, V(1.28379166e-1f));
  V small = fma(r, x, x);
  V ts = t * t;
  V q = fma(V(-1.72853470e-5f), t, V(3.83197126e-4f));
  V u = fma(V(-3.88396438e-3f), t, V(2.42546219e-2f));
  q = fma(q, ts, u);
  q = fma(q, t, V(-1.06777877e-1f));
  q = fma(q, t, V(-6.34846687e-1f));
  q = fma(q, t, V(-1.28717512e-1f));
  q = fma(q, t, V(0.0f) - t);
  V large = (V(1.0f) - exp(q)) | sign_bit(x);
  V y = select(abs(x) <= V(0.927734375f), small, large);
  return select(is_nan(x), x, y);
}

// The standard normal CDF Phi(x) = (1 + erf(x / sqrt 2)) / 2 for exact GELU, with erf from Abramowitz and Stegun
// 7.1.26 (absolute error <= 1.5e-7, the approximation PyTorch's vectorised GELU uses): one exp and one division,
// and that exp, e^(-x^2/2), is also what GELU's backward needs for the density, so it is handed back in `gauss`.
// Phi's absolute error stays below 1e-7 and, for x < 0, its tail is computed without cancellation; erf above
// remains the accurate erf for the erf op itself.
template <class V>
LOOM_VEC_INLINE V normal_cdf(V x, V& gauss) {
  const V one(1.0f);
  V z = abs(x) * V(0.70710678118654752f);
  V t = one / fma(V(0.3275911f), z, one);
  V r = fma(V(1.061405429f), t, V(-1.453152027f));
  r = fma(r, t, V(1.421413741f));
  r = fma(r, t, V(-0.284496736f));
  r = fma(r, t, V(0.254829592f));
  gauss = exp(V(-0.5f) * (x * x));
  // The tail 1 - Phi(|x|) = (1 - erf(|x| / sqrt 2)) / 2 directly, so Phi of a negative x keeps its relative
  // accuracy instead of cancelling in 1 + erf.
  V tail = (V(0.5f) * (r * t)) * gauss;
  V cdf = select(x < V(0.0f), tail, one - tail);
  return select(is_nan(x), x, cdf);  // NaN in, NaN out
}

// Exact GELU x Phi(x), and its derivative Phi(x) + x phi(x) times the incoming gradient.
template <class V>
LOOM_VEC_INLINE V gelu(V x) {
  V gauss;
  return x * normal_cdf(x, gauss);
}
template <class V>
LOOM_VEC_INLINE V gelu_backward(V grad, V x) {
  V gauss;  // e^(-x^2/2), shared by the CDF and the density
  V cdf = normal_cdf(x, gauss);
  return grad * (cdf + x * (gauss * V(0.39894228040143268f)));
}

// GELU's tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
template <class V>
LOOM_VEC_INLINE V gelu_tanh(V x) {
  V inner = V(0.79788456080286536f) * (x + ((V(0.044715f) * x) * x) * x);
  return (V(0.5f) * x) * (V(1.0f) + tanh(inner));
}

}  // namespace loom::cpu::simd
