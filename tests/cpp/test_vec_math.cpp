// The vectorised kernels of simd/elementwise.h under every instruction set this CPU has (AVX2, AVX-512; the
// others are skipped with a message): the math against the double-precision libm result over a sweep of
// float's bit patterns (every 251st: all exponents, many mantissas) and the special values; the same bits
// from every instruction set; bfloat16 rounding bit-identical to loom::BFloat16; tails and strided rows.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "loom/backends/cpu/simd/cpu_features.h"
#include "loom/backends/cpu/simd/elementwise.h"
#include "loom/core/half.h"

namespace {

using loom::cpu::CpuCapability;
namespace simd = loom::cpu::simd;

class VecMath : public ::testing::TestWithParam<CpuCapability> {
 protected:
  void SetUp() override {
    if (GetParam() > loom::cpu::detected_cpu_capability())
      GTEST_SKIP() << "this CPU has no " << loom::cpu::cpu_capability_name(GetParam()) << " (best: "
                   << loom::cpu::cpu_capability_name(loom::cpu::detected_cpu_capability()) << ")";
    kernels = simd::elementwise_kernels(GetParam());
    ASSERT_NE(kernels, nullptr);
  }
  // Applies a float32 unary kind to a contiguous vector.
  std::vector<float> apply(simd::UnaryKind kind, const std::vector<float>& xs) const {
    std::vector<float> ys(xs.size());
    char* data[2] = {reinterpret_cast<char*>(ys.data()), const_cast<char*>(reinterpret_cast<const char*>(xs.data()))};
    int64_t strides[2] = {4, 4};
    kernels->unary[static_cast<int>(kind)][static_cast<int>(simd::Storage::Float32)](
        data, strides, static_cast<int64_t>(xs.size()), 0.0f);
    return ys;
  }
  const simd::ElementwiseKernels* kernels = nullptr;
};

std::string capability_name(const ::testing::TestParamInfo<CpuCapability>& info) {
  return loom::cpu::cpu_capability_name(info.param);
}

float from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
uint32_t to_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// Every 251st bit pattern and the special values (an odd count, so the last vector has a tail).
std::vector<float> sweep() {
  std::vector<float> xs;
  for (uint64_t bits = 0; bits <= 0xffffffffull; bits += 251) xs.push_back(from_bits(static_cast<uint32_t>(bits)));
  const float inf = std::numeric_limits<float>::infinity();
  for (float f : {0.0f, -0.0f, inf, -inf, std::numeric_limits<float>::quiet_NaN(), 1.0f, -1.0f, 0.5f, 1e-30f,
                  -1e-30f, 1e-40f, -1e-40f, 88.7f, 88.8f, -87.0f, -103.0f, -104.0f, 0.625f, -0.625f, 0.927734375f,
                  3.9f, 9.0f, 44.0f, 100.0f, -100.0f, 3.4e38f, -3.4e38f, 1.17549435e-38f})
    xs.push_back(f);
  if (xs.size() % 2 == 0) xs.push_back(2.0f);
  return xs;
}

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

void check(const std::vector<float>& xs, const std::vector<float>& ys, const std::function<double(double)>& ref,
           double max_ulps, const std::string& name) {
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

TEST_P(VecMath, Exp) {
  auto xs = sweep();
  check(xs, apply(simd::UnaryKind::Exp, xs), [](double x) { return std::exp(x); }, 2.0, "exp");
}
TEST_P(VecMath, Log) {
  auto xs = sweep();
  check(xs, apply(simd::UnaryKind::Log, xs), [](double x) { return std::log(x); }, 2.0, "log");
}
TEST_P(VecMath, Tanh) {
  auto xs = sweep();
  check(xs, apply(simd::UnaryKind::Tanh, xs), [](double x) { return std::tanh(x); }, 3.0, "tanh");
}
TEST_P(VecMath, Sigmoid) {
  auto xs = sweep();
  check(xs, apply(simd::UnaryKind::Sigmoid, xs), [](double x) { return 1.0 / (1.0 + std::exp(-x)); }, 4.0,
        "sigmoid");
}
TEST_P(VecMath, Erf) {
  auto xs = sweep();
  check(xs, apply(simd::UnaryKind::Erf, xs), [](double x) { return std::erf(x); }, 2.0, "erf");
}
// Exact GELU x Phi(x): Phi's absolute error stays below 1e-7 (Abramowitz-Stegun erf), so the error relative to
// max(|x|, 1) stays below 2e-7.
TEST_P(VecMath, Gelu) {
  auto xs = sweep();
  auto ys = apply(simd::UnaryKind::Gelu, xs);
  double worst = 0.0;
  float worst_x = 0.0f;
  for (size_t i = 0; i < xs.size(); ++i) {
    double x = xs[i];
    if (std::isnan(x)) {
      EXPECT_TRUE(std::isnan(ys[i]));
    } else if (x == std::numeric_limits<double>::infinity()) {
      EXPECT_EQ(ys[i], xs[i]);
    } else if (!std::isinf(x)) {
      double err = std::fabs(ys[i] - x * 0.5 * std::erfc(-x / std::sqrt(2.0))) / std::max(std::fabs(x), 1.0);
      if (err > worst) worst = err, worst_x = xs[i];
    }
  }
  EXPECT_LE(worst, 2e-7) << "worst x=" << worst_x;
}

// The math is the same sequence of IEEE operations on every instruction set: AVX-512 gives AVX2's bits.
TEST_P(VecMath, SameBitsAsAvx2) {
  if (GetParam() == CpuCapability::Avx2) GTEST_SKIP() << "compares another instruction set with avx2";
  const simd::ElementwiseKernels* avx2 = simd::elementwise_kernels(CpuCapability::Avx2);
  auto xs = sweep();
  for (int kind = 0; kind < static_cast<int>(simd::UnaryKind::Count); ++kind) {
    auto ys = apply(static_cast<simd::UnaryKind>(kind), xs);
    std::vector<float> ref(xs.size());
    char* data[2] = {reinterpret_cast<char*>(ref.data()), reinterpret_cast<char*>(xs.data())};
    int64_t strides[2] = {4, 4};
    avx2->unary[kind][0](data, strides, static_cast<int64_t>(xs.size()), 0.0f);
    for (size_t i = 0; i < xs.size(); ++i) {
      if (std::isnan(ref[i]) && std::isnan(ys[i])) continue;
      ASSERT_EQ(to_bits(ys[i]), to_bits(ref[i])) << "unary kind " << kind << " at x=" << xs[i];
    }
  }
}

// float32 -> bfloat16 rounds to nearest even, keeps NaN quiet and keeps subnormals, bit for bit like
// loom::BFloat16; bfloat16 -> float32 is exact. Every 97th bit pattern plus ties, NaNs and subnormals.
TEST_P(VecMath, BFloat16Conversions) {
  std::vector<float> xs;
  for (uint64_t bits = 0; bits <= 0xffffffffull; bits += 97) xs.push_back(from_bits(static_cast<uint32_t>(bits)));
  for (uint32_t b : {0x3f808000u, 0x3f818000u, 0x7f7fffffu, 0xff7fffffu, 0x00008000u, 0x00018000u, 0x7fc00001u,
                     0x7f800001u, 0xff800001u, 0x7f800000u, 0x80000001u, 0x007fffffu})
    xs.push_back(from_bits(b));
  xs.push_back(1.0f);  // odd count: a tail
  std::vector<uint16_t> h(xs.size());
  kernels->float_to_bf16(h.data(), xs.data(), static_cast<int64_t>(xs.size()));
  for (size_t i = 0; i < xs.size(); ++i)
    ASSERT_EQ(h[i], loom::BFloat16(xs[i]).bits) << "float_to_bf16 of bits " << std::hex << to_bits(xs[i]);
  std::vector<float> back(xs.size());
  kernels->bf16_to_float(back.data(), h.data(), static_cast<int64_t>(h.size()));
  for (size_t i = 0; i < xs.size(); ++i) ASSERT_EQ(to_bits(back[i]), static_cast<uint32_t>(h[i]) << 16);
}

// Every row length (tails) and layout (strided, broadcast) gives the contiguous result, for float32 and
// bfloat16, unary and binary.
TEST_P(VecMath, TailsAndStrides) {
  const int64_t n_max = 37;
  std::vector<float> a(2 * n_max), b(2 * n_max);
  for (int64_t i = 0; i < 2 * n_max; ++i) a[i] = 0.37f * static_cast<float>(i) - 5.0f, b[i] = 1.0f + 0.01f * i;
  simd::RowFn gelu = kernels->unary[static_cast<int>(simd::UnaryKind::Gelu)][0];
  simd::RowFn sub = kernels->binary[static_cast<int>(simd::BinaryKind::Sub)][0];
  std::vector<float> full(2 * n_max), full_sub(2 * n_max);
  {
    char* d[2] = {reinterpret_cast<char*>(full.data()), reinterpret_cast<char*>(a.data())};
    int64_t s[2] = {4, 4};
    gelu(d, s, 2 * n_max, 0.0f);
    char* d3[3] = {reinterpret_cast<char*>(full_sub.data()), reinterpret_cast<char*>(a.data()),
                   reinterpret_cast<char*>(b.data())};
    int64_t s3[3] = {4, 4, 4};
    sub(d3, s3, 2 * n_max, 2.5f);
  }
  for (int64_t n = 1; n <= n_max; ++n) {
    std::vector<float> out(2 * n_max, -7.0f);
    char* d[2] = {reinterpret_cast<char*>(out.data()), reinterpret_cast<char*>(a.data())};
    int64_t s[2] = {8, 8};  // every other element
    gelu(d, s, n, 0.0f);
    for (int64_t i = 0; i < 2 * n_max; ++i) {
      if (i % 2 == 0 && i / 2 < n) ASSERT_EQ(to_bits(out[i]), to_bits(full[i])) << "n=" << n << " i=" << i;
      else ASSERT_EQ(out[i], -7.0f) << "wrote past the row: n=" << n << " i=" << i;
    }
    std::vector<float> out2(n_max, -7.0f);
    char* d3[3] = {reinterpret_cast<char*>(out2.data()), reinterpret_cast<char*>(a.data()),
                   reinterpret_cast<char*>(b.data() + 3)};
    int64_t s3[3] = {4, 4, 0};  // b broadcast: a - 2.5 b[3]
    sub(d3, s3, n, 2.5f);
    for (int64_t i = 0; i < n_max; ++i) {
      if (i < n) ASSERT_EQ(out2[i], std::fma(-2.5f, b[3], a[i])) << "n=" << n << " i=" << i;
      else ASSERT_EQ(out2[i], -7.0f);
    }
  }
  // bfloat16 storage: computed in float from the widened inputs, rounded once.
  std::vector<uint16_t> ah(n_max), oh(n_max);
  for (int64_t i = 0; i < n_max; ++i) ah[i] = loom::BFloat16(a[i]).bits;
  char* d[2] = {reinterpret_cast<char*>(oh.data()), reinterpret_cast<char*>(ah.data())};
  int64_t s[2] = {2, 2};
  kernels->unary[static_cast<int>(simd::UnaryKind::Gelu)][1](d, s, n_max, 0.0f);
  for (int64_t i = 0; i < n_max; ++i) {
    loom::BFloat16 h;
    h.bits = ah[i];
    float x = h;
    std::vector<float> one = apply(simd::UnaryKind::Gelu, {x});
    ASSERT_EQ(oh[i], loom::BFloat16(one[0]).bits) << "i=" << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Capabilities, VecMath, ::testing::Values(CpuCapability::Avx2, CpuCapability::Avx512),
                         capability_name);

}  // namespace
