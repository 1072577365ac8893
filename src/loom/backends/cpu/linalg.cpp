// CPU matrix products: float32/float64 through OpenBLAS (cblas), 16-bit floats through float32 sgemm,
// integers with a plain loop.
#include <cblas.h>

#include "loom/backends/cpu/dispatch_dtype.h"
#include "loom/backends/cpu/kernel_util.h"
#include "loom/backends/cpu/linalg_lowp.h"
#include "loom/core/parallel.h"

namespace loom::cpu {

namespace {

// A matrix operand in BLAS terms: row-major with leading dimension `ld`, possibly transposed.
struct BlasMatrix {
  Tensor data;
  bool transposed = false;
  int64_t ld = 0;
};

// Uses the strides as they are when BLAS can read them; otherwise makes the matrix contiguous.
BlasMatrix as_blas(const Tensor& m) {
  int64_t rows = m.sizes()[0], cols = m.sizes()[1];
  int64_t s0 = m.strides()[0], s1 = m.strides()[1];
  if ((s1 == 1 || cols == 1) && s0 >= std::max<int64_t>(cols, 1)) return {m, false, s0};
  if ((s0 == 1 || rows == 1) && s1 >= std::max<int64_t>(rows, 1)) return {m, true, s1};
  Tensor c = contiguous(m);
  return {c, false, std::max<int64_t>(cols, 1)};
}

template <class T>
void gemm_blas(const Tensor& a, const Tensor& b, Tensor& out) {
  int64_t n = a.sizes()[0], k = a.sizes()[1], m = b.sizes()[1];
  BlasMatrix A = as_blas(a), B = as_blas(b);
  auto ta = A.transposed ? CblasTrans : CblasNoTrans;
  auto tb = B.transposed ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, ta, tb, n, m, k, 1.0f, A.data.data<float>(), A.ld, B.data.data<float>(), B.ld, 0.0f,
                out.data<float>(), std::max<int64_t>(m, 1));
  else
    cblas_dgemm(CblasRowMajor, ta, tb, n, m, k, 1.0, A.data.data<double>(), A.ld, B.data.data<double>(), B.ld, 0.0,
                out.data<double>(), std::max<int64_t>(m, 1));
}

template <class T>
void gemm_loop(const Tensor& a, const Tensor& b, Tensor& out) {
  int64_t n = a.sizes()[0], k = a.sizes()[1], m = b.sizes()[1];
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  int64_t as0 = a.strides()[0], as1 = a.strides()[1], bs0 = b.strides()[0], bs1 = b.strides()[1];
  T* po = out.data<T>();
  parallel_for(0, n, std::max<int64_t>(1, 4096 / std::max<int64_t>(k * m, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i)
      for (int64_t j = 0; j < m; ++j) {
        int64_t acc = 0;
        for (int64_t p = 0; p < k; ++p) acc += static_cast<int64_t>(pa[i * as0 + p * as1]) * static_cast<int64_t>(pb[p * bs0 + j * bs1]);
        po[i * m + j] = static_cast<T>(acc);
      }
  });
}

// out (contiguous, n x m) = a (n x k) @ b (k x m), any strides.
void gemm(const Tensor& a, const Tensor& b, Tensor& out) {
  if (out.numel() == 0) return;
  if (a.sizes()[1] == 0) {
    fill_(out, Scalar(int64_t(0)));
    return;
  }
  switch (out.dtype()) {
    case DType::Float32: gemm_blas<float>(a, b, out); return;
    case DType::Float64: gemm_blas<double>(a, b, out); return;
    case DType::Float16:
    case DType::BFloat16: gemm_lowp(a, b, out); return;  // linalg_lowp.cpp
    default:
      visit_dtype(out.dtype(), [&]<class T>() {
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) gemm_loop<T>(a, b, out);
      });
  }
}

std::vector<Tensor> mm_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  gemm(c.inputs[0], c.inputs[1], out);
  return {out};
}

std::vector<Tensor> bmm_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  int64_t batch = out.sizes()[0];
  for (int64_t i = 0; i < batch; ++i) {
    Tensor o = select(out, 0, i);
    gemm(select(c.inputs[0], 0, i), select(c.inputs[1], 0, i), o);
  }
  return {out};
}

}  // namespace

void register_linalg_kernels(Registry& r) {
  // OpenBLAS keeps its own thread pool: follow loom's thread count (starting from the current one).
  add_num_threads_listener([](int n) { openblas_set_num_threads(n); });
  openblas_set_num_threads(get_num_threads());
  r.set_kernel("mm", DeviceType::CPU, mm_kernel);
  r.set_kernel("bmm", DeviceType::CPU, bmm_kernel);
}

}  // namespace loom::cpu
