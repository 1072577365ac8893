// CPU kernels of the fused conv2d op (ops/conv.cpp): per image, im2col into a buffer sized for one image and a
// GEMM per group through the GEMM engine (gemm/engine.h) straight into the (N, O, oh*ow) output -- the batch is never permuted.
// 1x1 stride-1 unpadded convolutions skip im2col. Backward per image: grad_weight += grad_out x cols^T (a private
// accumulator per thread, summed in a fixed order), grad_input either as the convolution of grad_out with the
// flipped, transposed weight (stride 1: im2col of grad_out, whose GEMM has O*kh*kw as inner dim) or as
// W^T x grad_out followed by col2im (strided convolutions).
// Threads: with at least as many images as threads, images are split over loom's threads and each GEMM runs on
// one BLAS thread (BLAS is set to one thread for the call); otherwise images run in order on threaded BLAS.

#include <algorithm>
#include <cstring>
#include <vector>

#include "loom/backends/cpu/conv_geometry.h"
#include "loom/backends/cpu/conv_onednn.h"
#include "loom/backends/cpu/dispatch_dtype.h"
#include "loom/backends/cpu/gemm/engine.h"
#include "loom/backends/cpu/simd/cpu_features.h"
#include "loom/backends/cpu/simd/vec_avx2.h"
#include "loom/core/parallel.h"
#include "loom/ops/registry.h"
#include "loom/ops/shape.h"

