// CPU reduction kernels. Every reduction is brought to the form [outer, R, inner] (R reduced):
// directly when the reduced dims form one block of a contiguous input, else by a permuted copy.
#include "loom/backends/cpu/reduce.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "loom/backends/cpu/dispatch_dtype.h"
#include "loom/backends/cpu/kernel_util.h"
#include "loom/backends/cpu/simd/cpu_features.h"
#include "loom/backends/cpu/simd/vec_avx2.h"
#include "loom/ops/reduce.h"
#include "loom/ops/shape.h"

namespace loom::cpu {

namespace {
// The element count of the dims of `sizes` that `in_group` selects. Only a zero-size tensor's dims can multiply
// past int64 (loom allows (2^62, 64, 0)); such a group counts as 0. That is exact when the group holds the 0, and
// harmless otherwise: the 0 is then in another group, and `no_elements` zeroes the reduced count anyway.
template <class Pred>
int64_t group_numel(const Shape& sizes, Pred in_group) {
  int64_t n = 1;
  for (int64_t i = 0; i < static_cast<int64_t>(sizes.size()); ++i)
    if (in_group(i) && (sizes[i] == 0 || __builtin_mul_overflow(n, sizes[i], &n))) return 0;
  return n;
}

// A zero-size input whose 0 is among the outer or inner dims has an empty output (its outer * inner elements were
// allocated, so that product does not overflow) and no element to visit: its reduced count becomes 0 too, so no
// kernel computes with a count near 2^63 (grain sizes such as R * 64, offsets such as o * R * inner).
template <class Layout>
Layout no_elements(Layout l) {
  if (l.outer == 0 || l.inner == 0) l.reduced = 0;
  return l;
}
}  // namespace

ReductionLayout reduction_layout(const Tensor& input, const Dims& dims) {
  const Shape& sizes = input.sizes();
  auto reduced = [&](int64_t i) { return std::find(dims.begin(), dims.end(), i) != dims.end(); };
  bool block = !dims.empty() && dims.back() - dims.front() + 1 == static_cast<int64_t>(dims.size());
  if (input.is_contiguous() && block)
    return no_elements(ReductionLayout{input, group_numel(sizes, [&](int64_t i) { return i < dims.front(); }),
                                       group_numel(sizes, reduced),
                                       group_numel(sizes, [&](int64_t i) { return i > dims.back(); })});
  // Otherwise the kept dims go first and the reduced dims last, in a contiguous copy (inner is 1).
  std::vector<int64_t> order;
  for (int64_t i = 0; i < input.dim(); ++i)
    if (!reduced(i)) order.push_back(i);
  order.insert(order.end(), dims.begin(), dims.end());
  return no_elements(ReductionLayout{contiguous(permute(input, order)),
                                     group_numel(sizes, [&](int64_t i) { return !reduced(i); }),
                                     group_numel(sizes, reduced), 1});
}

DimLayout dim_layout(const Tensor& input, int64_t dim) {
  DimLayout l{contiguous(input)};
  l.outer = group_numel(input.sizes(), [&](int64_t i) { return i < dim; });
  l.reduced = input.dim() == 0 ? 1 : input.sizes()[dim];  // a 0-d tensor is one line of one element
  l.inner = group_numel(input.sizes(), [&](int64_t i) { return i > dim; });
  return no_elements(l);
}

namespace {

// ---- fast float32/float64 sums ----
//
// float32 is summed in float the way PyTorch's cascade sum does, in blocks: within a block of kSumBlock
// elements 32 independent partial sums (4 vectors, or 4 scalars on the portable path) each add up at most
// kSumBlock/32 elements; block results are combined in double. float64 sums in double throughout.
constexpr int64_t kSumBlock = 4096;

template <class T>
double sum_row_scalar(const T* x, int64_t n) {
  double total = 0;
  for (int64_t b = 0; b < n; b += kSumBlock) {
    const int64_t m = std::min(kSumBlock, n - b);
    const T* p = x + b;
    T a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int64_t i = 0;
    for (; i + 4 <= m; i += 4) {
      a0 += p[i];
      a1 += p[i + 1];
      a2 += p[i + 2];
      a3 += p[i + 3];
    }
    for (; i < m; ++i) a0 += p[i];
    total += static_cast<double>((a0 + a1) + (a2 + a3));
  }
  return total;
}

#if defined(__x86_64__)
LOOM_AVX2_FN double sum_row_avx2(const float* x, int64_t n) {
  double total = 0;
  for (int64_t b = 0; b < n; b += kSumBlock) {
    const int64_t m = std::min(kSumBlock, n - b);
    const float* p = x + b;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= m; i += 32) {
      a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
      a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
      a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + i + 16));
      a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + i + 24));
    }
    for (; i + 8 <= m; i += 8) a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
    if (i < m) a1 = _mm256_add_ps(a1, _mm256_maskload_ps(p + i, avx2::tail_mask(m - i)));
    total += static_cast<double>(avx2::reduce_add(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3))));
  }
  return total;
}

