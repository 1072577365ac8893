// CPU kernels of _flash_attention and _flash_attention_backward (ops/attention.cpp): FlashAttention-2 on the CPU.
//
// Forward: per (batch, block of bq queries) task, walk the key blocks of bk keys: S = scale * Q_i K_j^T (bq x bk,
// one small sgemm), mask, online softmax (running row max m and sum l; the accumulator is rescaled by
// exp(m_old - m_new) when the max grows), acc += P V_j (sgemm). out = acc / l, lse = m + log l. Never more than
// one bq x bk tile of scores per thread. Causal: key blocks past the block's last query are skipped.
// Backward: per batch task, D_i = rowsum(dO_i * O_i); for each key block j, each query block i: P = exp(S - lse),
// dV_j += P^T dO_i, dP = dO_i V_j^T, dS = P (dP - D) scale, dQ_i += dS K_j, dK_j += dS^T Q_i.
//
// The products are gemm_avx2 calls on AVX2 CPUs, else sgemm calls (gemm/engine.h) with m*n*k <= 2^18, which
// OpenBLAS runs on the calling thread (its threading starts above 65536 * GEMM_MULTITHREAD_THRESHOLD(4)) and
// oneDNN too inside the kernels' own parallel_for (OpenMP does not nest), so nothing oversubscribes. The row work (max, exp, sums, dS) has AVX2 loops behind use_avx2() and scalar twins.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "loom/backends/cpu/gemm/engine.h"
#include "loom/backends/cpu/kernel_util.h"
#include "loom/backends/cpu/simd/cpu_features.h"
#include "loom/backends/cpu/simd/vec_avx2.h"
#include "loom/core/parallel.h"

namespace loom::cpu {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr int64_t kMaxTileFlops = int64_t(1) << 18;  // m*n*k of one sgemm: stays single-threaded in OpenBLAS

// ---------------- operands ----------------

// Element offsets of each (flattened) batch index of a (batch..., rows, cols) tensor.
std::vector<int64_t> batch_offsets(const Tensor& t) {
  int64_t nb = t.dim() - 2, count = 1;
  for (int64_t d = 0; d < nb; ++d) count *= t.sizes()[d];
  std::vector<int64_t> out(count), idx(nb, 0);
  int64_t off = 0;
  for (int64_t n = 0; n < count; ++n) {
    out[n] = off;
    for (int64_t d = nb - 1; d >= 0; --d) {
      if (++idx[d] < t.sizes()[d]) {
        off += t.strides()[d];
        break;
      }
      off -= t.strides()[d] * (t.sizes()[d] - 1);
      idx[d] = 0;
    }
  }
  return out;
}

// A float32 (batch..., rows, cols) matrix stack as BLAS reads it: rows `ld` apart, cols contiguous. Inputs whose
// strides do not allow that (a non-unit column stride, overlapping rows) are copied once.
struct Operand {
  Tensor keep;
  const float* base = nullptr;
  std::vector<int64_t> offsets;
  int64_t ld = 1;
  const float* at(int64_t n, int64_t row) const { return base + offsets[n] + row * ld; }
};

Operand operand(const Tensor& x) {
  int64_t d = x.dim(), rows = x.sizes()[d - 2], cols = x.sizes()[d - 1];
  int64_t rs = x.strides()[d - 2], cs = x.strides()[d - 1];
  Tensor t = x;
  if (!((cs == 1 || cols == 1) && (rs >= cols || rows == 1))) t = contiguous(x);
  Operand o;
  o.keep = t;
  o.base = t.data<float>();
  o.offsets = batch_offsets(t);
  o.ld = rows == 1 ? std::max<int64_t>(cols, 1) : t.strides()[d - 2];
  if (o.ld < cols) o.ld = cols;
  return o;
}

// The optional mask, read with its own strides (broadcast masks are stride-0 views).
struct MaskView {
  const bool* b = nullptr;
  const float* f = nullptr;
  std::vector<int64_t> offsets;
  int64_t rs = 0, cs = 0;
};

MaskView mask_view(const std::vector<Tensor>& inputs, size_t index) {
  MaskView m;
  if (inputs.size() <= index) return m;
  const Tensor& t = inputs[index];
  if (t.dtype() == DType::Bool)
    m.b = t.data<bool>();
  else
    m.f = t.data<float>();
  m.offsets = batch_offsets(t);
  m.rs = t.strides()[t.dim() - 2];
  m.cs = t.strides()[t.dim() - 1];
  return m;
}

// Masks one row of scores s[0, cols) (query i, keys j0...): causal entries j > i and bool-masked entries become
// -inf, a float mask is added.
inline void mask_row(float* s, int64_t cols, int64_t n, int64_t i, int64_t j0, bool causal, const MaskView& m) {
  if (causal) {
    int64_t keep = std::clamp<int64_t>(i - j0 + 1, 0, cols);
    for (int64_t j = keep; j < cols; ++j) s[j] = kNegInf;
  }
  if (m.b) {
    const bool* row = m.b + m.offsets[n] + i * m.rs + j0 * m.cs;
    for (int64_t j = 0; j < cols; ++j)
      if (!row[j * m.cs]) s[j] = kNegInf;
  } else if (m.f) {
    const float* row = m.f + m.offsets[n] + i * m.rs + j0 * m.cs;
    for (int64_t j = 0; j < cols; ++j) s[j] += row[j * m.cs];
  }
}

inline void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                  const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  gemm::sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// ---------------- row helpers: scalar ----------------

// Max over s[0, n), NaN ignored (a NaN still reaches the output through exp).
float row_max_scalar(const float* s, int64_t n) {
  float mx = kNegInf;
  for (int64_t j = 0; j < n; ++j)
    if (s[j] > mx) mx = s[j];
  return mx;
}
// s = exp(s - m); returns the sum.
float exp_sum_scalar(float* s, int64_t n, float m) {
  float sum = 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    s[j] = std::exp(s[j] - m);
    sum += s[j];
  }
  return sum;
}
void scale_scalar(float* x, int64_t n, float a) {
  for (int64_t j = 0; j < n; ++j) x[j] *= a;
}
float dot_scalar(const float* a, const float* b, int64_t n) {
  float acc = 0.0f;
  for (int64_t j = 0; j < n; ++j) acc += a[j] * b[j];
  return acc;
}
// dp = p * (dp - d) * scale
void ds_scalar(const float* p, float* dp, int64_t n, float d, float scale) {
  for (int64_t j = 0; j < n; ++j) dp[j] = p[j] * (dp[j] - d) * scale;
}

