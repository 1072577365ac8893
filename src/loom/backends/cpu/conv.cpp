// CPU kernels of the fused conv2d op (ops/conv.cpp): per image, im2col into a buffer sized for one image and a
// GEMM per group through OpenBLAS straight into the (N, O, oh*ow) output -- the batch is never permuted.
// 1x1 stride-1 unpadded convolutions skip im2col. Backward per image: grad_weight += grad_out x cols^T (a private
// accumulator per thread, summed in a fixed order), grad_input either as the convolution of grad_out with the
// flipped, transposed weight (stride 1: im2col of grad_out, whose GEMM has O*kh*kw as inner dim) or as
// W^T x grad_out followed by col2im (strided convolutions).
// Threads: with at least as many images as threads, images are split over loom's threads and each GEMM runs on
// one BLAS thread (BLAS is set to one thread for the call); otherwise images run in order on threaded BLAS.
#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "loom/backends/cpu/dispatch_dtype.h"
#include "loom/core/parallel.h"
#include "loom/ops/registry.h"
#include "loom/ops/shape.h"

namespace loom::cpu {

namespace {

struct Geo {
  int64_t N, C, H, W, O, Cg, Og, kh, kw, oh, ow, groups;
  int64_t sh, sw, pt, pb, pl, pr, dh, dw;
  int64_t K() const { return Cg * kh * kw; }
  int64_t L() const { return oh * ow; }
  bool pointwise() const { return kh == 1 && kw == 1 && sh == 1 && sw == 1 && pt == 0 && pb == 0 && pl == 0 && pr == 0; }
};

Geo geo_of(const Shape& x, const Shape& w, const Attrs& a) {
  Geo g;
  const Shape &s = a.get<Shape>("stride"), &p = a.get<Shape>("padding"), &d = a.get<Shape>("dilation");
  g.N = x[0], g.C = x[1], g.H = x[2], g.W = x[3];
  g.O = w[0], g.Cg = w[1], g.kh = w[2], g.kw = w[3];
  g.groups = a.get<int64_t>("groups");
  g.Og = g.O / g.groups;
  g.sh = s[0], g.sw = s[1], g.pt = p[0], g.pb = p[1], g.pl = p[2], g.pr = p[3], g.dh = d[0], g.dw = d[1];
  g.oh = (g.H + g.pt + g.pb - g.dh * (g.kh - 1) - 1) / g.sh + 1;
  g.ow = (g.W + g.pl + g.pr - g.dw * (g.kw - 1) - 1) / g.sw + 1;
  return g;
}

// Window of an im2col: kernel, dilation, padding (top, left), stride, and the output grid.
struct Win {
  int64_t C, H, W, kh, kw, dh, dw, pt, pl, sh, sw, oh, ow;
};

// One past the last output column whose input column (off + xx*sw) is < W.
inline int64_t W_end(int64_t off, const Win& w) {
  if (off >= w.W) return 0;
  int64_t last = (w.W - 1 - off) / w.sw + 1;  // columns xx with off + xx*sw <= W-1
  return std::min<int64_t>(last, w.ow);
}

// out (C*kh*kw, oh*ow) from one image x (C, H, W).
template <class T>
void im2col_image(const T* x, const Win& w, T* out) {
  int64_t L = w.oh * w.ow;
  for (int64_t c = 0; c < w.C; ++c) {
    const T* plane = x + c * w.H * w.W;
    for (int64_t i = 0; i < w.kh; ++i)
      for (int64_t j = 0; j < w.kw; ++j) {
        T* row = out + ((c * w.kh + i) * w.kw + j) * L;
        int64_t off = j * w.dw - w.pl;  // input column of output column 0
        // Output columns [x0, x1) read inside the input.
        int64_t x0 = off >= 0 ? 0 : std::min<int64_t>((-off + w.sw - 1) / w.sw, w.ow);
        int64_t x1 = W_end(off, w);
        for (int64_t y = 0; y < w.oh; ++y) {
          int64_t ih = y * w.sh - w.pt + i * w.dh;
          T* dst = row + y * w.ow;
          if (ih < 0 || ih >= w.H || x1 <= x0) {
            std::fill(dst, dst + w.ow, T(0));
            continue;
          }
          std::fill(dst, dst + x0, T(0));
          const T* src = plane + ih * w.W + off;
          if (w.sw == 1) {
            std::memcpy(dst + x0, src + x0, static_cast<size_t>(x1 - x0) * sizeof(T));
          } else {
            for (int64_t xx = x0; xx < x1; ++xx) dst[xx] = src[xx * w.sw];
          }
          std::fill(dst + x1, dst + w.ow, T(0));
        }
      }
  }
}

// x (C, H, W) = the sum of cols (C*kh*kw, oh*ow) into the pixels they were read from (im2col's adjoint).
template <class T>
void col2im_image(const T* cols, const Win& w, T* x) {
  int64_t L = w.oh * w.ow;
  std::fill(x, x + w.C * w.H * w.W, T(0));
  for (int64_t c = 0; c < w.C; ++c) {
    T* plane = x + c * w.H * w.W;
    for (int64_t i = 0; i < w.kh; ++i)
      for (int64_t j = 0; j < w.kw; ++j) {
        const T* row = cols + ((c * w.kh + i) * w.kw + j) * L;
        int64_t off = j * w.dw - w.pl;
        int64_t x0 = off >= 0 ? 0 : std::min<int64_t>((-off + w.sw - 1) / w.sw, w.ow);
        int64_t x1 = W_end(off, w);
        if (x1 <= x0) continue;
        for (int64_t y = 0; y < w.oh; ++y) {
          int64_t ih = y * w.sh - w.pt + i * w.dh;
          if (ih < 0 || ih >= w.H) continue;
          const T* src = row + y * w.ow;
          T* dst = plane + ih * w.W + off;
          if (w.sw == 1) {
            for (int64_t xx = x0; xx < x1; ++xx) dst[xx] += src[xx];
          } else {
            for (int64_t xx = x0; xx < x1; ++xx) dst[xx * w.sw] += src[xx];
          }
        }
      }
  }
}

// Row-major C (M, N) = A (M, K) [transposed] x B (K, N) [transposed] + beta C.
template <class T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb, T beta,
          T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : C[i * ldc + j] * beta;
    return;
  }
  auto a = ta ? CblasTrans : CblasNoTrans, b = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, a, b, static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), 1.0f, A,
                static_cast<int>(lda), B, static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
  else
    cblas_dgemm(CblasRowMajor, a, b, static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), 1.0, A,
                static_cast<int>(lda), B, static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
}