LOOM_AVX2_FN double sum_row_avx2(const double* x, int64_t n) {
  __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_add_pd(a0, _mm256_loadu_pd(x + i));
    a1 = _mm256_add_pd(a1, _mm256_loadu_pd(x + i + 4));
    a2 = _mm256_add_pd(a2, _mm256_loadu_pd(x + i + 8));
    a3 = _mm256_add_pd(a3, _mm256_loadu_pd(x + i + 12));
  }
  for (; i + 4 <= n; i += 4) a0 = _mm256_add_pd(a0, _mm256_loadu_pd(x + i));
  __m256d s = _mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3));
  __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
  double total = _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
  for (; i < n; ++i) total += x[i];
  return total;
}

// out[i] = sum_r x[r * inner + i] for i < n (a column block of an [R, inner] slab); float32 accumulates in
// float over blocks of kColumnBlock rows, the blocks combined in double.
constexpr int64_t kColumnBlock = 128;
LOOM_AVX2_FN void sum_columns_avx2(const float* x, float* out, int64_t R, int64_t inner, int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256d t[8];
    for (auto& v : t) v = _mm256_setzero_pd();
    for (int64_t r0 = 0; r0 < R; r0 += kColumnBlock) {
      const int64_t r1 = std::min(R, r0 + kColumnBlock);
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      for (int64_t r = r0; r < r1; ++r) {
        const float* p = x + r * inner + i;
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + 8));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + 16));
        a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + 24));
      }
      const __m256 a[4] = {a0, a1, a2, a3};
      for (int k = 0; k < 4; ++k) {
        t[2 * k] = _mm256_add_pd(t[2 * k], _mm256_cvtps_pd(_mm256_castps256_ps128(a[k])));
        t[2 * k + 1] = _mm256_add_pd(t[2 * k + 1], _mm256_cvtps_pd(_mm256_extractf128_ps(a[k], 1)));
      }
    }
    for (int k = 0; k < 4; ++k)
      _mm256_storeu_ps(out + i + 8 * k, _mm256_set_m128(_mm256_cvtpd_ps(t[2 * k + 1]), _mm256_cvtpd_ps(t[2 * k])));
  }
  for (; i < n; i += 8) {
    const __m256i mask = avx2::tail_mask(std::min<int64_t>(8, n - i));
    __m256d lo = _mm256_setzero_pd(), hi = lo;
    for (int64_t r0 = 0; r0 < R; r0 += kColumnBlock) {
      const int64_t r1 = std::min(R, r0 + kColumnBlock);
      __m256 a = _mm256_setzero_ps();
      for (int64_t r = r0; r < r1; ++r) a = _mm256_add_ps(a, _mm256_maskload_ps(x + r * inner + i, mask));
      lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(a)));
      hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)));
    }
    _mm256_maskstore_ps(out + i, mask, _mm256_set_m128(_mm256_cvtpd_ps(hi), _mm256_cvtpd_ps(lo)));
  }
}

LOOM_AVX2_FN void sum_columns_avx2(const double* x, double* out, int64_t R, int64_t inner, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t r = 0; r < R; ++r) {
      const double* p = x + r * inner + i;
      a0 = _mm256_add_pd(a0, _mm256_loadu_pd(p));
      a1 = _mm256_add_pd(a1, _mm256_loadu_pd(p + 4));
      a2 = _mm256_add_pd(a2, _mm256_loadu_pd(p + 8));
      a3 = _mm256_add_pd(a3, _mm256_loadu_pd(p + 12));
    }
    _mm256_storeu_pd(out + i, a0);
    _mm256_storeu_pd(out + i + 4, a1);
    _mm256_storeu_pd(out + i + 8, a2);
    _mm256_storeu_pd(out + i + 12, a3);
  }
  for (; i < n; ++i) {
    double a = 0;
    for (int64_t r = 0; r < R; ++r) a += x[r * inner + i];
    out[i] = a;
  }
}
#endif

// Short rows are summed in double (correctly rounded in practice, as the generic path does).
constexpr int64_t kShortSum = 64;

template <class T>
double sum_row(const T* x, int64_t n) {
  if (n < kShortSum) {
    double total = 0;
    for (int64_t i = 0; i < n; ++i) total += x[i];
    return total;
  }
#if defined(__x86_64__)
  if (use_avx2()) return sum_row_avx2(x, n);
#endif
  return sum_row_scalar(x, n);
}

template <class T>
void sum_columns(const T* x, T* out, int64_t R, int64_t inner, int64_t n) {
#if defined(__x86_64__)
  if (use_avx2()) return sum_columns_avx2(x, out, R, inner, n);
#endif
  // Portable: the same blocking as the AVX2 path (float partials over kColumnBlock rows, combined in double).
  std::vector<double> total(n, 0.0);
  std::vector<T> part(n);
  for (int64_t r0 = 0; r0 < R; r0 += kColumnBlock) {
    std::fill(part.begin(), part.end(), T(0));
    const int64_t r1 = std::min(R, r0 + kColumnBlock);
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t i = 0; i < n; ++i) part[i] += x[r * inner + i];
    for (int64_t i = 0; i < n; ++i) total[i] += part[i];
  }
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(total[i]);
}