// ---------------- row helpers: AVX2 ----------------
#if defined(__x86_64__)
namespace avx = avx2;

LOOM_AVX2_FN float row_max_avx2(const float* s, int64_t n) {
  __m256 mx = _mm256_set1_ps(kNegInf);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) mx = _mm256_max_ps(_mm256_loadu_ps(s + j), mx);  // a NaN lane keeps mx
  if (j < n) {
    __m256i mk = avx::tail_mask(n - j);
    __m256 x = _mm256_blendv_ps(_mm256_set1_ps(kNegInf), _mm256_maskload_ps(s + j, mk), _mm256_castsi256_ps(mk));
    mx = _mm256_max_ps(x, mx);
  }
  return avx::reduce_max(mx);
}
LOOM_AVX2_FN float exp_sum_avx2(float* s, int64_t n, float m) {
  __m256 vm = _mm256_set1_ps(m), acc = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 e = avx::exp(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
    _mm256_storeu_ps(s + j, e);
    acc = _mm256_add_ps(acc, e);
  }
  if (j < n) {
    __m256i mk = avx::tail_mask(n - j);
    __m256 e = avx::exp(_mm256_sub_ps(_mm256_maskload_ps(s + j, mk), vm));
    e = _mm256_and_ps(e, _mm256_castsi256_ps(mk));
    _mm256_maskstore_ps(s + j, mk, e);
    acc = _mm256_add_ps(acc, e);
  }
  return avx::reduce_add(acc);
}
LOOM_AVX2_FN void scale_avx2(float* x, int64_t n, float a) {
  __m256 va = _mm256_set1_ps(a);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) _mm256_storeu_ps(x + j, _mm256_mul_ps(_mm256_loadu_ps(x + j), va));
  for (; j < n; ++j) x[j] *= a;
}
LOOM_AVX2_FN float dot_avx2(const float* a, const float* b, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j), acc);
  float sum = avx::reduce_add(acc);
  for (; j < n; ++j) sum += a[j] * b[j];
  return sum;
}
LOOM_AVX2_FN void ds_avx2(const float* p, float* dp, int64_t n, float d, float scale) {
  __m256 vd = _mm256_set1_ps(d), vs = _mm256_set1_ps(scale);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 x = _mm256_sub_ps(_mm256_loadu_ps(dp + j), vd);
    _mm256_storeu_ps(dp + j, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(p + j), x), vs));
  }
  for (; j < n; ++j) dp[j] = p[j] * (dp[j] - d) * scale;
}

