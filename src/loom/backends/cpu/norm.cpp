// CPU kernels of the fused layer norm and RMS norm (ops/normalization.cpp; RMS norm: attr rms, mean 0): rows of N contiguous elements, statistics in the
// compute dtype (float for 16-bit inputs), AVX2 loops for float32 behind use_avx2().
#include <algorithm>
#include <cmath>
#include <vector>

#include "loom/backends/cpu/dispatch_dtype.h"
#include "loom/backends/cpu/simd/cpu_features.h"
#include "loom/backends/cpu/simd/vec_avx2.h"
#include "loom/core/parallel.h"
#include "loom/ops/registry.h"
#include "loom/ops/shape.h"

namespace loom::cpu {

namespace {

struct Rows {
  int64_t M = 1, N = 1;  // rows, normalized elements per row
};

Rows rows_of(const Tensor& x, int64_t k) {
  Rows r;
  for (int64_t i = 0; i < x.dim(); ++i) (i < x.dim() - k ? r.M : r.N) *= x.sizes()[i];
  return r;
}

// ---- forward ----

// Portable row: mean, biased variance (two passes, in double), then y = (x - mean) * rstd * w + b.
template <class T, class M>
void layer_norm_row(const T* x, T* y, const T* w, const T* b, int64_t N, double eps, bool rms, M& mean_out,
                    M& rstd_out) {
  double s = 0;
  if (!rms)
    for (int64_t j = 0; j < N; ++j) s += double(M(x[j]));
  const M mean = rms ? M(0) : M(s / double(N));
  double v = 0;
  for (int64_t j = 0; j < N; ++j) {
    const double d = double(M(x[j]) - mean);
    v += d * d;
  }
  const M rstd = M(1.0 / std::sqrt(v / double(N) + eps));
  for (int64_t j = 0; j < N; ++j) {
    M out = (M(x[j]) - mean) * rstd;
    if (w) out = out * M(w[j]);
    if (b) out = out + M(b[j]);
    y[j] = T(out);
  }
  mean_out = mean;
  rstd_out = rstd;
}

#if defined(__x86_64__)
LOOM_AVX2_FN void layer_norm_row_avx2(const float* x, float* y, const float* w, const float* b, int64_t N, double eps,
                                      bool rms, float& mean_out, float& rstd_out) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0;
  int64_t j = 0;
  double s = 0;
  if (!rms) {
    for (; j + 16 <= N; j += 16) {
      s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + j));
      s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x + j + 8));
    }
    s = avx2::reduce_add(_mm256_add_ps(s0, s1));
    for (; j < N; ++j) s += x[j];
  }
  const float mean = rms ? 0.0f : float(s / double(N));
  const __m256 vmean = _mm256_set1_ps(mean);
  s0 = _mm256_setzero_ps();
  s1 = s0;
  for (j = 0; j + 16 <= N; j += 16) {
    __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + j), vmean), d1 = _mm256_sub_ps(_mm256_loadu_ps(x + j + 8), vmean);
    s0 = _mm256_fmadd_ps(d0, d0, s0);
    s1 = _mm256_fmadd_ps(d1, d1, s1);
  }
  double v = avx2::reduce_add(_mm256_add_ps(s0, s1));
  for (; j < N; ++j) v += double(x[j] - mean) * double(x[j] - mean);
  const float rstd = float(1.0 / std::sqrt(v / double(N) + eps));
  const __m256 vrstd = _mm256_set1_ps(rstd);
  for (j = 0; j + 8 <= N; j += 8) {
    __m256 out = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + j), vmean), vrstd);
    if (w) out = _mm256_mul_ps(out, _mm256_loadu_ps(w + j));
    if (b) out = _mm256_add_ps(out, _mm256_loadu_ps(b + j));
    _mm256_storeu_ps(y + j, out);
  }
  for (; j < N; ++j) {
    float out = (x[j] - mean) * rstd;
    if (w) out = out * w[j];
    if (b) out = out + b[j];
    y[j] = out;
  }
  mean_out = mean;
  rstd_out = rstd;
}
#endif