// sum over R of a contiguous [outer, R, inner] float32/float64 layout.
template <class T>
void fast_sum(const ReductionLayout& l, T* out) {
  const T* x = l.data.template data<T>();
  const int64_t outer = l.outer, R = l.reduced, inner = l.inner;
  if (inner == 1) {
    if (outer == 1) {
      // A full reduction: chunks summed in parallel, combined in double in chunk order (deterministic).
      const int64_t chunk = std::max<int64_t>(kElementwiseGrain * 4, (R + 63) / 64);
      const int64_t chunks = (R + chunk - 1) / chunk;
      std::vector<double> partial(static_cast<size_t>(std::max<int64_t>(chunks, 1)), 0.0);
      parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
        for (int64_t k = b; k < e; ++k) partial[k] = sum_row(x + k * chunk, std::min(chunk, R - k * chunk));
      });
      double total = 0;
      for (double p : partial) total += p;
      out[0] = static_cast<T>(total);
      return;
    }
    parallel_for(0, outer, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(R, 1)), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) out[o] = static_cast<T>(sum_row(x + o * R, R));
    });
    return;
  }
  // Column sums: work items are (o, tile of kTile columns).
  constexpr int64_t kTile = 64;
  const int64_t tiles = (inner + kTile - 1) / kTile;
  parallel_for(0, outer * tiles, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(R * kTile, 1)),
               [&](int64_t b, int64_t e) {
    for (int64_t w = b; w < e; ++w) {
      const int64_t o = w / tiles, i0 = (w % tiles) * kTile;
      sum_columns(x + o * R * inner + i0, out + o * inner + i0, R, inner, std::min(kTile, inner - i0));
    }
  });
}

std::vector<Tensor> sum_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  if ((out.dtype() == DType::Float32 || out.dtype() == DType::Float64) && c.inputs[0].dtype() == out.dtype()) {
    ReductionLayout l = reduction_layout(c.inputs[0], c.attrs.get<Dims>("dims"));
    if (out.dtype() == DType::Float32) fast_sum<float>(l, out.data<float>());
    else fast_sum<double>(l, out.data<double>());
    return {out};
  }
  // Accumulate in the output dtype's wide type: double for floats, int64 for integers.
  Tensor in = c.inputs[0].dtype() == out.dtype() ? c.inputs[0] : to_dtype(c.inputs[0], out.dtype());
  ReductionLayout l = reduction_layout(in, c.attrs.get<Dims>("dims"));
  visit_dtype(out.dtype(), [&]<class T>() {
    using Acc = std::conditional_t<std::is_floating_point_v<opmath_t<T>>, double,
                                   std::conditional_t<std::is_same_v<T, bool>, bool, int64_t>>;
    reduce_layout<T, T, Acc>(
        l, out.data<T>(), Acc(0), [](Acc acc, T x) { return wrap_add(acc, static_cast<Acc>(opmath_t<T>(x))); },
        [](Acc acc, int64_t) { return T(static_cast<opmath_t<T>>(acc)); });
  });
  return {out};
}

// The wide accumulator of a sum/product in dtype T: double for floats, int64 for integers, bool for bool.
template <class T>
using wide_t = std::conditional_t<std::is_floating_point_v<opmath_t<T>>, double,
                                  std::conditional_t<std::is_same_v<T, bool>, bool, int64_t>>;

std::vector<Tensor> prod_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  Tensor in = c.inputs[0].dtype() == out.dtype() ? c.inputs[0] : to_dtype(c.inputs[0], out.dtype());
  ReductionLayout l = reduction_layout(in, c.attrs.get<Dims>("dims"));
  visit_dtype(out.dtype(), [&]<class T>() {
    using Acc = wide_t<T>;
    reduce_layout<T, T, Acc>(
        l, out.data<T>(), Acc(1), [](Acc acc, T x) { return wrap_mul(acc, static_cast<Acc>(opmath_t<T>(x))); },
        [](Acc acc, int64_t) { return T(static_cast<opmath_t<T>>(acc)); });
  });
  return {out};
}

template <class M>
bool is_nan(M x) {
  if constexpr (std::is_floating_point_v<M>) return std::isnan(x);
  else return false;
}

// x beats the current extreme: NaN beats everything (and stays), then strictly greater (max) or smaller (min).
template <bool IsMax, class M>
bool beats(M x, M current) {
  if (is_nan(current)) return false;
  if (is_nan(x)) return true;
  if constexpr (IsMax) return x > current;
  else return x < current;
}