// C (m x n, ldc) = alpha * A @ B (+ C when accumulate). A (m x k) is read at A[r * a_rs + p * a_ps], so a
// transposed A costs nothing; B (k x n) is row-major (ldb). Register tiles of MR rows x 16 columns (12
// accumulators for MR = 6); the 16-column panel of B stays in L1 across the rows. No packing: the operands of
// attention tiles (<= 64 x 512) are cache-resident already.
template <int MR, bool Full>
LOOM_AVX2_INLINE void micro_avx2(int64_t k, const float* A, int64_t a_rs, int64_t a_ps, const float* B, int64_t ldb,
                                 float* C, int64_t ldc, float alpha, bool accumulate, __m256i m0, __m256i m1) {
  __m256 c0[MR], c1[MR];
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) c0[r] = c1[r] = _mm256_setzero_ps();
  for (int64_t p = 0; p < k; ++p) {
    const float* b = B + p * ldb;
    __m256 b0 = Full ? _mm256_loadu_ps(b) : _mm256_maskload_ps(b, m0);
    __m256 b1 = Full ? _mm256_loadu_ps(b + 8) : _mm256_maskload_ps(b + 8, m1);
    const float* a = A + p * a_ps;
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      __m256 av = _mm256_broadcast_ss(a + r * a_rs);
      c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
      c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
    }
  }
  __m256 va = _mm256_set1_ps(alpha);
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) {
    float* c = C + r * ldc;
    __m256 x0 = _mm256_mul_ps(c0[r], va), x1 = _mm256_mul_ps(c1[r], va);
    if (Full) {
      if (accumulate) {
        x0 = _mm256_add_ps(x0, _mm256_loadu_ps(c));
        x1 = _mm256_add_ps(x1, _mm256_loadu_ps(c + 8));
      }
      _mm256_storeu_ps(c, x0);
      _mm256_storeu_ps(c + 8, x1);
    } else {
      if (accumulate) {
        x0 = _mm256_add_ps(x0, _mm256_maskload_ps(c, m0));
        x1 = _mm256_add_ps(x1, _mm256_maskload_ps(c + 8, m1));
      }
      _mm256_maskstore_ps(c, m0, x0);
      _mm256_maskstore_ps(c + 8, m1, x1);
    }
  }
}

template <bool Full>
LOOM_AVX2_INLINE void panel_avx2(int64_t m, int64_t k, const float* A, int64_t a_rs, int64_t a_ps, const float* B,
                                 int64_t ldb, float* C, int64_t ldc, float alpha, bool accumulate, __m256i m0,
                                 __m256i m1) {
  int64_t i = 0;
  for (; i + 6 <= m; i += 6)
    micro_avx2<6, Full>(k, A + i * a_rs, a_rs, a_ps, B, ldb, C + i * ldc, ldc, alpha, accumulate, m0, m1);
  const float* a = A + i * a_rs;
  float* c = C + i * ldc;
  switch (m - i) {
    case 5: micro_avx2<5, Full>(k, a, a_rs, a_ps, B, ldb, c, ldc, alpha, accumulate, m0, m1); break;
    case 4: micro_avx2<4, Full>(k, a, a_rs, a_ps, B, ldb, c, ldc, alpha, accumulate, m0, m1); break;
    case 3: micro_avx2<3, Full>(k, a, a_rs, a_ps, B, ldb, c, ldc, alpha, accumulate, m0, m1); break;
    case 2: micro_avx2<2, Full>(k, a, a_rs, a_ps, B, ldb, c, ldc, alpha, accumulate, m0, m1); break;
    case 1: micro_avx2<1, Full>(k, a, a_rs, a_ps, B, ldb, c, ldc, alpha, accumulate, m0, m1); break;
    default: break;
  }
}