// Runs fn(chunk, first_image, end_image) over `chunks` contiguous chunks of the N images: in parallel with BLAS
// on one thread when there are enough images, else one chunk on threaded BLAS.
template <class F>
void over_images(int64_t N, F&& fn, int64_t* chunks_out = nullptr) {
  int threads = in_parallel_region() ? 1 : get_num_threads();
  int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(threads, N));
  if (chunks_out) *chunks_out = chunks;
  if (chunks == 1) {
    fn(int64_t(0), int64_t(0), N);
    return;
  }
  openblas_set_num_threads(1);
  try {
    parallel_for(0, chunks, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi; ++t) fn(t, t * N / chunks, (t + 1) * N / chunks);
    });
  } catch (...) {
    openblas_set_num_threads(threads);
    throw;
  }
  openblas_set_num_threads(threads);
}

int64_t image_chunks(int64_t N) {
  int threads = in_parallel_region() ? 1 : get_num_threads();
  return std::max<int64_t>(1, std::min<int64_t>(threads, N));
}

Win forward_window(const Geo& g) {
  return {g.C, g.H, g.W, g.kh, g.kw, g.dh, g.dw, g.pt, g.pl, g.sh, g.sw, g.oh, g.ow};
}

template <class T>
void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& out, const Geo& g) {
  const T* px = x.data<T>();
  const T* pw = w.data<T>();
  const T* pb = bias.defined() ? bias.data<T>() : nullptr;
  T* po = out.data<T>();
  int64_t K = g.K(), L = g.L(), CHW = g.C * g.H * g.W;
  Win win = forward_window(g);
  over_images(g.N, [&](int64_t, int64_t n0, int64_t n1) {
    std::vector<T> buf(g.pointwise() ? 0 : static_cast<size_t>(g.C * g.kh * g.kw * L));
    for (int64_t n = n0; n < n1; ++n) {
      const T* cols = px + n * CHW;
      if (!g.pointwise()) {
        im2col_image(px + n * CHW, win, buf.data());
        cols = buf.data();
      }
      T* on = po + n * g.O * L;
      for (int64_t gr = 0; gr < g.groups; ++gr)
        gemm<T>(false, false, g.Og, L, K, pw + gr * g.Og * K, K, cols + gr * K * L, L, T(0), on + gr * g.Og * L, L);
      if (pb)
        for (int64_t o = 0; o < g.O; ++o) {
          T b = pb[o];
          T* row = on + o * L;
          for (int64_t l = 0; l < L; ++l) row[l] += b;
        }
    }
  });
}