#if defined(__x86_64__)
template <bool IsMax>
LOOM_AVX2_INLINE __m256 vextreme(__m256 a, __m256 b) {
  if constexpr (IsMax) return _mm256_max_ps(a, b);
  else return _mm256_min_ps(a, b);
}

// float32 amax/amin of one contiguous row (R >= 1); a NaN anywhere gives NaN.
template <bool IsMax>
LOOM_AVX2_FN float extreme_row_avx2(const float* x, int64_t R) {
  const __m256 first = _mm256_set1_ps(x[0]);
  __m256 m0 = first, m1 = first, m2 = first, m3 = first, nan = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= R; i += 32) {
    __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
    __m256 c = _mm256_loadu_ps(x + i + 16), d = _mm256_loadu_ps(x + i + 24);
    nan = _mm256_or_ps(nan, _mm256_or_ps(_mm256_cmp_ps(a, b, _CMP_UNORD_Q), _mm256_cmp_ps(c, d, _CMP_UNORD_Q)));
    m0 = vextreme<IsMax>(m0, a);
    m1 = vextreme<IsMax>(m1, b);
    m2 = vextreme<IsMax>(m2, c);
    m3 = vextreme<IsMax>(m3, d);
  }
  for (; i < R; i += 8) {
    const __m256i mask = avx2::tail_mask(R - i);
    __m256 a = _mm256_blendv_ps(first, _mm256_maskload_ps(x + i, mask), _mm256_castsi256_ps(mask));
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
    m0 = vextreme<IsMax>(m0, a);
  }
  if (_mm256_movemask_ps(nan) || x[0] != x[0]) return std::numeric_limits<float>::quiet_NaN();
  __m256 m = vextreme<IsMax>(vextreme<IsMax>(m0, m1), vextreme<IsMax>(m2, m3));
  if constexpr (IsMax) return avx2::reduce_max(m);
  else return -avx2::reduce_max(_mm256_sub_ps(_mm256_setzero_ps(), m));
}

// float32 amax/amin over R of n (<= 8) neighbouring columns x[r * inner + 0..n).
template <bool IsMax>
LOOM_AVX2_FN void extreme_columns_avx2(const float* x, float* out, int64_t R, int64_t inner, int64_t n) {
  const __m256i mask = avx2::tail_mask(n);
  __m256 m = _mm256_maskload_ps(x, mask), nan = _mm256_cmp_ps(m, m, _CMP_UNORD_Q);
  for (int64_t r = 1; r < R; ++r) {
    __m256 v = _mm256_maskload_ps(x + r * inner, mask);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    m = vextreme<IsMax>(m, v);
  }
  _mm256_maskstore_ps(out, mask, _mm256_blendv_ps(m, _mm256_set1_ps(std::numeric_limits<float>::quiet_NaN()), nan));
}
#endif

template <bool IsMax>
std::vector<Tensor> extreme_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  ReductionLayout l = reduction_layout(c.inputs[0], c.attrs.get<Dims>("dims"));
#if defined(__x86_64__)
  if (out.dtype() == DType::Float32 && use_avx2() && l.reduced >= 1) {
    const float* x = l.data.data<float>();
    float* y = out.data<float>();
    const int64_t R = l.reduced, inner = l.inner;
    if (inner == 1) {
      parallel_for(0, l.outer, std::max<int64_t>(1, kElementwiseGrain / R), [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; ++o) y[o] = extreme_row_avx2<IsMax>(x + o * R, R);
      });
    } else {
      const int64_t tiles = (inner + 7) / 8;
      parallel_for(0, l.outer * tiles, std::max<int64_t>(1, kElementwiseGrain / (R * 8)), [&](int64_t b, int64_t e) {
        for (int64_t w = b; w < e; ++w) {
          const int64_t o = w / tiles, i0 = (w % tiles) * 8;
          extreme_columns_avx2<IsMax>(x + o * R * inner + i0, y + o * inner + i0, R, inner, std::min<int64_t>(8, inner - i0));
        }
      });
    }
    return {out};
  }
#endif
  visit_dtype(out.dtype(), [&]<class T>() {
    using M = opmath_t<T>;
    M init = IsMax ? std::numeric_limits<M>::lowest() : std::numeric_limits<M>::max();
    if constexpr (std::is_floating_point_v<M>) init = IsMax ? -std::numeric_limits<M>::infinity() : std::numeric_limits<M>::infinity();
    reduce_layout<T, T, M>(
        l, out.data<T>(), init, [](M acc, T x) { return beats<IsMax>(M(x), acc) ? M(x) : acc; },
        [](M acc, int64_t) { return T(acc); });
  });
  return {out};
}