LOOM_AVX2_FN void gemm_avx2(int64_t m, int64_t n, int64_t k, float alpha, const float* A, int64_t a_rs, int64_t a_ps,
                            const float* B, int64_t ldb, bool accumulate, float* C, int64_t ldc) {
  const __m256i all = _mm256_set1_epi32(-1);
  for (int64_t j = 0; j < n; j += 16) {
    int64_t rem = n - j;
    if (rem >= 16) {
      panel_avx2<true>(m, k, A, a_rs, a_ps, B + j, ldb, C + j, ldc, alpha, accumulate, all, all);
    } else {
      __m256i m0 = avx::tail_mask(std::min<int64_t>(rem, 8)), m1 = avx::tail_mask(std::max<int64_t>(rem - 8, 0));
      panel_avx2<false>(m, k, A, a_rs, a_ps, B + j, ldb, C + j, ldc, alpha, accumulate, m0, m1);
    }
  }
}

// dst (cols x rows, row-major) = src (rows x cols, rows ld apart)^T, in 8 x 8 register blocks.
LOOM_AVX2_FN void transpose_avx2(float* dst, const float* src, int64_t rows, int64_t cols, int64_t ld) {
  int64_t r = 0;
  for (; r + 8 <= rows; r += 8) {
    int64_t c = 0;
    for (; c + 8 <= cols; c += 8) {
      const float* s = src + r * ld + c;
      __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + ld), r2 = _mm256_loadu_ps(s + 2 * ld),
             r3 = _mm256_loadu_ps(s + 3 * ld), r4 = _mm256_loadu_ps(s + 4 * ld), r5 = _mm256_loadu_ps(s + 5 * ld),
             r6 = _mm256_loadu_ps(s + 6 * ld), r7 = _mm256_loadu_ps(s + 7 * ld);
      __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
      __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
      __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
      __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
      __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
      __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
      __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
      __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
      __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
      __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
      __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
      __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
      float* d = dst + c * rows + r;
      _mm256_storeu_ps(d, _mm256_permute2f128_ps(s0, s4, 0x20));
      _mm256_storeu_ps(d + rows, _mm256_permute2f128_ps(s1, s5, 0x20));
      _mm256_storeu_ps(d + 2 * rows, _mm256_permute2f128_ps(s2, s6, 0x20));
      _mm256_storeu_ps(d + 3 * rows, _mm256_permute2f128_ps(s3, s7, 0x20));
      _mm256_storeu_ps(d + 4 * rows, _mm256_permute2f128_ps(s0, s4, 0x31));
      _mm256_storeu_ps(d + 5 * rows, _mm256_permute2f128_ps(s1, s5, 0x31));
      _mm256_storeu_ps(d + 6 * rows, _mm256_permute2f128_ps(s2, s6, 0x31));
      _mm256_storeu_ps(d + 7 * rows, _mm256_permute2f128_ps(s3, s7, 0x31));
    }
    for (; c < cols; ++c)
      for (int64_t i = r; i < r + 8; ++i) dst[c * rows + i] = src[i * ld + c];
  }
  for (; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * rows + r] = src[r * ld + c];
}
#endif

// dst (cols x rows, row-major) = src (rows x cols, rows ld apart)^T.
void transpose_into(float* dst, const float* src, int64_t rows, int64_t cols, int64_t ld) {
#if defined(__x86_64__)
  if (use_avx2()) return transpose_avx2(dst, src, rows, cols, ld);
#endif
  constexpr int64_t kB = 16;
  for (int64_t r0 = 0; r0 < rows; r0 += kB)
    for (int64_t c0 = 0; c0 < cols; c0 += kB)
      for (int64_t r = r0; r < std::min(rows, r0 + kB); ++r)
        for (int64_t c = c0; c < std::min(cols, c0 + kB); ++c) dst[c * rows + r] = src[r * ld + c];
}

struct RowOps {
  float (*row_max)(const float*, int64_t);
  float (*exp_sum)(float*, int64_t, float);
  void (*scale)(float*, int64_t, float);
  float (*dot)(const float*, const float*, int64_t);
  void (*ds)(const float*, float*, int64_t, float, float);
  bool avx2 = false;  // tile products with gemm_avx2 (else the engine's sgemm)
};

