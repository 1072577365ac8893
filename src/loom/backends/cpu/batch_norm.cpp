// CPU kernels of native_batch_norm and its backward (ops/conv.cpp). x (N, C, S) row-major: each channel is N
// rows of S contiguous values, so channels are the unit of parallel work and a channel's rows stay in cache
// across the passes (statistics, then the affine map). Row sums run in float (8 AVX2 lanes, or a scalar loop)
// and are added across rows in double; float64 inputs stay in double throughout.
#include <algorithm>
#include <cmath>
#include <vector>

#include "loom/backends/cpu/simd/cpu_features.h"
#include "loom/backends/cpu/simd/vec_avx2.h"
#include "loom/core/parallel.h"
#include "loom/ops/registry.h"
#include "loom/ops/shape.h"

namespace loom::cpu {

namespace {

// ---- row primitives: scalar versions (any T) and AVX2 versions (float) ----

template <class T>
double row_sum(const T* p, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += p[i];
  return static_cast<double>(s);
}

template <class T>
double row_sqdev(const T* p, int64_t n, T m) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>((p[i] - m) * (p[i] - m));
  return static_cast<double>(s);
}

template <class T>
void row_affine(const T* x, T* y, int64_t n, T scale, T shift) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale + shift;
}

// s1 += sum g, s2 += sum g * (x - m)
template <class T>
void row_dual(const T* g, const T* x, int64_t n, T m, double& s1, double& s2) {
  double a = 0, b = 0;
  for (int64_t i = 0; i < n; ++i) {
    a += static_cast<double>(g[i]);
    b += static_cast<double>(g[i] * (x[i] - m));
  }
  s1 += a, s2 += b;
}

// out = g * k + x * kx + c
template <class T>
void row_dx(const T* g, const T* x, T* out, int64_t n, T k, T kx, T c) {
  for (int64_t i = 0; i < n; ++i) out[i] = g[i] * k + x[i] * kx + c;
}

#if defined(__x86_64__)
using namespace avx2;

LOOM_AVX2_FN double row_sum_avx2(const float* p, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
  if (i < n) a1 = _mm256_add_ps(a1, _mm256_maskload_ps(p + i, tail_mask(n - i)));
  return static_cast<double>(reduce_add(_mm256_add_ps(a0, a1)));
}

LOOM_AVX2_FN double row_sqdev_avx2(const float* p, int64_t n, float m) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), vm = _mm256_set1_ps(m);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(p + i), vm), d1 = _mm256_sub_ps(_mm256_loadu_ps(p + i + 8), vm);
    a0 = _mm256_fmadd_ps(d0, d0, a0);
    a1 = _mm256_fmadd_ps(d1, d1, a1);
  }
  for (; i + 8 <= n; i += 8) {
    __m256 d = _mm256_sub_ps(_mm256_loadu_ps(p + i), vm);
    a0 = _mm256_fmadd_ps(d, d, a0);
  }
  if (i < n) {
    __m256i mask = tail_mask(n - i);
    __m256 d = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(p + i, mask), vm), _mm256_castsi256_ps(mask));
    a1 = _mm256_fmadd_ps(d, d, a1);
  }
  return static_cast<double>(reduce_add(_mm256_add_ps(a0, a1)));
}

LOOM_AVX2_FN void row_affine_avx2(const float* x, float* y, int64_t n, float scale, float shift) {
  __m256 vs = _mm256_set1_ps(scale), vb = _mm256_set1_ps(shift);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(_mm256_loadu_ps(x + i), vs, vb));
  if (i < n) {
    __m256i mask = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, mask, _mm256_fmadd_ps(_mm256_maskload_ps(x + i, mask), vs, vb));
  }
}

LOOM_AVX2_FN void row_dual_avx2(const float* g, const float* x, int64_t n, float m, double& s1, double& s2) {
  __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps(), vm = _mm256_set1_ps(m);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 vg = _mm256_loadu_ps(g + i);
    a = _mm256_add_ps(a, vg);
    b = _mm256_fmadd_ps(vg, _mm256_sub_ps(_mm256_loadu_ps(x + i), vm), b);
  }
  if (i < n) {
    __m256i mask = tail_mask(n - i);
    __m256 vg = _mm256_maskload_ps(g + i, mask);  // zero in the masked-off lanes
    a = _mm256_add_ps(a, vg);
    b = _mm256_fmadd_ps(vg, _mm256_sub_ps(_mm256_maskload_ps(x + i, mask), vm), b);
  }
  s1 += static_cast<double>(reduce_add(a)), s2 += static_cast<double>(reduce_add(b));
}