namespace loom::cpu {

namespace {

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
  if constexpr (std::is_same_v<T, float>) gemm::sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
  else gemm::dgemm(ta, tb, M, N, K, 1.0, A, lda, B, ldb, beta, C, ldc);
}


// ---------------- AVX2 packed GEMM for the convolution's forward-shaped products ----------------
// C (M, L) = A (M, K) x cols (K, L) where cols comes from im2col. im2col writes the columns straight into
// 16-pixel panels ([panel][k][16]), the layout the micro-kernel streams, so the columns are never copied again
// (a BLAS call packs its B operand itself: a second pass over the largest matrix). A (weights) is packed once per
// call in 6-row panels ([row block][k][6]). Micro-kernel: 6 x 16 tile in 12 ymm accumulators, K blocked by 256
// so a B panel block (16 KB) stays in L1 across all row blocks.
#if defined(__x86_64__)
constexpr int64_t kMR = 6, kNR = 16, kKC = 256;

int64_t panels(int64_t L) { return (L + kNR - 1) / kNR; }
int64_t row_blocks(int64_t M) { return (M + kMR - 1) / kMR; }

// Rows are split into row_blocks(M) blocks of near-equal size (32 rows: 6+6+5+5+5+5, not 6*5+2, whose 2-row
// tail runs the micro-kernel at low efficiency). Block b covers rows [row_start(b), row_start(b + 1)).
int64_t row_start(int64_t b, int64_t M) { return b * M / row_blocks(M); }

// A (M, K) with row stride lda -> [rb][k][6], the unused rows of a block zero.
void pack_a(const float* a, int64_t M, int64_t K, int64_t lda, float* out) {
  for (int64_t rb = 0; rb < row_blocks(M); ++rb) {
    int64_t r0 = row_start(rb, M), rows = row_start(rb + 1, M) - r0;
    for (int64_t k = 0; k < K; ++k)
      for (int64_t r = 0; r < kMR; ++r) out[(rb * K + k) * kMR + r] = r < rows ? a[(r0 + r) * lda + k] : 0.0f;
  }
}

// im2col of one image into [panel][k][16] (k over all C*kh*kw rows); pixels past L are zero. Each row k is built
// in a small line buffer (L1) by im2col's row logic, then cut into 16-float (64-byte) chunks.
void im2col_packed(const float* x, const Win& w, float* out) {
  int64_t L = w.oh * w.ow, Ktot = w.C * w.kh * w.kw, P = panels(L);
  std::vector<float> line(static_cast<size_t>(P * kNR), 0.0f);
  for (int64_t c = 0; c < w.C; ++c) {
    const float* plane = x + c * w.H * w.W;
    for (int64_t i = 0; i < w.kh; ++i)
      for (int64_t j = 0; j < w.kw; ++j) {
        int64_t k = (c * w.kh + i) * w.kw + j;
        int64_t off = j * w.dw - w.pl;
        int64_t x0 = off >= 0 ? 0 : std::min<int64_t>((-off + w.sw - 1) / w.sw, w.ow);
        int64_t x1 = W_end(off, w);
        for (int64_t y = 0; y < w.oh; ++y) {
          int64_t ih = y * w.sh - w.pt + i * w.dh;
          float* dst = line.data() + y * w.ow;
          if (ih < 0 || ih >= w.H || x1 <= x0) {
            std::fill(dst, dst + w.ow, 0.0f);
            continue;
          }
          std::fill(dst, dst + x0, 0.0f);
          const float* src = plane + ih * w.W + off;
          if (w.sw == 1) std::memcpy(dst + x0, src + x0, static_cast<size_t>(x1 - x0) * sizeof(float));
          else
            for (int64_t xx = x0; xx < x1; ++xx) dst[xx] = src[xx * w.sw];
          std::fill(dst + x1, dst + w.ow, 0.0f);
        }
        const float* from = line.data();
        float* to = out + k * kNR;
        for (int64_t p = 0; p < P; ++p, from += kNR, to += Ktot * kNR) std::memcpy(to, from, kNR * sizeof(float));
      }
  }
}

// im2col_packed for windows of column stride 1 whose output rows are whole 8-pixel vectors (ow % 8 == 0): each 8-pixel
// half of a panel row is one masked load (lanes outside the input read as zero) and one store, written panel by
// panel so the output is filled sequentially.
// Pixels [l_begin, l_end) (l_begin a multiple of 16) into panels numbered from l_begin.
LOOM_AVX2_FN void im2col_packed_rows8(const float* x, const Win& w, float* out, int64_t l_begin, int64_t l_end) {
  int64_t Ktot = w.C * w.kh * w.kw;
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i width = _mm256_set1_epi32(static_cast<int>(w.W)), minus1 = _mm256_set1_epi32(-1);
  for (int64_t l0 = l_begin; l0 < l_end; l0 += 8) {
    int64_t y = l0 / w.ow, xx0 = l0 % w.ow;
    float* dst = out + ((l0 - l_begin) >> 4) * Ktot * kNR + (l0 & 15);
    for (int64_t i = 0; i < w.kh; ++i) {
      int64_t ih = y * w.sh - w.pt + i * w.dh;
      bool row_ok = ih >= 0 && ih < w.H;
      for (int64_t j = 0; j < w.kw; ++j) {
        int64_t iw0 = xx0 - w.pl + j * w.dw;
        __m256i col = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(iw0)), lanes);
        __m256i mask = _mm256_and_si256(_mm256_cmpgt_epi32(col, minus1), _mm256_cmpgt_epi32(width, col));
        bool full = iw0 >= 0 && iw0 + 8 <= w.W;
        const float* src = x + ih * w.W + iw0;
        float* d = dst + (i * w.kw + j) * kNR;
        for (int64_t c = 0; c < w.C; ++c, src += w.H * w.W, d += w.kh * w.kw * kNR) {
          __m256 v = !row_ok ? _mm256_setzero_ps() : full ? _mm256_loadu_ps(src) : _mm256_maskload_ps(src, mask);
          _mm256_storeu_ps(d, v);
        }
      }
    }
  }
  if (l_end % kNR) {  // the last panel's second half
    float* dst = out + ((l_end - l_begin) >> 4) * Ktot * kNR + 8;
    for (int64_t k = 0; k < Ktot; ++k) _mm256_storeu_ps(dst + k * kNR, _mm256_setzero_ps());
  }
}