RowOps row_ops() {
#if defined(__x86_64__)
  if (use_avx2()) return {row_max_avx2, exp_sum_avx2, scale_avx2, dot_avx2, ds_avx2, true};
#endif
  return {row_max_scalar, exp_sum_scalar, scale_scalar, dot_scalar, ds_scalar, false};
}

// C (m x n, ldc) = alpha * op(A) @ op(B) + beta * C (beta 0 or 1), BLAS conventions. The AVX2 path reads a
// transposed A through its strides; for a transposed B it uses `bt` (B^T, k x n, rows ld_bt apart) when given,
// else copies B^T into `scratch` (k * n floats) first.
void product(const RowOps& ops, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
             int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc, float* scratch,
             const float* bt = nullptr, int64_t ld_bt = 0) {
#if defined(__x86_64__)
  if (ops.avx2) {
    if (tb && bt) {
      b = bt;
      ldb = ld_bt;
    } else if (tb) {
      transpose_into(scratch, b, n, k, ldb);
      b = scratch;
      ldb = n;
    }
    gemm_avx2(m, n, k, alpha, a, ta ? 1 : lda, ta ? lda : 1, b, ldb, beta != 0.0f, c, ldc);
    return;
  }
#endif
  sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// ---------------- block sizes ----------------

struct Blocks {
  int64_t bq, bk;
};

// bq queries x bk keys per tile, with bq * bk * max(E, Ev) <= 2^18 (the sgemm threading threshold).
Blocks blocks(int64_t L, int64_t S, int64_t E, int64_t Ev) {
  int64_t width = std::max<int64_t>({E, Ev, 1});
  int64_t bq = std::min<int64_t>(L, 64);
  while (bq > 8 && bq * 16 * width > kMaxTileFlops) bq /= 2;
  int64_t bk = kMaxTileFlops / (bq * width);
  bk = std::clamp<int64_t>(bk, 8, 512);
  if (bk >= 16) bk -= bk % 8;
  bk = std::min(bk, S);
  return {std::max<int64_t>(bq, 1), std::max<int64_t>(bk, 1)};
}

// ---------------- forward ----------------

std::vector<Tensor> flash_attention_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0), lse = c.alloc(1);
  const auto& in = c.inputs;
  float scale = static_cast<float>(c.attrs.get<double>("scale"));
  bool causal = c.attrs.get<bool>("is_causal");
  int64_t d = in[0].dim();
  int64_t L = in[0].sizes()[d - 2], E = in[0].sizes()[d - 1], S = in[1].sizes()[d - 2], Ev = in[2].sizes()[d - 1];
  float* po = out.data<float>();
  float* pl = lse.data<float>();
  if (lse.numel() == 0) return {out, lse};
  if (S == 0 || Ev == 0) {  // no keys: softmax over nothing, a weighted sum of nothing (the composite's zeros)
    std::fill(po, po + out.numel(), 0.0f);
    std::fill(pl, pl + lse.numel(), kNegInf);
    return {out, lse};
  }
  Operand Q = operand(in[0]), K = operand(in[1]), V = operand(in[2]);
  MaskView M = mask_view(in, 3);
  int64_t N = static_cast<int64_t>(Q.offsets.size());
  RowOps ops = row_ops();
  Blocks b = blocks(L, S, E, Ev);
  // Own products have no threading threshold: wider key blocks mean fewer rescales of the accumulator.
  if (ops.avx2) b.bk = std::max(b.bk, std::min<int64_t>(S, 256));
  int64_t nqb = (L + b.bq - 1) / b.bq, tasks = N * nqb;
  int64_t task_flops = 2 * b.bq * S * (E + Ev) / (causal ? 2 : 1) + 1;
  int64_t grain = std::max<int64_t>(1, (int64_t(1) << 19) / task_flops);
  // The AVX2 products read K^T row-major: transpose each batch's K once (not once per tile).
  // A few query rows (generation with a KV cache: L = 1) read K directly, one dot product per score.
  bool dot_scores = ops.avx2 && L <= 4;
  std::unique_ptr<float[]> kt(ops.avx2 && !dot_scores ? new float[N * E * S] : nullptr);
  if (kt)
    parallel_for(0, N, std::max<int64_t>(1, kElementwiseGrain / (E * S)), [&](int64_t lo, int64_t hi) {
      for (int64_t n = lo; n < hi; ++n) transpose_into(kt.get() + n * E * S, K.at(n, 0), S, E, K.ld);
    });
  parallel_for(0, tasks, grain, [&](int64_t lo, int64_t hi) {
    std::vector<float> sbuf(b.bq * b.bk), acc(b.bq * Ev), m(b.bq), l(b.bq), tbuf(b.bk * std::max(E, Ev));
    for (int64_t t = lo; t < hi; ++t) {
      int64_t n = t / nqb, i0 = (t % nqb) * b.bq, rows = std::min(b.bq, L - i0);
      std::fill(acc.begin(), acc.begin() + rows * Ev, 0.0f);
      std::fill(m.begin(), m.end(), kNegInf);
      std::fill(l.begin(), l.end(), 0.0f);
      int64_t j_end = causal ? std::min(S, i0 + rows) : S;  // causal: keys past the last query are all masked
      for (int64_t j0 = 0; j0 < j_end; j0 += b.bk) {
        int64_t cols = std::min(b.bk, j_end - j0);
        float* s = sbuf.data();
        if (dot_scores) {
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t j = 0; j < cols; ++j) s[r * cols + j] = scale * ops.dot(Q.at(n, i0 + r), K.at(n, j0 + j), E);
        } else {
          product(ops, false, true, rows, cols, E, scale, Q.at(n, i0), Q.ld, K.at(n, j0), K.ld, 0.0f, s, cols,
                  tbuf.data(), kt ? kt.get() + n * E * S + j0 : nullptr, S);
        }
        for (int64_t r = 0; r < rows; ++r) {
          float* row = s + r * cols;
          mask_row(row, cols, n, i0 + r, j0, causal, M);
          float m_new = std::max(m[r], ops.row_max(row, cols));
          float m_use = m_new == kNegInf ? 0.0f : m_new;  // a row masked so far: every p is 0, no NaN
          float alpha = std::exp(m[r] - m_use);
          float sum = ops.exp_sum(row, cols, m_use);
          l[r] = l[r] * alpha + sum;
          m[r] = m_new;
          if (alpha != 1.0f) ops.scale(acc.data() + r * Ev, Ev, alpha);
        }
        product(ops, false, false, rows, Ev, cols, 1.0f, s, cols, V.at(n, j0), V.ld, 1.0f, acc.data(), Ev, tbuf.data());
      }
      for (int64_t r = 0; r < rows; ++r) {
        int64_t row = n * L + i0 + r;
        float* o = po + row * Ev;
        const float* a = acc.data() + r * Ev;
        // l = 0: every key of the row is masked; its output is 0, as in PyTorch (not 0/0 = NaN).
        float inv = l[r] == 0.0f ? 0.0f : 1.0f / l[r];
        for (int64_t e = 0; e < Ev; ++e) o[e] = a[e] * inv;
        pl[row] = m[r] + std::log(l[r]);
      }
    }
  });
  return {out, lse};
}