template <bool IsAll>
std::vector<Tensor> logical_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  ReductionLayout l = reduction_layout(c.inputs[0], c.attrs.get<Dims>("dims"));
  visit_dtype(c.inputs[0].dtype(), [&]<class T>() {
    auto fold = [](bool acc, T x) { return IsAll ? (acc && static_cast<bool>(x)) : (acc || static_cast<bool>(x)); };
    if (out.dtype() == DType::UInt8)
      reduce_layout<T, uint8_t, bool>(l, out.data<uint8_t>(), IsAll, fold, [](bool acc, int64_t) { return uint8_t(acc); });
    else
      reduce_layout<T, bool, bool>(l, out.data<bool>(), IsAll, fold, [](bool acc, int64_t) { return acc; });
  });
  return {out};
}

template <bool IsMax>
std::vector<Tensor> arg_extreme_kernel(const KernelContext& c) {
  Tensor values = c.alloc(0), indices = c.alloc(1);
  DimLayout l = dim_layout(c.inputs[0], c.attrs.get<int64_t>("dim"));
  visit_dtype(values.dtype(), [&]<class T>() {
    using M = opmath_t<T>;
    const T* x = l.data.data<T>();
    T* v = values.data<T>();
    int64_t* idx = indices.data<int64_t>();
    for_each_line(l, [&](int64_t line, int64_t first, int64_t stride) {
      M best = M(x[first]);
      int64_t best_index = 0;
      for (int64_t r = 1; r < l.reduced; ++r) {
        M value = M(x[first + r * stride]);
        if (beats<IsMax>(value, best)) {
          best = value;
          best_index = r;
        }
      }
      v[line] = T(best);
      idx[line] = best_index;
    });
  });
  return {values, indices};
}

template <bool IsSum>
std::vector<Tensor> scan_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  DimLayout l = dim_layout(c.inputs[0], c.attrs.get<int64_t>("dim"));
  visit_dtype(out.dtype(), [&]<class T>() {
    using Acc = wide_t<T>;
    const T* x = l.data.data<T>();
    T* y = out.data<T>();
    for_each_line(l, [&](int64_t, int64_t first, int64_t stride) {
      Acc acc = IsSum ? Acc(0) : Acc(1);
      for (int64_t r = 0; r < l.reduced; ++r) {
        int64_t at = first + r * stride;
        Acc value = static_cast<Acc>(opmath_t<T>(x[at]));
        if constexpr (IsSum) acc = wrap_add(acc, value);
        else acc = wrap_mul(acc, value);
        y[at] = T(static_cast<opmath_t<T>>(acc));
      }
    });
  });
  return {out};
}

// Running log(sum(exp)) along the line (from its end when `reverse`), accumulated in double.
std::vector<Tensor> logcumsumexp_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  const bool reverse = c.attrs.get<bool>("reverse");
  DimLayout l = dim_layout(c.inputs[0], c.attrs.get<int64_t>("dim"));
  visit_floating(out.dtype(), "logcumsumexp", [&]<class T>() {
    const T* x = l.data.data<T>();
    T* y = out.data<T>();
    for_each_line(l, [&](int64_t, int64_t first, int64_t stride) {
      double acc = -std::numeric_limits<double>::infinity();
      for (int64_t step = 0; step < l.reduced; ++step) {
        int64_t at = first + (reverse ? l.reduced - 1 - step : step) * stride;
        double value = static_cast<double>(opmath_t<T>(x[at]));
        double high = std::max(acc, value), low = std::min(acc, value);
        if (std::isnan(value) || std::isnan(acc)) acc = std::numeric_limits<double>::quiet_NaN();
        else if (low == -std::numeric_limits<double>::infinity() || high == std::numeric_limits<double>::infinity()) acc = high;
        else acc = high + std::log1p(std::exp(low - high));
        y[at] = T(static_cast<opmath_t<T>>(acc));
      }
    });
  });
  return {out};
}

// Running extreme with the index where it was reached: ties and NaNs take the latest index (PyTorch's rule).
template <bool IsMax>
std::vector<Tensor> cumulative_extreme_kernel(const KernelContext& c) {
  Tensor values = c.alloc(0), indices = c.alloc(1);
  DimLayout l = dim_layout(c.inputs[0], c.attrs.get<int64_t>("dim"));
  visit_dtype(values.dtype(), [&]<class T>() {
    using M = opmath_t<T>;
    const T* x = l.data.data<T>();
    T* v = values.data<T>();
    int64_t* idx = indices.data<int64_t>();
    for_each_line(l, [&](int64_t, int64_t first, int64_t stride) {
      M best{};
      int64_t best_index = 0;
      for (int64_t r = 0; r < l.reduced; ++r) {
        int64_t at = first + r * stride;
        M value = M(x[at]);
        bool take = r == 0 || is_nan(value) || (!is_nan(best) && (IsMax ? value >= best : value <= best));
        if (take) {
          best = value;
          best_index = r;
        }
        v[at] = T(best);
        idx[at] = best_index;
      }
    });
  });
  return {values, indices};
}