std::vector<Tensor> native_layer_norm_kernel(const KernelContext& c) {
  Tensor y = c.alloc(0), mean = c.alloc(1), rstd = c.alloc(2);
  const bool has_weight = c.attrs.get<bool>("has_weight"), has_bias = c.attrs.get<bool>("has_bias");
  const double eps = c.attrs.get<double>("eps");
  const bool rms = c.attrs.get_or<bool>("rms", false);
  const Tensor x = contiguous(c.inputs[0]);
  const Tensor w = has_weight ? contiguous(c.inputs[1]) : Tensor();
  const Tensor b = has_bias ? contiguous(c.inputs[has_weight ? 2 : 1]) : Tensor();
  const Rows r = rows_of(x, c.attrs.get<int64_t>("normalized_dims"));
  visit_floating(x.dtype(), "layer_norm", [&]<class T>() {
    using M = opmath_t<T>;
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    const T* wp = has_weight ? w.data<T>() : nullptr;
    const T* bp = has_bias ? b.data<T>() : nullptr;
    M* mp = mean.data<M>();
    M* rp = rstd.data<M>();
    const int64_t N = r.N;
    parallel_for(0, r.M, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(N, 1)), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
#if defined(__x86_64__)
        if constexpr (std::is_same_v<T, float>) {
          if (use_avx2()) {
            layer_norm_row_avx2(xp + i * N, yp + i * N, wp, bp, N, eps, rms, mp[i], rp[i]);
            continue;
          }
        }
#endif
        layer_norm_row<T, M>(xp + i * N, yp + i * N, wp, bp, N, eps, rms, mp[i], rp[i]);
      }
    });
  });
  return {y, mean, rstd};
}

// ---- backward ----
// Per row, with xhat = (x - mean) * rstd and gh = g * w:
//   dx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat)),  dweight += g * xhat,  dbias += g.
// Rows are split into a few chunks, each with its own dweight/dbias partial sums, added in chunk order.

template <class T, class M>
void layer_norm_backward_row(const T* g, const T* x, const T* w, M mean, M rstd, int64_t N, bool rms, T* dx, M* dw,
                             M* db) {
  double a = 0, bsum = 0;
  for (int64_t j = 0; j < N; ++j) {
    const M xhat = (M(x[j]) - mean) * rstd;
    const M gh = w ? M(g[j]) * M(w[j]) : M(g[j]);
    a += double(gh);
    bsum += double(gh) * double(xhat);
    dw[j] += M(g[j]) * xhat;
    db[j] += M(g[j]);
  }
  const M ma = rms ? M(0) : M(a / double(N)), mb = M(bsum / double(N));
  for (int64_t j = 0; j < N; ++j) {
    const M xhat = (M(x[j]) - mean) * rstd;
    const M gh = w ? M(g[j]) * M(w[j]) : M(g[j]);
    dx[j] = T(rstd * (gh - ma - xhat * mb));
  }
}

#if defined(__x86_64__)
LOOM_AVX2_FN void layer_norm_backward_row_avx2(const float* g, const float* x, const float* w, float mean, float rstd,
                                               int64_t N, bool rms, float* dx, float* dw, float* db) {
  const __m256 vmean = _mm256_set1_ps(mean), vrstd = _mm256_set1_ps(rstd);
  __m256 a = _mm256_setzero_ps(), bs = a;
  int64_t j = 0;
  for (; j + 8 <= N; j += 8) {
    const __m256 vg = _mm256_loadu_ps(g + j);
    const __m256 xhat = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + j), vmean), vrstd);
    const __m256 gh = w ? _mm256_mul_ps(vg, _mm256_loadu_ps(w + j)) : vg;
    a = _mm256_add_ps(a, gh);
    bs = _mm256_fmadd_ps(gh, xhat, bs);
    _mm256_storeu_ps(dw + j, _mm256_fmadd_ps(vg, xhat, _mm256_loadu_ps(dw + j)));
    _mm256_storeu_ps(db + j, _mm256_add_ps(vg, _mm256_loadu_ps(db + j)));
  }
  double sa = avx2::reduce_add(a), sb = avx2::reduce_add(bs);
  for (; j < N; ++j) {
    const float xhat = (x[j] - mean) * rstd;
    const float gh = w ? g[j] * w[j] : g[j];
    sa += gh;
    sb += double(gh) * xhat;
    dw[j] += g[j] * xhat;
    db[j] += g[j];
  }
  const float ma = rms ? 0.0f : float(sa / double(N)), mb = float(sb / double(N));
  const __m256 vma = _mm256_set1_ps(ma), vmb = _mm256_set1_ps(mb);
  for (j = 0; j + 8 <= N; j += 8) {
    const __m256 vg = _mm256_loadu_ps(g + j);
    const __m256 xhat = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + j), vmean), vrstd);
    const __m256 gh = w ? _mm256_mul_ps(vg, _mm256_loadu_ps(w + j)) : vg;
    _mm256_storeu_ps(dx + j, _mm256_mul_ps(vrstd, _mm256_fnmadd_ps(xhat, vmb, _mm256_sub_ps(gh, vma))));
  }
  for (; j < N; ++j) {
    const float xhat = (x[j] - mean) * rstd;
    const float gh = w ? g[j] * w[j] : g[j];
    dx[j] = rstd * (gh - ma - xhat * mb);
  }
}
#endif