// C tile (R rows, `cols` <= 16 columns) [+]= A panel (kc x 6) x B panel (kc x 16). Twelve named accumulators
// (an array of __m256 gets spilled to the stack by GCC).
template <int R>
LOOM_AVX2_FN void micro_kernel(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t cols,
                               bool accumulate) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
         c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int64_t k = 0; k < kc; ++k) {
    __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    __m256 av = _mm256_broadcast_ss(a);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    if constexpr (R > 1) {
      av = _mm256_broadcast_ss(a + 1);
      c10 = _mm256_fmadd_ps(av, b0, c10);
      c11 = _mm256_fmadd_ps(av, b1, c11);
    }
    if constexpr (R > 2) {
      av = _mm256_broadcast_ss(a + 2);
      c20 = _mm256_fmadd_ps(av, b0, c20);
      c21 = _mm256_fmadd_ps(av, b1, c21);
    }
    if constexpr (R > 3) {
      av = _mm256_broadcast_ss(a + 3);
      c30 = _mm256_fmadd_ps(av, b0, c30);
      c31 = _mm256_fmadd_ps(av, b1, c31);
    }
    if constexpr (R > 4) {
      av = _mm256_broadcast_ss(a + 4);
      c40 = _mm256_fmadd_ps(av, b0, c40);
      c41 = _mm256_fmadd_ps(av, b1, c41);
    }
    if constexpr (R > 5) {
      av = _mm256_broadcast_ss(a + 5);
      c50 = _mm256_fmadd_ps(av, b0, c50);
      c51 = _mm256_fmadd_ps(av, b1, c51);
    }
    a += kMR, b += kNR;
  }
  alignas(32) float tmp[kMR][kNR];
  _mm256_store_ps(tmp[0], c00), _mm256_store_ps(tmp[0] + 8, c01);
  _mm256_store_ps(tmp[1], c10), _mm256_store_ps(tmp[1] + 8, c11);
  _mm256_store_ps(tmp[2], c20), _mm256_store_ps(tmp[2] + 8, c21);
  _mm256_store_ps(tmp[3], c30), _mm256_store_ps(tmp[3] + 8, c31);
  _mm256_store_ps(tmp[4], c40), _mm256_store_ps(tmp[4] + 8, c41);
  _mm256_store_ps(tmp[5], c50), _mm256_store_ps(tmp[5] + 8, c51);
  for (int r = 0; r < R; ++r) {
    float* row = c + r * ldc;
    if (cols == kNR) {
      __m256 t0 = _mm256_load_ps(tmp[r]), t1 = _mm256_load_ps(tmp[r] + 8);
      if (accumulate) {
        t0 = _mm256_add_ps(t0, _mm256_loadu_ps(row));
        t1 = _mm256_add_ps(t1, _mm256_loadu_ps(row + 8));
      }
      _mm256_storeu_ps(row, t0);
      _mm256_storeu_ps(row + 8, t1);
    } else {
      for (int64_t j = 0; j < cols; ++j) row[j] = accumulate ? row[j] + tmp[r][j] : tmp[r][j];
    }
  }
}

// C (M, L) row stride ldc = A (packed, M x K) x B (packed panels with Ktot rows, using rows k_off..k_off+K).
void gemm_packed(int64_t M, int64_t L, int64_t K, const float* apack, const float* bpack, int64_t Ktot,
                 int64_t k_off, float* c, int64_t ldc) {
  int64_t kblocks = (K + kKC - 1) / kKC, kstep = (K + kblocks - 1) / kblocks;  // even K blocks
  for (int64_t k0 = 0; k0 < K; k0 += kstep) {
    int64_t kc = std::min(kstep, K - k0);
    bool acc = k0 > 0;
    for (int64_t p = 0; p < panels(L); ++p) {
      int64_t cols = std::min(kNR, L - p * kNR);
      const float* bp = bpack + (p * Ktot + k_off + k0) * kNR;
      for (int64_t rb = 0; rb < row_blocks(M); ++rb) {
        const float* ap = apack + (rb * K + k0) * kMR;
        float* cp = c + row_start(rb, M) * ldc + p * kNR;
        switch (row_start(rb + 1, M) - row_start(rb, M)) {
          case 6: micro_kernel<6>(kc, ap, bp, cp, ldc, cols, acc); break;
          case 5: micro_kernel<5>(kc, ap, bp, cp, ldc, cols, acc); break;
          case 4: micro_kernel<4>(kc, ap, bp, cp, ldc, cols, acc); break;
          case 3: micro_kernel<3>(kc, ap, bp, cp, ldc, cols, acc); break;
          case 2: micro_kernel<2>(kc, ap, bp, cp, ldc, cols, acc); break;
          default: micro_kernel<1>(kc, ap, bp, cp, ldc, cols, acc); break;
        }
      }
    }
  }
}