// y = exp(x - max) / sum(exp(x - max)), or its log: x - max - log(sum(exp(x - max))).
// Works on `n` neighbouring lines at once ([outer, R, inner] with i0..i0+n-1 in the inner dim), so a softmax over
// a non-last dim reads contiguous rows; n is 1 for the last dim.
// One contiguous line (softmax over the last dim).
template <bool IsLog, class T>
void softmax_line(const T* x, T* y, int64_t R) {
  using M = opmath_t<T>;
  M max_value = -std::numeric_limits<M>::infinity();
  bool has_nan = false;
  for (int64_t r = 0; r < R; ++r) {
    M value = M(x[r]);
    has_nan |= value != value;
    max_value = value > max_value ? value : max_value;
  }
  // An infinite max is kept: x - max is then NaN, and the whole line NaN, as in torch.
  if (has_nan) max_value = std::numeric_limits<M>::quiet_NaN();
  double total = 0;
  for (int64_t r = 0; r < R; ++r) {
    M e = std::exp(M(x[r]) - max_value);
    total += e;
    if constexpr (!IsLog) y[r] = T(e);
  }
  if constexpr (IsLog) {
    M log_total = static_cast<M>(std::log(total));
    for (int64_t r = 0; r < R; ++r) y[r] = T(M(x[r]) - max_value - log_total);
  } else {
    M scale = static_cast<M>(1.0 / total);
    for (int64_t r = 0; r < R; ++r) y[r] = T(M(y[r]) * scale);
  }
}

#if defined(__x86_64__)
// float32 softmax of one contiguous line: vector max (NaN tracked apart, as _mm256_max_ps drops it), exp and sum
// in one pass, then the scale.
template <bool IsLog>
LOOM_AVX2_FN void softmax_line_avx2(const float* x, float* y, int64_t R) {
  const __m256 neg_inf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 m0 = neg_inf, m1 = neg_inf, nan = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= R; i += 16) {
    __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(a, b, _CMP_UNORD_Q));
    m0 = _mm256_max_ps(m0, a);
    m1 = _mm256_max_ps(m1, b);
  }
  for (; i < R; i += 8) {
    __m256i mask = avx2::tail_mask(R - i);
    __m256 a = _mm256_blendv_ps(neg_inf, _mm256_maskload_ps(x + i, mask), _mm256_castsi256_ps(mask));
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
    m0 = _mm256_max_ps(m0, a);
  }
  float max_value = avx2::reduce_max(_mm256_max_ps(m0, m1));
  if (_mm256_movemask_ps(nan)) max_value = std::numeric_limits<float>::quiet_NaN();
  const __m256 vmax = _mm256_set1_ps(max_value);
  __m256 s0 = _mm256_setzero_ps(), s1 = s0;
  i = 0;
  for (; i + 16 <= R; i += 16) {
    __m256 e0 = avx2::exp(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax));
    __m256 e1 = avx2::exp(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vmax));
    if constexpr (!IsLog) {
      _mm256_storeu_ps(y + i, e0);
      _mm256_storeu_ps(y + i + 8, e1);
    }
    s0 = _mm256_add_ps(s0, e0);
    s1 = _mm256_add_ps(s1, e1);
  }
  for (; i < R; i += 8) {
    __m256i mask = avx2::tail_mask(R - i);
    __m256 e = _mm256_and_ps(avx2::exp(_mm256_sub_ps(_mm256_maskload_ps(x + i, mask), vmax)), _mm256_castsi256_ps(mask));
    if constexpr (!IsLog) _mm256_maskstore_ps(y + i, mask, e);
    s0 = _mm256_add_ps(s0, e);
  }
  const float total = avx2::reduce_add(_mm256_add_ps(s0, s1));
  if constexpr (IsLog) {
    const __m256 log_total = _mm256_set1_ps(std::log(total));
    for (i = 0; i + 8 <= R; i += 8)
      _mm256_storeu_ps(y + i, _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax), log_total));
    for (; i < R; ++i) y[i] = (x[i] - max_value) - std::log(total);
  } else {
    const float scale = 1.0f / total;
    const __m256 vscale = _mm256_set1_ps(scale);
    for (i = 0; i + 8 <= R; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), vscale));
    for (; i < R; ++i) y[i] *= scale;
  }
}