LOOM_AVX2_FN void row_dx_avx2(const float* g, const float* x, float* out, int64_t n, float k, float kx, float c) {
  __m256 vk = _mm256_set1_ps(k), vkx = _mm256_set1_ps(kx), vc = _mm256_set1_ps(c);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 r = _mm256_fmadd_ps(_mm256_loadu_ps(g + i), vk, _mm256_fmadd_ps(_mm256_loadu_ps(x + i), vkx, vc));
    _mm256_storeu_ps(out + i, r);
  }
  if (i < n) {
    __m256i mask = tail_mask(n - i);
    __m256 r = _mm256_fmadd_ps(_mm256_maskload_ps(g + i, mask), vk, _mm256_fmadd_ps(_mm256_maskload_ps(x + i, mask), vkx, vc));
    _mm256_maskstore_ps(out + i, mask, r);
  }
}
#endif

// The row primitives for T, choosing AVX2 for float when enabled.
// Float partial sums cover at most this many values before they are added in double.
constexpr int64_t kChunk = 4096;

template <class F>
double chunked(int64_t n, F&& f) {
  double s = 0;
  for (int64_t i = 0; i < n; i += kChunk) s += f(i, std::min(kChunk, n - i));
  return s;
}

template <class T>
struct Rows {
  bool vec = false;
  Rows() {
#if defined(__x86_64__)
    if constexpr (std::is_same_v<T, float>) vec = use_avx2();
#endif
  }
  double sum(const T* p, int64_t n) const {
#if defined(__x86_64__)
    if constexpr (std::is_same_v<T, float>)
      if (vec) return chunked(n, [&](int64_t i, int64_t len) { return row_sum_avx2(p + i, len); });
#endif
    return row_sum(p, n);
  }
  double sqdev(const T* p, int64_t n, T m) const {
#if defined(__x86_64__)
    if constexpr (std::is_same_v<T, float>)
      if (vec) return chunked(n, [&](int64_t i, int64_t len) { return row_sqdev_avx2(p + i, len, m); });
#endif
    return row_sqdev(p, n, m);
  }
  void affine(const T* x, T* y, int64_t n, T s, T b) const {
#if defined(__x86_64__)
    if constexpr (std::is_same_v<T, float>)
      if (vec) return row_affine_avx2(x, y, n, s, b);
#endif
    row_affine(x, y, n, s, b);
  }
  void dual(const T* g, const T* x, int64_t n, T m, double& s1, double& s2) const {
#if defined(__x86_64__)
    if constexpr (std::is_same_v<T, float>)
      if (vec) {
        for (int64_t i = 0; i < n; i += kChunk) row_dual_avx2(g + i, x + i, std::min(kChunk, n - i), m, s1, s2);
        return;
      }
#endif
    row_dual(g, x, n, m, s1, s2);
  }
  void dx(const T* g, const T* x, T* out, int64_t n, T k, T kx, T c) const {
#if defined(__x86_64__)
    if constexpr (std::is_same_v<T, float>)
      if (vec) return row_dx_avx2(g, x, out, n, k, kx, c);
#endif
    row_dx(g, x, out, n, k, kx, c);
  }
};

int64_t spatial(const Tensor& x) {
  int64_t s = 1;
  for (int64_t i = 2; i < x.dim(); ++i) s *= x.sizes()[i];
  return s;
}

template <class T>
void bn_forward(const Tensor& x, const Tensor& w, const Tensor& b, double eps, Tensor& y, Tensor& mean,
                Tensor& invstd) {
  int64_t N = x.sizes()[0], C = x.sizes()[1], S = spatial(x);
  double M = static_cast<double>(N * S);
  const T* px = x.data<T>();
  const T *pw = w.data<T>(), *pb = b.data<T>();
  T *py = y.data<T>(), *pm = mean.data<T>(), *pi = invstd.data<T>();
  Rows<T> rows;
  parallel_for(0, C, std::max<int64_t>(1, 32768 / std::max<int64_t>(N * S, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      double s = 0;
      for (int64_t n = 0; n < N; ++n) s += rows.sum(px + (n * C + c) * S, S);
      double m = s / M;
      double q = 0;
      for (int64_t n = 0; n < N; ++n) q += rows.sqdev(px + (n * C + c) * S, S, static_cast<T>(m));
      double is = 1.0 / std::sqrt(q / M + eps);
      double scale = static_cast<double>(pw[c]) * is, shift = static_cast<double>(pb[c]) - m * scale;
      for (int64_t n = 0; n < N; ++n)
        rows.affine(px + (n * C + c) * S, py + (n * C + c) * S, S, static_cast<T>(scale), static_cast<T>(shift));
      pm[c] = static_cast<T>(m);
      pi[c] = static_cast<T>(is);
    }
  });
}