std::vector<Tensor> layer_norm_backward_kernel(const KernelContext& c) {
  Tensor dx = c.alloc(0), dw = c.alloc(1), db = c.alloc(2);
  const bool has_weight = c.attrs.get<bool>("has_weight"), rms = c.attrs.get_or<bool>("rms", false);
  const Tensor g = contiguous(c.inputs[0]), x = contiguous(c.inputs[1]);
  const Tensor mean = contiguous(c.inputs[2]), rstd = contiguous(c.inputs[3]);
  const Tensor w = has_weight ? contiguous(c.inputs[4]) : Tensor();
  const Rows r = rows_of(x, c.attrs.get<int64_t>("normalized_dims"));
  visit_floating(x.dtype(), "layer_norm_backward", [&]<class T>() {
    using M = opmath_t<T>;
    const T *gp = g.data<T>(), *xp = x.data<T>();
    const T* wp = has_weight ? w.data<T>() : nullptr;
    const M *mp = mean.data<M>(), *rp = rstd.data<M>();
    T* dxp = dx.data<T>();
    const int64_t M_rows = r.M, N = r.N;
    const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(N, 1));
    const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(get_num_threads(), (M_rows + grain - 1) / grain));
    const int64_t per_chunk = (M_rows + chunks - 1) / std::max<int64_t>(chunks, 1);
    std::vector<M> partial(static_cast<size_t>(2 * chunks * N), M(0));
    parallel_for(0, chunks, 1, [&](int64_t cb, int64_t ce) {
      for (int64_t k = cb; k < ce; ++k) {
        M* pw = partial.data() + 2 * k * N;
        M* pb = pw + N;
        for (int64_t i = k * per_chunk; i < std::min(M_rows, (k + 1) * per_chunk); ++i) {
#if defined(__x86_64__)
          if constexpr (std::is_same_v<T, float>) {
            if (use_avx2()) {
              layer_norm_backward_row_avx2(gp + i * N, xp + i * N, wp, mp[i], rp[i], N, rms, dxp + i * N, pw, pb);
              continue;
            }
          }
#endif
          layer_norm_backward_row<T, M>(gp + i * N, xp + i * N, wp, mp[i], rp[i], N, rms, dxp + i * N, pw, pb);
        }
      }
    });
    T *dwp = dw.data<T>(), *dbp = db.data<T>();
    for (int64_t j = 0; j < N; ++j) {
      M sw = 0, sb = 0;
      for (int64_t k = 0; k < chunks; ++k) {
        sw += partial[2 * k * N + j];
        sb += partial[2 * k * N + N + j];
      }
      dwp[j] = T(sw);
      dbp[j] = T(sb);
    }
  });
  return {dx, dw, db};
}

}  // namespace

void register_norm_kernels(Registry& r) {
  r.set_kernel("native_layer_norm", DeviceType::CPU, native_layer_norm_kernel);
  r.set_kernel("layer_norm_backward", DeviceType::CPU, layer_norm_backward_kernel);
}

}  // namespace loom::cpu