// float32 softmax over R of the n (<= 8) neighbouring columns x[r * inner + 0..n).
template <bool IsLog>
LOOM_AVX2_FN void softmax_columns_avx2(const float* x, float* y, int64_t R, int64_t inner, int64_t n) {
  const __m256i mask = avx2::tail_mask(n);
  const __m256 inf = _mm256_set1_ps(std::numeric_limits<float>::infinity());
  __m256 m = _mm256_sub_ps(_mm256_setzero_ps(), inf), nan = _mm256_setzero_ps();
  for (int64_t r = 0; r < R; ++r) {
    __m256 v = _mm256_maskload_ps(x + r * inner, mask);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    m = _mm256_max_ps(m, v);
  }
  m = _mm256_blendv_ps(m, _mm256_set1_ps(std::numeric_limits<float>::quiet_NaN()), nan);
  __m256 total = _mm256_setzero_ps();
  for (int64_t r = 0; r < R; ++r) {
    __m256 e = avx2::exp(_mm256_sub_ps(_mm256_maskload_ps(x + r * inner, mask), m));
    if constexpr (!IsLog) _mm256_maskstore_ps(y + r * inner, mask, e);
    total = _mm256_add_ps(total, e);
  }
  if constexpr (IsLog) {
    alignas(32) float t[8];
    _mm256_store_ps(t, total);
    for (float& v : t) v = std::log(v);
    const __m256 log_total = _mm256_load_ps(t);
    for (int64_t r = 0; r < R; ++r)
      _mm256_maskstore_ps(y + r * inner, mask,
                          _mm256_sub_ps(_mm256_sub_ps(_mm256_maskload_ps(x + r * inner, mask), m), log_total));
  } else {
    const __m256 scale = _mm256_div_ps(_mm256_set1_ps(1.0f), total);
    for (int64_t r = 0; r < R; ++r)
      _mm256_maskstore_ps(y + r * inner, mask, _mm256_mul_ps(_mm256_maskload_ps(y + r * inner, mask), scale));
  }
}

// Fused first-order backward of one contiguous line: softmax gx = y * (g - sum(g * y)); log_softmax
// gx = g - exp(y) * sum(g).
template <bool IsLog>
LOOM_AVX2_FN void softmax_backward_line_avx2(const float* g, const float* y, float* gx, int64_t R) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0;
  int64_t i = 0;
  for (; i + 16 <= R; i += 16) {
    if constexpr (IsLog) {
      s0 = _mm256_add_ps(s0, _mm256_loadu_ps(g + i));
      s1 = _mm256_add_ps(s1, _mm256_loadu_ps(g + i + 8));
    } else {
      s0 = _mm256_fmadd_ps(_mm256_loadu_ps(g + i), _mm256_loadu_ps(y + i), s0);
      s1 = _mm256_fmadd_ps(_mm256_loadu_ps(g + i + 8), _mm256_loadu_ps(y + i + 8), s1);
    }
  }
  float total = avx2::reduce_add(_mm256_add_ps(s0, s1));
  for (; i < R; ++i) total += IsLog ? g[i] : g[i] * y[i];
  const __m256 t = _mm256_set1_ps(total);
  for (i = 0; i + 8 <= R; i += 8) {
    __m256 vg = _mm256_loadu_ps(g + i), vy = _mm256_loadu_ps(y + i);
    if constexpr (IsLog) _mm256_storeu_ps(gx + i, _mm256_fnmadd_ps(avx2::exp(vy), t, vg));
    else _mm256_storeu_ps(gx + i, _mm256_mul_ps(vy, _mm256_sub_ps(vg, t)));
  }
  for (; i < R; ++i) gx[i] = IsLog ? g[i] - std::exp(y[i]) * total : y[i] * (g[i] - total);
}
#endif

template <bool IsLog, class T>
void softmax_lines(const T* x, T* y, int64_t R, int64_t inner, int64_t n, std::vector<opmath_t<T>>& max_value,
                   std::vector<double>& total) {
  using M = opmath_t<T>;
  max_value.assign(n, -std::numeric_limits<M>::infinity());
  total.assign(n, 0.0);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t i = 0; i < n; ++i) {
      M value = M(x[r * inner + i]);
      if (beats<true>(value, max_value[i])) max_value[i] = value;
    }
  for (int64_t r = 0; r < R; ++r)
    for (int64_t i = 0; i < n; ++i) {
      M e = std::exp(M(x[r * inner + i]) - max_value[i]);
      total[i] += e;
      if constexpr (!IsLog) y[r * inner + i] = T(e);
    }
  if constexpr (IsLog) {
    for (int64_t i = 0; i < n; ++i) total[i] = std::log(total[i]);
    for (int64_t r = 0; r < R; ++r)
      for (int64_t i = 0; i < n; ++i) y[r * inner + i] = T(M(x[r * inner + i]) - max_value[i] - static_cast<M>(total[i]));
  } else {
    for (int64_t i = 0; i < n; ++i) total[i] = 1.0 / total[i];
    for (int64_t r = 0; r < R; ++r)
      for (int64_t i = 0; i < n; ++i) y[r * inner + i] = T(M(y[r * inner + i]) * static_cast<M>(total[i]));
  }
}

