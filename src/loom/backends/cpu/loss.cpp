// CPU kernels of the loss family: the fused cross-entropy with class-index targets (ops/loss.cpp has the
// formulas). Rows in parallel; AVX2 loops for float32 behind use_avx2().
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "loom/backends/cpu/simd/cpu_features.h"
#include "loom/backends/cpu/simd/vec_avx2.h"
#include "loom/core/parallel.h"
#include "loom/ops/registry.h"
#include "loom/ops/shape.h"

namespace loom::cpu {

namespace {

struct CrossEntropyAttrs {
  int64_t ignore_index;
  double smoothing;
  bool has_weight;
  std::string reduction;
  explicit CrossEntropyAttrs(const Attrs& a)
      : ignore_index(a.get<int64_t>("ignore_index")),
        smoothing(a.get<double>("label_smoothing")),
        has_weight(a.get<bool>("has_weight")),
        reduction(a.get<std::string>("reduction")) {}
};

// Row statistics: log(sum(exp(x))) and sum_c w_c x_c (only when `weighted_sum`).
template <class T>
void row_stats_scalar(const T* x, const T* w, int64_t C, bool weighted_sum, double& lse, double& wx) {
  T m = -std::numeric_limits<T>::infinity();
  bool nan = false;
  for (int64_t c = 0; c < C; ++c) {
    nan |= x[c] != x[c];
    m = x[c] > m ? x[c] : m;
  }
  if (nan) m = std::numeric_limits<T>::quiet_NaN();
  double total = 0, weighted = 0;
  for (int64_t c = 0; c < C; ++c) {
    total += std::exp(double(x[c] - m));
    if (weighted_sum) weighted += double(w ? w[c] : T(1)) * double(x[c]);
  }
  lse = double(m) + std::log(total);
  wx = weighted;
}

#if defined(__x86_64__)
LOOM_AVX2_FN void row_stats_avx2(const float* x, const float* w, int64_t C, bool weighted_sum, double& lse, double& wx) {
  const __m256 neg_inf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 m = neg_inf, nan = _mm256_setzero_ps();
  for (int64_t c = 0; c < C; c += 8) {
    const __m256i mask = avx2::tail_mask(C - c);
    __m256 v = _mm256_blendv_ps(neg_inf, _mm256_maskload_ps(x + c, mask), _mm256_castsi256_ps(mask));
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    m = _mm256_max_ps(m, v);
  }
  float max_value = avx2::reduce_max(m);
  if (_mm256_movemask_ps(nan)) max_value = std::numeric_limits<float>::quiet_NaN();
  const __m256 vmax = _mm256_set1_ps(max_value);
  __m256 total = _mm256_setzero_ps(), weighted = total;
  for (int64_t c = 0; c < C; c += 8) {
    const __m256i mask = avx2::tail_mask(C - c);
    const __m256 v = _mm256_maskload_ps(x + c, mask);
    total = _mm256_add_ps(total, _mm256_and_ps(avx2::exp(_mm256_sub_ps(v, vmax)), _mm256_castsi256_ps(mask)));
    if (weighted_sum) weighted = _mm256_fmadd_ps(w ? _mm256_maskload_ps(w + c, mask) : _mm256_set1_ps(1.0f), v, weighted);
  }
  lse = double(max_value) + std::log(double(avx2::reduce_add(total)));
  wx = weighted_sum ? double(avx2::reduce_add(weighted)) : 0.0;
}

// dx_c = scale (a p_c - b w_c), p_c = exp(x_c - lse); then dx_t -= scale * hit.
LOOM_AVX2_FN void row_grad_avx2(const float* x, const float* w, int64_t C, float lse, float scale_a, float scale_b,
                                float* dx) {
  const __m256 vlse = _mm256_set1_ps(lse), va = _mm256_set1_ps(scale_a), vb = _mm256_set1_ps(scale_b);
  int64_t c = 0;
  for (; c + 8 <= C; c += 8) {
    const __m256 p = avx2::exp(_mm256_sub_ps(_mm256_loadu_ps(x + c), vlse));
    const __m256 wc = w ? _mm256_loadu_ps(w + c) : _mm256_set1_ps(1.0f);
    _mm256_storeu_ps(dx + c, _mm256_fmsub_ps(va, p, _mm256_mul_ps(vb, wc)));
  }
  if (c < C) {
    const __m256i mask = avx2::tail_mask(C - c);
    const __m256 p = avx2::exp(_mm256_sub_ps(_mm256_maskload_ps(x + c, mask), vlse));
    const __m256 wc = w ? _mm256_maskload_ps(w + c, mask) : _mm256_set1_ps(1.0f);
    _mm256_maskstore_ps(dx + c, mask, _mm256_fmsub_ps(va, p, _mm256_mul_ps(vb, wc)));
  }
}
#endif

void check_target(int64_t t, int64_t C, const Tensor& input) {
  LOOM_CHECK(t >= 0 && t < C, Index, "cross_entropy: Target ", t, " is out of bounds for ", C, " classes (input shape ",
             shape_str(input.sizes()), ")");
}

template <class T>
void cross_entropy_forward(const KernelContext& c, const CrossEntropyAttrs& a, Tensor& loss, Tensor& lse, Tensor& den) {
  const Tensor x = contiguous(c.inputs[0]), target = contiguous(c.inputs[1]);
  const Tensor w = a.has_weight ? contiguous(c.inputs[2]) : Tensor();
  const int64_t N = x.sizes()[0], C = x.sizes()[1];
  const T* xp = x.data<T>();
  const T* wp = a.has_weight ? w.data<T>() : nullptr;
  const int64_t* tp = target.data<int64_t>();
  T* lp = lse.data<T>();
  double total_w = C;
  if (wp) {
    total_w = 0;
    for (int64_t k = 0; k < C; ++k) total_w += double(wp[k]);
  }
  const double s = a.smoothing;
  std::vector<double> row_loss(static_cast<size_t>(N)), row_w(static_cast<size_t>(N));
  parallel_for(0, N, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(C, 1)), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const T* row = xp + i * C;
      const int64_t t = tp[i];
      const bool ignored = t == a.ignore_index;
      if (!ignored) check_target(t, C, x);
      double row_lse = 0, wx = 0;
#if defined(__x86_64__)
      if constexpr (std::is_same_v<T, float>) {
        if (use_avx2()) row_stats_avx2(row, wp, C, s > 0, row_lse, wx);
        else row_stats_scalar(row, wp, C, s > 0, row_lse, wx);
      } else {
        row_stats_scalar(row, wp, C, s > 0, row_lse, wx);
      }
#else
      row_stats_scalar(row, wp, C, s > 0, row_lse, wx);
#endif
      lp[i] = T(row_lse);
      if (ignored) {
        row_loss[i] = row_w[i] = 0;
        continue;
      }
      const double wt = wp ? double(wp[t]) : 1.0;
      double value = (1.0 - s) * wt * (row_lse - double(row[t]));
      if (s > 0) value += s / double(C) * (total_w * row_lse - wx);
      row_loss[i] = value;
      row_w[i] = wt;
    }
  });
  T* out = loss.data<T>();
  double sum_loss = 0, sum_w = 0;
  for (int64_t i = 0; i < N; ++i) {
    sum_loss += row_loss[i];
    sum_w += row_w[i];
  }
  if (a.reduction == "none")
    for (int64_t i = 0; i < N; ++i) out[i] = T(row_loss[i]);
  else if (a.reduction == "sum") out[0] = T(sum_loss);
  else out[0] = T(sum_loss / sum_w);
  den.data<T>()[0] = T(sum_w);
}