// Packed weights of all groups: group gr's (Og, K) block at gr * row_blocks(Og) * K * 6.
std::vector<float> pack_groups(const float* w, int64_t groups, int64_t Og, int64_t K) {
  std::vector<float> out(static_cast<size_t>(groups * row_blocks(Og) * K * kMR));
  for (int64_t gr = 0; gr < groups; ++gr) pack_a(w + gr * Og * K, Og, K, K, out.data() + gr * row_blocks(Og) * K * kMR);
  return out;
}

// out (groups*Og, L) = per group A_gr (Og, K) x cols rows [gr*K, (gr+1)*K) of one image's window.
void conv_packed(const float* x, const Win& win, const std::vector<float>& apack, int64_t groups, int64_t Og,
                 int64_t K, std::vector<float>& buf, float* out) {
  int64_t L = win.oh * win.ow, Ktot = win.C * win.kh * win.kw;
  if (win.sw == 1 && win.ow % 8 == 0) {
    // Blocks of panels whose columns (about 128 KB) stay in L2 between im2col and the products.
    int64_t P = panels(L), block = std::clamp<int64_t>(131072 / (Ktot * kNR * 4), 1, P);
    buf.resize(static_cast<size_t>(block * kNR * Ktot));
    for (int64_t p0 = 0; p0 < P; p0 += block) {
      int64_t l0 = p0 * kNR, l1 = std::min(L, (p0 + block) * kNR);
      im2col_packed_rows8(x, win, buf.data(), l0, l1);
      for (int64_t gr = 0; gr < groups; ++gr)
        gemm_packed(Og, l1 - l0, K, apack.data() + gr * row_blocks(Og) * K * kMR, buf.data(), Ktot, gr * K,
                    out + gr * Og * L + l0, L);
    }
    return;
  }
  buf.resize(static_cast<size_t>(panels(L) * kNR * Ktot));
  im2col_packed(x, win, buf.data());
  for (int64_t gr = 0; gr < groups; ++gr)
    gemm_packed(Og, L, K, apack.data() + gr * row_blocks(Og) * K * kMR, buf.data(), Ktot, gr * K, out + gr * Og * L, L);
}
#endif

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
  gemm::SingleThreadScope single;
  parallel_for(0, chunks, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) fn(t, t * N / chunks, (t + 1) * N / chunks);
  });
}

int64_t image_chunks(int64_t N) {
  int threads = in_parallel_region() ? 1 : get_num_threads();
  return std::max<int64_t>(1, std::min<int64_t>(threads, N));
}

Win forward_window(const Geo& g) {
  return {g.C, g.H, g.W, g.kh, g.kw, g.dh, g.dw, g.pt, g.pl, g.sh, g.sw, g.oh, g.ow};
}

template <class T>
void add_bias(T* out, const T* bias, int64_t O, int64_t L) {
  for (int64_t o = 0; o < O; ++o) {
    T b = bias[o];
    T* row = out + o * L;
    for (int64_t l = 0; l < L; ++l) row[l] += b;
  }
}