std::vector<Tensor> conv2d_kernel(const KernelContext& c) {
  Tensor x = contiguous(c.inputs[0]), w = contiguous(c.inputs[1]);
  Tensor bias = c.inputs.size() == 3 ? contiguous(c.inputs[2]) : Tensor();
  Tensor out = c.alloc(0);
  if (out.numel() == 0) return {out};
  Geo g = geo_of(x.sizes(), w.sizes(), c.attrs);
  if (x.dtype() == DType::Float32) conv2d_forward<float>(x, w, bias, out, g);
  else if (x.dtype() == DType::Float64) conv2d_forward<double>(x, w, bias, out, g);
  else fail(ErrorKind::Type, "conv2d: the CPU kernel takes float32 or float64, got ", dtype_name(x.dtype()));
  return {out};
}

template <class T>
void conv2d_backward(const Tensor& gout, const Tensor& x, const Tensor& w, Tensor& gx, Tensor& gw, Tensor& gb,
                     const Geo& g, bool need_x, bool need_w, bool need_b) {
  const T* pg = gout.data<T>();
  const T* px = x.data<T>();
  const T* pw = w.data<T>();
  int64_t K = g.K(), L = g.L(), CHW = g.C * g.H * g.W, HW = g.H * g.W, kk = g.kh * g.kw;
  Win win = forward_window(g);
  // grad_input as a stride-1 convolution of grad_out with the flipped, transposed weight when that is exact.
  bool flip = need_x && !g.pointwise() && g.sh == 1 && g.sw == 1 && g.pt <= g.dh * (g.kh - 1) &&
              g.pb <= g.dh * (g.kh - 1) && g.pl <= g.dw * (g.kw - 1) && g.pr <= g.dw * (g.kw - 1);
  std::vector<T> wflip;
  Win gwin{};
  if (flip) {
    // wflip[gr][c][o][i][j] = w[gr*Og + o][c][kh-1-i][kw-1-j]: per group a (Cg, Og*kh*kw) matrix.
    wflip.resize(static_cast<size_t>(g.groups * g.Cg * g.Og * kk));
    for (int64_t gr = 0; gr < g.groups; ++gr)
      for (int64_t c = 0; c < g.Cg; ++c)
        for (int64_t o = 0; o < g.Og; ++o)
          for (int64_t i = 0; i < g.kh; ++i)
            for (int64_t j = 0; j < g.kw; ++j)
              wflip[static_cast<size_t>((((gr * g.Cg + c) * g.Og + o) * g.kh + i) * g.kw + j)] =
                  pw[(((gr * g.Og + o) * g.Cg + c) * g.kh + (g.kh - 1 - i)) * g.kw + (g.kw - 1 - j)];
    gwin = {g.O, g.oh, g.ow, g.kh, g.kw, g.dh, g.dw, g.dh * (g.kh - 1) - g.pt, g.dw * (g.kw - 1) - g.pl, 1, 1, g.H, g.W};
  }
  int64_t chunks = image_chunks(g.N);
  std::vector<std::vector<T>> gw_parts(static_cast<size_t>(need_w ? chunks : 0));
  over_images(g.N, [&](int64_t t, int64_t n0, int64_t n1) {
    std::vector<T> cols_buf(need_w && !g.pointwise() ? static_cast<size_t>(g.C * kk * L) : 0);
    std::vector<T> gbuf;
    if (need_x && !g.pointwise()) gbuf.resize(static_cast<size_t>(flip ? g.O * kk * HW : g.C * kk * L));
    T* acc = nullptr;
    if (need_w) {
      gw_parts[static_cast<size_t>(t)].assign(static_cast<size_t>(g.O * K), T(0));
      acc = gw_parts[static_cast<size_t>(t)].data();
    }
    for (int64_t n = n0; n < n1; ++n) {
      const T* gn = pg + n * g.O * L;
      if (need_w) {
        const T* cols = px + n * CHW;
        if (!g.pointwise()) {
          im2col_image(px + n * CHW, win, cols_buf.data());
          cols = cols_buf.data();
        }
        for (int64_t gr = 0; gr < g.groups; ++gr)
          gemm<T>(false, true, g.Og, K, L, gn + gr * g.Og * L, L, cols + gr * K * L, L, T(1), acc + gr * g.Og * K, K);
      }
      if (need_x) {
        T* gxn = gx.data<T>() + n * CHW;
        if (g.pointwise()) {
          for (int64_t gr = 0; gr < g.groups; ++gr)
            gemm<T>(true, false, g.Cg, L, g.Og, pw + gr * g.Og * K, K, gn + gr * g.Og * L, L, T(0), gxn + gr * g.Cg * L,
                    L);
        } else if (flip) {
          im2col_image(gn, gwin, gbuf.data());
          int64_t Kf = g.Og * kk;
          for (int64_t gr = 0; gr < g.groups; ++gr)
            gemm<T>(false, false, g.Cg, HW, Kf, wflip.data() + gr * g.Cg * Kf, Kf, gbuf.data() + gr * Kf * HW, HW, T(0),
                    gxn + gr * g.Cg * HW, HW);
        } else {
          for (int64_t gr = 0; gr < g.groups; ++gr)
            gemm<T>(true, false, K, L, g.Og, pw + gr * g.Og * K, K, gn + gr * g.Og * L, L, T(0),
                    gbuf.data() + gr * K * L, L);
          col2im_image(gbuf.data(), win, gxn);
        }
      }
    }
  });
  if (need_w) {
    T* out = gw.data<T>();
    std::copy(gw_parts[0].begin(), gw_parts[0].end(), out);
    for (size_t t = 1; t < gw_parts.size(); ++t)
      for (int64_t i = 0; i < g.O * K; ++i) out[i] += gw_parts[t][static_cast<size_t>(i)];
  }
  if (need_b) {
    T* out = gb.data<T>();
    parallel_for(0, g.O, std::max<int64_t>(1, 32768 / std::max<int64_t>(g.N * L, 1)), [&](int64_t lo, int64_t hi) {
      for (int64_t o = lo; o < hi; ++o) {
        double s = 0;
        for (int64_t n = 0; n < g.N; ++n) {
          const T* row = pg + (n * g.O + o) * L;
          T part = 0;
          for (int64_t l = 0; l < L; ++l) part += row[l];
          s += static_cast<double>(part);
        }
        out[o] = static_cast<T>(s);
      }
    });
  }
}