std::vector<Tensor> cross_entropy_loss_kernel(const KernelContext& c) {
  Tensor loss = c.alloc(0), lse = c.alloc(1), den = c.alloc(2);
  const CrossEntropyAttrs a(c.attrs);
  if (c.inputs[0].dtype() == DType::Float32) cross_entropy_forward<float>(c, a, loss, lse, den);
  else cross_entropy_forward<double>(c, a, loss, lse, den);
  return {loss, lse, den};
}

template <class T>
void cross_entropy_backward(const KernelContext& c, const CrossEntropyAttrs& a, Tensor& dx) {
  const Tensor g = contiguous(c.inputs[0]), x = contiguous(c.inputs[1]), target = contiguous(c.inputs[2]);
  const Tensor lse = contiguous(c.inputs[3]);
  const Tensor w = a.has_weight ? contiguous(c.inputs[5]) : Tensor();
  const int64_t N = x.sizes()[0], C = x.sizes()[1];
  const T *xp = x.data<T>(), *gp = g.data<T>(), *lp = lse.data<T>();
  const T* wp = a.has_weight ? w.data<T>() : nullptr;
  const int64_t* tp = target.data<int64_t>();
  T* out = dx.data<T>();
  double total_w = C;
  if (wp) {
    total_w = 0;
    for (int64_t k = 0; k < C; ++k) total_w += double(wp[k]);
  }
  const bool none = a.reduction == "none";
  const double g_all = none ? 0.0 : a.reduction == "sum" ? double(gp[0]) : double(gp[0]) / double(c.inputs[4].item().to_double());
  const double s = a.smoothing;
  parallel_for(0, N, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(C, 1)), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      T* d = out + i * C;
      const int64_t t = tp[i];
      if (t == a.ignore_index) {
        std::fill(d, d + C, T(0));
        continue;
      }
      check_target(t, C, x);
      const double gi = none ? double(gp[i]) : g_all;
      const double wt = wp ? double(wp[t]) : 1.0;
      // dx_c = gi ((1 - s) wt + (s / C) W) p_c - gi (s / C) w_c, then dx_t -= gi (1 - s) wt.
      const double scale_a = gi * ((1.0 - s) * wt + s / double(C) * total_w), scale_b = gi * s / double(C);
      const T* row = xp + i * C;
#if defined(__x86_64__)
      if constexpr (std::is_same_v<T, float>) {
        if (use_avx2()) {
          row_grad_avx2(row, wp, C, lp[i], float(scale_a), float(scale_b), d);
          d[t] = T(double(d[t]) - gi * (1.0 - s) * wt);
          continue;
        }
      }
#endif
      for (int64_t k = 0; k < C; ++k) {
        const T p = std::exp(row[k] - lp[i]);
        d[k] = T(scale_a * double(p) - scale_b * double(wp ? wp[k] : T(1)));
      }
      d[t] = T(double(d[t]) - gi * (1.0 - s) * wt);
    }
  });
}

std::vector<Tensor> cross_entropy_backward_kernel(const KernelContext& c) {
  Tensor dx = c.alloc(0);
  const CrossEntropyAttrs a(c.attrs);
  if (c.inputs[1].dtype() == DType::Float32) cross_entropy_backward<float>(c, a, dx);
  else cross_entropy_backward<double>(c, a, dx);
  return {dx};
}

}  // namespace

void register_loss_kernels(Registry& r) {
  r.set_kernel("cross_entropy_loss", DeviceType::CPU, cross_entropy_loss_kernel);
  r.set_kernel("cross_entropy_backward", DeviceType::CPU, cross_entropy_backward_kernel);
}

}  // namespace loom::cpu