template <class T>
void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& out, const Geo& g) {
  const T* px = x.data<T>();
  const T* pw = w.data<T>();
  const T* pb = bias.defined() ? bias.data<T>() : nullptr;
  T* po = out.data<T>();
  int64_t K = g.K(), L = g.L(), CHW = g.C * g.H * g.W;
  Win win = forward_window(g);
#if defined(__x86_64__)
  if constexpr (std::is_same_v<T, float>) {
    if (use_avx2() && K > 0) {
      std::vector<float> apack = pack_groups(pw, g.groups, g.Og, K);
      over_images(g.N, [&](int64_t, int64_t n0, int64_t n1) {
        std::vector<float> buf;
        for (int64_t n = n0; n < n1; ++n) {
          float* on = po + n * g.O * L;
          conv_packed(px + n * CHW, win, apack, g.groups, g.Og, K, buf, on);
          if (pb) add_bias(on, pb, g.O, L);
        }
      });
      return;
    }
  }
#endif
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
      if (pb) add_bias(on, pb, g.O, L);
    }
  });
}

std::vector<Tensor> conv2d_kernel(const KernelContext& c) {
  Tensor x = contiguous(c.inputs[0]), w = contiguous(c.inputs[1]);
  Tensor bias = c.inputs.size() == 3 ? contiguous(c.inputs[2]) : Tensor();
  Tensor out = c.alloc(0);
  if (out.numel() == 0) return {out};
  Geo g = geo_of(x.sizes(), w.sizes(), c.attrs);
  if (onednn_conv_wanted(x.dtype())) onednn_conv2d_forward(x, w, bias, out, g);
  else if (x.dtype() == DType::Float32) conv2d_forward<float>(x, w, bias, out, g);
  else if (x.dtype() == DType::Float64) conv2d_forward<double>(x, w, bias, out, g);
  else fail(ErrorKind::Type, "conv2d: the CPU kernel takes float32 or float64, got ", dtype_name(x.dtype()));
  return {out};
}

// grad_bias[o] = sum of grad_out over images and positions of channel o.
template <class T>
void bias_grad(const T* pg, T* out, const Geo& g) {
  int64_t L = g.L();
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
  // float32 with AVX2: the flipped-weight product runs on the packed micro-kernel (as the forward).
  bool packed = false;
  std::vector<float> wflip_packed;
#if defined(__x86_64__)
  if constexpr (std::is_same_v<T, float>) {
    if (flip && use_avx2() && g.Og * kk > 0) {
      packed = true;
      wflip_packed = pack_groups(wflip.data(), g.groups, g.Cg, g.Og * kk);
    }
  }
#endif
  int64_t chunks = image_chunks(g.N);
  std::vector<std::vector<T>> gw_parts(static_cast<size_t>(need_w ? chunks : 0));
  over_images(g.N, [&](int64_t t, int64_t n0, int64_t n1) {
    std::vector<T> cols_buf(need_w && !g.pointwise() ? static_cast<size_t>(g.C * kk * L) : 0);
    std::vector<T> gbuf;
    if (need_x && !g.pointwise() && !packed) gbuf.resize(static_cast<size_t>(flip ? g.O * kk * HW : g.C * kk * L));
    std::vector<float> pbuf;
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
        } else if (flip && packed) {
#if defined(__x86_64__)
          if constexpr (std::is_same_v<T, float>) conv_packed(gn, gwin, wflip_packed, g.groups, g.Cg, g.Og * kk, pbuf, gxn);
#endif
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
  if (need_b) bias_grad<T>(pg, gb.data<T>(), g);
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
  if (onednn_conv_wanted(x.dtype())) {
    onednn_conv2d_backward(gout, x, w, gx, gw, g, need_x, need_w);
    if (need_b) bias_grad<float>(gout.data<float>(), gb.data<float>(), g);
  } else if (x.dtype() == DType::Float32) conv2d_backward<float>(gout, x, w, gx, gw, gb, g, need_x, need_w, need_b);
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