template <bool IsLog>
std::vector<Tensor> softmax_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  DimLayout l = dim_layout(c.inputs[0], c.attrs.get<int64_t>("dim"));
  visit_floating(out.dtype(), IsLog ? "log_softmax" : "softmax", [&]<class T>() {
    const T* x = l.data.data<T>();
    T* y = out.data<T>();
    const int64_t R = l.reduced, inner = l.inner;
#if defined(__x86_64__)
    if constexpr (std::is_same_v<T, float>) {
      if (use_avx2()) {
        if (inner == 1) {
          parallel_for(0, l.outer, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(R, 1)), [&](int64_t b, int64_t e) {
            for (int64_t o = b; o < e; ++o) softmax_line_avx2<IsLog>(x + o * R, y + o * R, R);
          });
          return;
        }
        const int64_t tiles = (inner + 7) / 8;
        parallel_for(0, l.outer * tiles, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(R * 8, 1)),
                     [&](int64_t b, int64_t e) {
          for (int64_t w = b; w < e; ++w) {
            const int64_t o = w / tiles, i0 = (w % tiles) * 8;
            const int64_t offset = o * R * inner + i0;
            softmax_columns_avx2<IsLog>(x + offset, y + offset, R, inner, std::min<int64_t>(8, inner - i0));
          }
        });
        return;
      }
    }
#endif
    if (inner == 1) {
      parallel_for(0, l.outer, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(R, 1)), [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; ++o) softmax_line<IsLog, T>(x + o * R, y + o * R, R);
      });
      return;
    }
    parallel_for(0, l.outer * inner, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(R, 1)),
                 [&](int64_t b, int64_t e) {
      std::vector<opmath_t<T>> max_value;
      std::vector<double> total;
      for (int64_t pos = b; pos < e;) {
        int64_t o = pos / inner, i0 = pos % inner;
        int64_t n = std::min(inner - i0, e - pos);
        int64_t offset = o * R * inner + i0;
        softmax_lines<IsLog, T>(x + offset, y + offset, R, inner, n, max_value, total);
        pos += n;
      }
    });
  });
  return {out};
}

// softmax_backward / log_softmax_backward (grad, output): the fused first-order gradient along attr dim.
template <bool IsLog>
std::vector<Tensor> softmax_backward_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  const int64_t dim = c.attrs.get<int64_t>("dim");
  DimLayout lg = dim_layout(c.inputs[0], dim), ly = dim_layout(c.inputs[1], dim);
  visit_floating(out.dtype(), IsLog ? "log_softmax_backward" : "softmax_backward", [&]<class T>() {
    using M = opmath_t<T>;
    const T* g = lg.data.data<T>();
    const T* y = ly.data.data<T>();
    T* gx = out.data<T>();
    const int64_t R = lg.reduced;
#if defined(__x86_64__)
    if constexpr (std::is_same_v<T, float>) {
      if (use_avx2() && lg.inner == 1) {
        parallel_for(0, lg.outer, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(R, 1)), [&](int64_t b, int64_t e) {
          for (int64_t o = b; o < e; ++o) softmax_backward_line_avx2<IsLog>(g + o * R, y + o * R, gx + o * R, R);
        });
        return;
      }
    }
#endif
    for_each_line(lg, [&](int64_t, int64_t first, int64_t stride) {
      double total = 0;
      for (int64_t r = 0; r < R; ++r) {
        const int64_t at = first + r * stride;
        total += IsLog ? double(M(g[at])) : double(M(g[at])) * double(M(y[at]));
      }
      const M t = static_cast<M>(total);
      for (int64_t r = 0; r < R; ++r) {
        const int64_t at = first + r * stride;
        if constexpr (IsLog) gx[at] = T(M(g[at]) - std::exp(M(y[at])) * t);
        else gx[at] = T(M(y[at]) * (M(g[at]) - t));
      }
    });
  });
  return {out};
}

}  // namespace

void register_norm_kernels(Registry& r);  // backends/cpu/norm.cpp

void register_reduce_kernels(Registry& r) {
  constexpr DeviceType cpu = DeviceType::CPU;
  register_norm_kernels(r);
  r.set_kernel("sum", cpu, sum_kernel);
  r.set_kernel("prod", cpu, prod_kernel);
  r.set_kernel("amax", cpu, extreme_kernel<true>);
  r.set_kernel("amin", cpu, extreme_kernel<false>);
  r.set_kernel("max_dim", cpu, arg_extreme_kernel<true>);
  r.set_kernel("min_dim", cpu, arg_extreme_kernel<false>);
  r.set_kernel("all", cpu, logical_kernel<true>);
  r.set_kernel("any", cpu, logical_kernel<false>);
  r.set_kernel("cumsum", cpu, scan_kernel<true>);
  r.set_kernel("cumprod", cpu, scan_kernel<false>);
  r.set_kernel("logcumsumexp", cpu, logcumsumexp_kernel);
  r.set_kernel("cummax", cpu, cumulative_extreme_kernel<true>);
  r.set_kernel("cummin", cpu, cumulative_extreme_kernel<false>);
  r.set_kernel("softmax", cpu, softmax_kernel<false>);
  r.set_kernel("log_softmax", cpu, softmax_kernel<true>);
  r.set_kernel("softmax_backward", cpu, softmax_backward_kernel<false>);
  r.set_kernel("log_softmax_backward", cpu, softmax_backward_kernel<true>);
}

}  // namespace loom::cpu