std::vector<Tensor> conv2d_backward_kernel(const KernelContext& c) {
  Tensor gout = contiguous(c.inputs[0]), x = contiguous(c.inputs[1]), w = contiguous(c.inputs[2]);
  Tensor gx = c.alloc(0), gw = c.alloc(1), gb = c.alloc(2);
  const Shape& mask = c.attrs.get<Shape>("output_mask");
  Geo g = geo_of(x.sizes(), w.sizes(), c.attrs);
  bool need_x = mask[0] && gx.numel() > 0, need_w = mask[1] && gw.numel() > 0, need_b = mask[2] && gb.numel() > 0;
  if (gout.numel() == 0 || g.K() == 0) {
    // Nothing flows: zero gradients.
    for (Tensor* t : {&gx, &gw, &gb})
      if (t->numel() > 0) std::memset(t->data_ptr(), 0, static_cast<size_t>(t->numel()) * t->itemsize());
    return {gx, gw, gb};
  }
  if (x.dtype() == DType::Float32) conv2d_backward<float>(gout, x, w, gx, gw, gb, g, need_x, need_w, need_b);
  else if (x.dtype() == DType::Float64) conv2d_backward<double>(gout, x, w, gx, gw, gb, g, need_x, need_w, need_b);
  else fail(ErrorKind::Type, "conv2d_backward: the CPU kernel takes float32 or float64, got ", dtype_name(x.dtype()));
  return {gx, gw, gb};
}

}  // namespace

void register_conv_kernels(Registry& r) {
  r.set_kernel("conv2d", DeviceType::CPU, conv2d_kernel);
  r.set_kernel("conv2d_backward", DeviceType::CPU, conv2d_backward_kernel);
}

}  // namespace loom::cpu