std::vector<Tensor> native_batch_norm_kernel(const KernelContext& c) {
  Tensor x = contiguous(c.inputs[0]), w = contiguous(c.inputs[1]), b = contiguous(c.inputs[2]);
  Tensor y = c.alloc(0), mean = c.alloc(1), invstd = c.alloc(2);
  double eps = c.attrs.get<double>("eps");
  if (x.dtype() == DType::Float32) bn_forward<float>(x, w, b, eps, y, mean, invstd);
  else if (x.dtype() == DType::Float64) bn_forward<double>(x, w, b, eps, y, mean, invstd);
  else fail(ErrorKind::Type, "native_batch_norm: the CPU kernel takes float32 or float64, got ", dtype_name(x.dtype()));
  return {y, mean, invstd};
}

// dx = w * invstd * (g - sum(g)/M - xhat * sum(g * xhat)/M), xhat = (x - mean) * invstd;
// dw = sum(g * xhat); db = sum(g).
template <class T>
void bn_backward(const Tensor& g, const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& invstd,
                 Tensor& dx, Tensor& dw, Tensor& db, bool need_x, bool need_w, bool need_b) {
  int64_t N = x.sizes()[0], C = x.sizes()[1], S = spatial(x);
  double M = static_cast<double>(N * S);
  const T *pg = g.data<T>(), *px = x.data<T>(), *pw = w.data<T>(), *pm = mean.data<T>(), *pi = invstd.data<T>();
  Rows<T> rows;
  parallel_for(0, C, std::max<int64_t>(1, 32768 / std::max<int64_t>(N * S, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      double gsum = 0, gxc = 0;  // sum g, sum g * (x - mean)
      T m = pm[c];
      for (int64_t n = 0; n < N; ++n) rows.dual(pg + (n * C + c) * S, px + (n * C + c) * S, S, m, gsum, gxc);
      double is = static_cast<double>(pi[c]);
      if (need_b) db.data<T>()[c] = static_cast<T>(gsum);
      if (need_w) dw.data<T>()[c] = static_cast<T>(gxc * is);
      if (need_x) {
        // dx = k * (g - gsum/M - (x - m) * is^2 * gxc/M), k = w * is
        double k = static_cast<double>(pw[c]) * is, bcoef = is * is * gxc / M;
        double kx = -k * bcoef, cst = k * (static_cast<double>(m) * bcoef - gsum / M);
        T* out = dx.data<T>();
        for (int64_t n = 0; n < N; ++n)
          rows.dx(pg + (n * C + c) * S, px + (n * C + c) * S, out + (n * C + c) * S, S, static_cast<T>(k),
                  static_cast<T>(kx), static_cast<T>(cst));
      }
    }
  });
}

std::vector<Tensor> native_batch_norm_backward_kernel(const KernelContext& c) {
  Tensor g = contiguous(c.inputs[0]), x = contiguous(c.inputs[1]), w = contiguous(c.inputs[2]);
  Tensor mean = contiguous(c.inputs[3]), invstd = contiguous(c.inputs[4]);
  Tensor dx = c.alloc(0), dw = c.alloc(1), db = c.alloc(2);
  const Shape& mask = c.attrs.get<Shape>("output_mask");
  if (x.dtype() == DType::Float32)
    bn_backward<float>(g, x, w, mean, invstd, dx, dw, db, mask[0] != 0, mask[1] != 0, mask[2] != 0);
  else if (x.dtype() == DType::Float64)
    bn_backward<double>(g, x, w, mean, invstd, dx, dw, db, mask[0] != 0, mask[1] != 0, mask[2] != 0);
  else
    fail(ErrorKind::Type, "native_batch_norm_backward: the CPU kernel takes float32 or float64, got ",
         dtype_name(x.dtype()));
  return {dx, dw, db};
}

}  // namespace

void register_batch_norm_kernels(Registry& r) {
  r.set_kernel("native_batch_norm", DeviceType::CPU, native_batch_norm_kernel);
  r.set_kernel("native_batch_norm_backward", DeviceType::CPU, native_batch_norm_backward_kernel);
}

}  // namespace loom::cpu