// ---------------- backward ----------------

std::vector<Tensor> flash_attention_backward_kernel(const KernelContext& c) {
  Tensor dq = c.alloc(0), dk = c.alloc(1), dv = c.alloc(2);
  const auto& in = c.inputs;  // grad_out, q, k, v, out, lse[, mask]
  float scale = static_cast<float>(c.attrs.get<double>("scale"));
  bool causal = c.attrs.get<bool>("is_causal");
  int64_t d = in[1].dim();
  int64_t L = in[1].sizes()[d - 2], E = in[1].sizes()[d - 1], S = in[2].sizes()[d - 2], Ev = in[3].sizes()[d - 1];
  float* pdq = dq.data<float>();
  float* pdk = dk.data<float>();
  float* pdv = dv.data<float>();
  std::fill(pdq, pdq + dq.numel(), 0.0f);
  std::fill(pdk, pdk + dk.numel(), 0.0f);
  std::fill(pdv, pdv + dv.numel(), 0.0f);
  if (L == 0 || S == 0 || dq.numel() + dk.numel() + dv.numel() == 0) return {dq, dk, dv};
  Operand G = operand(in[0]), Q = operand(in[1]), K = operand(in[2]), V = operand(in[3]), O = operand(in[4]);
  Tensor lse = contiguous(in[5]);
  const float* plse = lse.data<float>();
  MaskView M = mask_view(in, 6);
  int64_t N = static_cast<int64_t>(Q.offsets.size());
  Blocks b = blocks(L, S, E, Ev);
  int64_t task_flops = 10 * L * S * std::max<int64_t>(E, Ev) / (causal ? 2 : 1) + 1;
  int64_t grain = std::max<int64_t>(1, (int64_t(1) << 19) / task_flops);
  RowOps ops = row_ops();
  parallel_for(0, N, grain, [&](int64_t lo, int64_t hi) {
    std::vector<float> pbuf(b.bq * b.bk), dpbuf(b.bq * b.bk), D(L), tbuf(b.bk * std::max(E, Ev));
    std::vector<float> kt(ops.avx2 ? E * S : 0), vt(ops.avx2 ? Ev * S : 0);  // K^T, V^T of batch n (AVX2)
    for (int64_t n = lo; n < hi; ++n) {
      if (ops.avx2) {
        transpose_into(kt.data(), K.at(n, 0), S, E, K.ld);
        transpose_into(vt.data(), V.at(n, 0), S, Ev, V.ld);
      }
      for (int64_t i = 0; i < L; ++i) D[i] = Ev ? ops.dot(G.at(n, i), O.at(n, i), Ev) : 0.0f;
      const float* lse_n = plse + n * L;
      float* dq_n = pdq + n * L * E;
      float* dk_n = pdk + n * S * E;
      float* dv_n = pdv + n * S * Ev;
      for (int64_t j0 = 0; j0 < S; j0 += b.bk) {
        int64_t cols = std::min(b.bk, S - j0);
        // causal: query blocks whose last row is before key j0 see none of this block
        for (int64_t i0 = causal ? (j0 / b.bq) * b.bq : 0; i0 < L; i0 += b.bq) {
          int64_t rows = std::min(b.bq, L - i0);
          float* p = pbuf.data();
          float* dp = dpbuf.data();
          product(ops, false, true, rows, cols, E, scale, Q.at(n, i0), Q.ld, K.at(n, j0), K.ld, 0.0f, p, cols, tbuf.data(),
                  ops.avx2 ? kt.data() + j0 : nullptr, S);
          for (int64_t r = 0; r < rows; ++r) {
            float* row = p + r * cols;
            if (lse_n[i0 + r] == kNegInf) {  // a fully masked row: P = 0 (exp(-inf - -inf) would be NaN)
              std::fill(row, row + cols, 0.0f);
              continue;
            }
            mask_row(row, cols, n, i0 + r, j0, causal, M);
            ops.exp_sum(row, cols, lse_n[i0 + r]);  // P = exp(S - lse)
          }
          if (Ev) {
            product(ops, true, false, cols, Ev, rows, 1.0f, p, cols, G.at(n, i0), G.ld, 1.0f, dv_n + j0 * Ev, Ev, tbuf.data());
            product(ops, false, true, rows, cols, Ev, 1.0f, G.at(n, i0), G.ld, V.at(n, j0), V.ld, 0.0f, dp, cols, tbuf.data(),
                    ops.avx2 ? vt.data() + j0 : nullptr, S);
          } else {
            std::fill(dp, dp + rows * cols, 0.0f);
          }
          for (int64_t r = 0; r < rows; ++r) ops.ds(p + r * cols, dp + r * cols, cols, D[i0 + r], scale);
          if (E) {
            product(ops, false, false, rows, E, cols, 1.0f, dp, cols, K.at(n, j0), K.ld, 1.0f, dq_n + i0 * E, E, tbuf.data());
            product(ops, true, false, cols, E, rows, 1.0f, dp, cols, Q.at(n, i0), Q.ld, 1.0f, dk_n + j0 * E, E, tbuf.data());
          }
        }
      }
    }
  });
  return {dq, dk, dv};
}

}  // namespace

void register_attention_kernels(Registry& r) {
  r.set_kernel("_flash_attention", DeviceType::CPU, flash_attention_kernel);
  r.set_kernel("_flash_attention_backward", DeviceType::CPU, flash_attention_backward_kernel);
}

}  // namespace loom::cpu
