// CPU kernels of the nn family: im2col/col2im (unfold/fold), max_pool2d, adaptive_avg_pool2d and their backwards.
// Layout: (N, C, H, W) row-major; each (n, c) plane is independent, so planes are the unit of parallel work.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "loom/backends/cpu/dispatch_dtype.h"
#include "loom/backends/cpu/kernel_util.h"
#include "loom/core/parallel.h"

namespace loom::cpu {

namespace {

// Accumulation type: float for the 16-bit types, the type itself otherwise.
template <class T>
using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;

struct Window {
  int64_t kh, kw, dh, dw, pt, pl, sh, sw;
};

Window window_of(const Attrs& a) {
  const Shape &k = a.get<Shape>("kernel_size"), &d = a.get<Shape>("dilation"), &p = a.get<Shape>("padding"),
              &s = a.get<Shape>("stride");
  return {k[0], k[1], d[0], d[1], p[0], p[2], s[0], s[1]};
}

// In double: an estimate such as a pooling window's oh * ow * kh * kw may pass int64 (kernel sizes go up to 2^31 - 1).
int64_t grain_for(double work_per_plane) {
  return std::max<int64_t>(1, static_cast<int64_t>(32768 / std::max(work_per_plane, 1.0)));
}

// cols (N, C*kh*kw, oh*ow) from x (N, C, H, W): cols[n, (c*kh + i)*kw + j, y*ow + x] = x[n, c, y*sh - pt + i*dh, ...].
std::vector<Tensor> im2col_kernel(const KernelContext& c) {
  Tensor x = contiguous(c.inputs[0]);
  Tensor out = c.alloc(0);
  if (out.numel() == 0) return {out};
  Window w = window_of(c.attrs);
  int64_t N = x.sizes()[0], C = x.sizes()[1], H = x.sizes()[2], W = x.sizes()[3];
  int64_t L = out.sizes()[2];
  const Shape& pad = c.attrs.get<Shape>("padding");
  int64_t ow = (W + pad[2] + pad[3] - w.dw * (w.kw - 1) - 1) / w.sw + 1;
  int64_t oh = L / ow;
  visit_floating(x.dtype(), "im2col", [&]<class T>() {
    const T* in = x.data<T>();
    T* o = out.data<T>();
    parallel_for(0, N * C, grain_for(w.kh * w.kw * L), [&](int64_t lo, int64_t hi) {
      for (int64_t nc = lo; nc < hi; ++nc) {
        const T* plane = in + nc * H * W;
        for (int64_t i = 0; i < w.kh; ++i)
          for (int64_t j = 0; j < w.kw; ++j) {
            T* row = o + (nc * w.kh * w.kw + i * w.kw + j) * L;
            for (int64_t y = 0; y < oh; ++y) {
              int64_t ih = y * w.sh - w.pt + i * w.dh;
              T* dst = row + y * ow;
              if (ih < 0 || ih >= H) {
                for (int64_t xx = 0; xx < ow; ++xx) dst[xx] = T(0.0f);
                continue;
              }
              const T* src = plane + ih * W;
              for (int64_t xx = 0; xx < ow; ++xx) {
                int64_t iw = xx * w.sw - w.pl + j * w.dw;
                dst[xx] = (iw >= 0 && iw < W) ? src[iw] : T(0.0f);
              }
            }
          }
      }
    });
  });
  return {out};
}

// The adjoint of im2col: sums every column entry back into the pixel it was read from.
std::vector<Tensor> col2im_kernel(const KernelContext& c) {
  Tensor cols = contiguous(c.inputs[0]);
  Tensor out = c.alloc(0);
  if (out.numel() == 0) return {out};
  Window w = window_of(c.attrs);
  int64_t N = out.sizes()[0], C = out.sizes()[1], H = out.sizes()[2], W = out.sizes()[3];
  int64_t L = cols.sizes()[2];
  const Shape& pad = c.attrs.get<Shape>("padding");
  int64_t ow = (W + pad[2] + pad[3] - w.dw * (w.kw - 1) - 1) / w.sw + 1;
  int64_t oh = ow == 0 ? 0 : L / ow;
  visit_floating(out.dtype(), "col2im", [&]<class T>() {
    const T* in = cols.data<T>();
    T* o = out.data<T>();
    parallel_for(0, N * C, grain_for(w.kh * w.kw * L), [&](int64_t lo, int64_t hi) {
      std::vector<Acc<T>> acc(static_cast<size_t>(H * W));
      for (int64_t nc = lo; nc < hi; ++nc) {
        std::fill(acc.begin(), acc.end(), Acc<T>(0));
        for (int64_t i = 0; i < w.kh; ++i)
          for (int64_t j = 0; j < w.kw; ++j) {
            const T* row = in + (nc * w.kh * w.kw + i * w.kw + j) * L;
            for (int64_t y = 0; y < oh; ++y) {
              int64_t ih = y * w.sh - w.pt + i * w.dh;
              if (ih < 0 || ih >= H) continue;
              for (int64_t xx = 0; xx < ow; ++xx) {
                int64_t iw = xx * w.sw - w.pl + j * w.dw;
                if (iw >= 0 && iw < W) acc[static_cast<size_t>(ih * W + iw)] += static_cast<Acc<T>>(row[y * ow + xx]);
              }
            }
          }
        T* plane = o + nc * H * W;
        for (int64_t p = 0; p < H * W; ++p) plane[p] = static_cast<T>(acc[static_cast<size_t>(p)]);
      }
    });
  });
  return {out};
}

// The first tap start + i * dilation (i >= 0) at or after position 0: one division, not a loop that runs
// padding / dilation times (up to 2^30 with padding at its cap).
int64_t first_tap_inside(int64_t start, int64_t dilation) {
  return start >= 0 ? start : start + (-start + dilation - 1) / dilation * dilation;
}

// Max over each window, as torch's CPU kernel: the first maximum wins, NaN propagates, indices are flat
// positions within the (H, W) plane.
std::vector<Tensor> max_pool2d_kernel(const KernelContext& c) {
  Tensor x = contiguous(c.inputs[0]);
  Tensor values = c.alloc(0), indices = c.alloc(1);
  if (values.numel() == 0) return {values, indices};
  const Shape &k = c.attrs.get<Shape>("kernel_size"), &s = c.attrs.get<Shape>("stride"),
              &p = c.attrs.get<Shape>("padding"), &d = c.attrs.get<Shape>("dilation");
  int64_t N = x.sizes()[0], C = x.sizes()[1], H = x.sizes()[2], W = x.sizes()[3];
  int64_t oh = values.sizes()[2], ow = values.sizes()[3];
  visit_floating(x.dtype(), "max_pool2d", [&]<class T>() {
    const T* in = x.data<T>();
    T* out = values.data<T>();
    int64_t* idx = indices.data<int64_t>();
    // Work per plane: the taps that fall inside the input (a kernel may be up to 2^31 - 1 wide, mostly padding).
    parallel_for(0, N * C, grain_for(oh * ow * std::min(k[0], H) * std::min(k[1], W)), [&](int64_t lo, int64_t hi) {
      for (int64_t nc = lo; nc < hi; ++nc) {
        const T* plane = in + nc * H * W;
        for (int64_t y = 0; y < oh; ++y) {
          int64_t h0 = y * s[0] - p[0];
          int64_t h1 = std::min(h0 + (k[0] - 1) * d[0] + 1, H);
          h0 = first_tap_inside(h0, d[0]);
          for (int64_t xx = 0; xx < ow; ++xx) {
            int64_t w0 = xx * s[1] - p[1];
            int64_t w1 = std::min(w0 + (k[1] - 1) * d[1] + 1, W);
            w0 = first_tap_inside(w0, d[1]);
            int64_t best_index = h0 * W + w0;
            Acc<T> best = -std::numeric_limits<Acc<T>>::infinity();
            for (int64_t ih = h0; ih < h1; ih += d[0])
              for (int64_t iw = w0; iw < w1; iw += d[1]) {
                int64_t index = ih * W + iw;
                Acc<T> v = static_cast<Acc<T>>(plane[index]);
                if (v > best || std::isnan(v)) {
                  best = v;
                  best_index = index;
                }
              }
            int64_t o = nc * oh * ow + y * ow + xx;
            out[o] = static_cast<T>(best);
            idx[o] = best_index;
          }
        }
      }
    });
  });
  return {values, indices};
}

// grad_input[n, c, indices[n, c, y, x]] += grad_output[n, c, y, x].
std::vector<Tensor> max_pool2d_backward_kernel(const KernelContext& c) {
  Tensor g = contiguous(c.inputs[0]);
  Tensor indices = contiguous(c.inputs[1]);
  Tensor out = c.alloc(0);
  if (out.numel() == 0) return {out};
  int64_t N = out.sizes()[0], C = out.sizes()[1], H = out.sizes()[2], W = out.sizes()[3];
  int64_t per_plane = g.sizes()[2] * g.sizes()[3];
  visit_floating(out.dtype(), "max_pool2d_backward", [&]<class T>() {
    const T* gin = g.data<T>();
    const int64_t* idx = indices.data<int64_t>();
    T* o = out.data<T>();
    parallel_for(0, N * C, grain_for(per_plane + H * W), [&](int64_t lo, int64_t hi) {
      std::vector<Acc<T>> acc(static_cast<size_t>(H * W));
      for (int64_t nc = lo; nc < hi; ++nc) {
        std::fill(acc.begin(), acc.end(), Acc<T>(0));
        for (int64_t q = 0; q < per_plane; ++q) {
          int64_t index = idx[nc * per_plane + q];
          LOOM_CHECK(index >= 0 && index < H * W, Index, "max_pool2d_backward: index ", index,
                     " is out of range for an input plane of ", H, " x ", W);
          acc[static_cast<size_t>(index)] += static_cast<Acc<T>>(gin[nc * per_plane + q]);
        }
        T* plane = o + nc * H * W;
        for (int64_t q = 0; q < H * W; ++q) plane[q] = static_cast<T>(acc[static_cast<size_t>(q)]);
      }
    });
  });
  return {out};
}

// out[n, c, q] = x[n, c, indices[n, c, q]]: the adjoint of max_pool2d_backward (used for double backward).
std::vector<Tensor> max_pool2d_gather_kernel(const KernelContext& c) {
  Tensor x = contiguous(c.inputs[0]);
  Tensor indices = contiguous(c.inputs[1]);
  Tensor out = c.alloc(0);
  if (out.numel() == 0) return {out};
  int64_t NC = x.sizes()[0] * x.sizes()[1], HW = x.sizes()[2] * x.sizes()[3];
  int64_t per_plane = indices.sizes()[2] * indices.sizes()[3];
  visit_floating(out.dtype(), "max_pool2d_gather", [&]<class T>() {
    const T* in = x.data<T>();
    const int64_t* idx = indices.data<int64_t>();
    T* o = out.data<T>();
    parallel_for(0, NC, grain_for(per_plane), [&](int64_t lo, int64_t hi) {
      for (int64_t nc = lo; nc < hi; ++nc)
        for (int64_t q = 0; q < per_plane; ++q) {
          int64_t index = idx[nc * per_plane + q];
          LOOM_CHECK(index >= 0 && index < HW, Index, "max_pool2d_gather: index ", index,
                     " is out of range for an input plane of ", HW, " elements");
          o[nc * per_plane + q] = in[nc * HW + index];
        }
    });
  });
  return {out};
}

// Window d of an adaptive pool over `in` positions into `out`: [floor(d in / out), ceil((d + 1) in / out)).
// The op's infer checks that out * (in + 1) fits in int64.
struct AdaptiveWindow {
  int64_t begin, end;
};
inline AdaptiveWindow adaptive_window(int64_t d, int64_t in, int64_t out) {
  return {d * in / out, ((d + 1) * in + out - 1) / out};
}

// out[n, c, i, j] = the mean of x over window (i, j): each output reads only its window.
std::vector<Tensor> adaptive_avg_pool2d_kernel(const KernelContext& c) {
  Tensor x = contiguous(c.inputs[0]);
  Tensor out = c.alloc(0);
  if (out.numel() == 0) return {out};
  int64_t NC = x.sizes()[0] * x.sizes()[1], H = x.sizes()[2], W = x.sizes()[3];
  int64_t oh = out.sizes()[2], ow = out.sizes()[3];
  visit_floating(x.dtype(), "adaptive_avg_pool2d", [&]<class T>() {
    const T* in = x.data<T>();
    T* o = out.data<T>();
    parallel_for(0, NC, grain_for(H * W + oh * ow), [&](int64_t lo, int64_t hi) {
      for (int64_t nc = lo; nc < hi; ++nc) {
        const T* plane = in + nc * H * W;
        for (int64_t i = 0; i < oh; ++i) {
          AdaptiveWindow rows = adaptive_window(i, H, oh);
          for (int64_t j = 0; j < ow; ++j) {
            AdaptiveWindow cols = adaptive_window(j, W, ow);
            Acc<T> sum = 0;
            for (int64_t h = rows.begin; h < rows.end; ++h)
              for (int64_t w = cols.begin; w < cols.end; ++w) sum += static_cast<Acc<T>>(plane[h * W + w]);
            Acc<T> count = static_cast<Acc<T>>((rows.end - rows.begin) * (cols.end - cols.begin));
            o[(nc * oh + i) * ow + j] = static_cast<T>(sum / count);
          }
        }
      }
    });
  });
  return {out};
}

// grad_input[n, c, h, w] = the sum of g[n, c, i, j] / window size over the windows (i, j) that hold (h, w).
std::vector<Tensor> adaptive_avg_pool2d_backward_kernel(const KernelContext& c) {
  Tensor g = contiguous(c.inputs[0]);
  Tensor out = c.alloc(0);
  if (out.numel() == 0) return {out};
  int64_t NC = out.sizes()[0] * out.sizes()[1], H = out.sizes()[2], W = out.sizes()[3];
  int64_t oh = g.sizes()[2], ow = g.sizes()[3];
  visit_floating(out.dtype(), "adaptive_avg_pool2d_backward", [&]<class T>() {
    const T* gin = g.data<T>();
    T* o = out.data<T>();
    parallel_for(0, NC, grain_for(H * W + oh * ow), [&](int64_t lo, int64_t hi) {
      std::vector<Acc<T>> acc(static_cast<size_t>(H * W));
      for (int64_t nc = lo; nc < hi; ++nc) {
        std::fill(acc.begin(), acc.end(), Acc<T>(0));
        for (int64_t i = 0; i < oh; ++i) {
          AdaptiveWindow rows = adaptive_window(i, H, oh);
          for (int64_t j = 0; j < ow; ++j) {
            AdaptiveWindow cols = adaptive_window(j, W, ow);
            Acc<T> count = static_cast<Acc<T>>((rows.end - rows.begin) * (cols.end - cols.begin));
            Acc<T> share = static_cast<Acc<T>>(gin[(nc * oh + i) * ow + j]) / count;
            for (int64_t h = rows.begin; h < rows.end; ++h)
              for (int64_t w = cols.begin; w < cols.end; ++w) acc[static_cast<size_t>(h * W + w)] += share;
          }
        }
        T* plane = o + nc * H * W;
        for (int64_t q = 0; q < H * W; ++q) plane[q] = static_cast<T>(acc[static_cast<size_t>(q)]);
      }
    });
  });
  return {out};
}

}  // namespace

void register_conv_kernels(Registry& r);        // backends/cpu/conv.cpp
void register_batch_norm_kernels(Registry& r);  // backends/cpu/batch_norm.cpp

void register_nn_kernels(Registry& r) {
  register_conv_kernels(r);
  register_batch_norm_kernels(r);
  r.set_kernel("im2col", DeviceType::CPU, im2col_kernel);
  r.set_kernel("col2im", DeviceType::CPU, col2im_kernel);
  r.set_kernel("max_pool2d", DeviceType::CPU, max_pool2d_kernel);
  r.set_kernel("max_pool2d_backward", DeviceType::CPU, max_pool2d_backward_kernel);
  r.set_kernel("max_pool2d_gather", DeviceType::CPU, max_pool2d_gather_kernel);
  r.set_kernel("adaptive_avg_pool2d", DeviceType::CPU, adaptive_avg_pool2d_kernel);
  r.set_kernel("adaptive_avg_pool2d_backward", DeviceType::CPU, adaptive_avg_pool2d_backward_kernel);
}

}  // namespace loom::cpu
