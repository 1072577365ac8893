// Accuracy of the vectorised AVX2 math (simd/vec_avx2.h) against the double-precision libm result: a sweep
// over float's bit patterns (every 251st: all exponents, many mantissas) and the special values.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "loom/backends/cpu/simd/vec_avx2.h"

#if defined(__x86_64__)
namespace {

namespace avx2 = loom::cpu::avx2;
using VecFn = void (*)(const float*, float*, int64_t);

#define LOOM_VEC_APPLY(name)                                                            \
  LOOM_AVX2_FN void apply_##name(const float* x, float* y, int64_t n) {                 \
    for (int64_t i = 0; i < n; i += 8) _mm256_storeu_ps(y + i, avx2::name(_mm256_loadu_ps(x + i))); \
  }
LOOM_VEC_APPLY(exp)
LOOM_VEC_APPLY(log)
LOOM_VEC_APPLY(tanh)
LOOM_VEC_APPLY(sigmoid)
LOOM_VEC_APPLY(erf)
#undef LOOM_VEC_APPLY

bool have_avx2() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

// Error of y in units of the float spacing at the reference (the smallest subnormal below FLT_MIN).
double ulps(float y, double ref) {
  if (std::isnan(ref)) return std::isnan(y) ? 0.0 : 1e30;
  if (std::isinf(static_cast<float>(ref))) ref = static_cast<float>(ref);  // overflows in float
  if (std::isinf(ref)) return (static_cast<double>(y) == ref) ? 0.0 : 1e30;
  if (std::isnan(y) || std::isinf(y)) return 1e30;
  float rf = static_cast<float>(std::fabs(ref));
  double spacing = std::max(static_cast<double>(std::nextafter(rf, std::numeric_limits<float>::infinity()) - rf),
                            static_cast<double>(std::numeric_limits<float>::denorm_min()));
  return std::fabs(static_cast<double>(y) - ref) / spacing;
}

void check(VecFn fn, const std::function<double(double)>& ref, double max_ulps, const std::string& name) {
  std::vector<float> xs;
  for (uint64_t bits = 0; bits <= 0xffffffffull; bits += 251) {
    uint32_t b = static_cast<uint32_t>(bits);
    float f;
    std::memcpy(&f, &b, 4);
    xs.push_back(f);
  }
  const float inf = std::numeric_limits<float>::infinity();
  for (float f : {0.0f, -0.0f, inf, -inf, std::numeric_limits<float>::quiet_NaN(), 1.0f, -1.0f, 0.5f, 1e-30f,
                  -1e-30f, 1e-40f, -1e-40f, 88.7f, 88.8f, -87.0f, -103.0f, -104.0f, 0.625f, -0.625f, 0.927734375f,
                  3.9f, 9.0f, 44.0f, 100.0f, -100.0f, 3.4e38f, -3.4e38f, 1.17549435e-38f})
    xs.push_back(f);
  while (xs.size() % 8) xs.push_back(0.0f);
  std::vector<float> ys(xs.size());
  fn(xs.data(), ys.data(), static_cast<int64_t>(xs.size()));
  double worst = 0.0;
  float worst_x = 0.0f;
  for (size_t i = 0; i < xs.size(); ++i) {
    double r = ref(static_cast<double>(xs[i]));
    double e = ulps(ys[i], r);
    if (e > worst) worst = e, worst_x = xs[i];
    if (r == 0.0 && !std::isnan(ys[i]) && ys[i] == 0.0f) {
      EXPECT_EQ(std::signbit(ys[i]), std::signbit(r)) << name << " sign of zero at x=" << xs[i];
    }
  }
  EXPECT_LE(worst, max_ulps) << name << ": worst x=" << worst_x;
  std::printf("%s: max error %.3f ulp at x=%.9g\n", name.c_str(), worst, worst_x);
}

TEST(VecAvx2, Exp) {
  if (!have_avx2()) GTEST_SKIP() << "no AVX2";
  check(apply_exp, [](double x) { return std::exp(x); }, 2.0, "exp");
}
TEST(VecAvx2, Log) {
  if (!have_avx2()) GTEST_SKIP() << "no AVX2";
  check(apply_log, [](double x) { return std::log(x); }, 2.0, "log");
}
TEST(VecAvx2, Tanh) {
  if (!have_avx2()) GTEST_SKIP() << "no AVX2";
  check(apply_tanh, [](double x) { return std::tanh(x); }, 3.0, "tanh");
}
TEST(VecAvx2, Sigmoid) {
  if (!have_avx2()) GTEST_SKIP() << "no AVX2";
  check(apply_sigmoid, [](double x) { return 1.0 / (1.0 + std::exp(-x)); }, 4.0, "sigmoid");
}
TEST(VecAvx2, Erf) {
  if (!have_avx2()) GTEST_SKIP() << "no AVX2";
  check(apply_erf, [](double x) { return std::erf(x); }, 2.0, "erf");
}

}  // namespace
#endif
