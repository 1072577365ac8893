// CPU matrix products: float32/float64 through the GEMM engine (gemm/engine.h: OpenBLAS or oneDNN, chosen from
// the CPU), 16-bit floats natively or through float32 sgemm (linalg_lowp.cpp), integers with a plain loop.
// Operands are read in place whenever BLAS can (row-major or transposed, any leading dimension, any batch
// stride); addmm accumulates onto its input (BLAS beta) instead of a separate add; batches of small matrices run
// in parallel over the batch, one single-threaded product per loom thread.
#include "loom/backends/cpu/dispatch_dtype.h"
#include "loom/backends/cpu/gemm/engine.h"
#include "loom/backends/cpu/kernel_util.h"
#include "loom/backends/cpu/linalg_lowp.h"
#include "loom/core/parallel.h"
#include "loom/ops/elementwise.h"

namespace loom::cpu {

BlasMatrix as_blas(const Tensor& m) {
  int64_t rows = m.sizes()[0], cols = m.sizes()[1];
  int64_t s0 = m.strides()[0], s1 = m.strides()[1];
  if ((s1 == 1 || cols == 1) && s0 >= std::max<int64_t>(cols, 1)) return {m, false, s0};
  if ((s0 == 1 || rows == 1) && s1 >= std::max<int64_t>(rows, 1)) return {m, true, s1};
  Tensor c = contiguous(m);
  return {c, false, std::max<int64_t>(cols, 1)};
}

namespace {

template <class T>
void gemv_raw(bool transpose, int64_t rows, int64_t cols, T alpha, const T* pm, int64_t ld, const T* x, int64_t incx,
              T beta, T* y, int64_t incy) {
  if constexpr (std::is_same_v<T, float>) gemm::sgemv(transpose, rows, cols, alpha, pm, ld, x, incx, beta, y, incy);
  else gemm::dgemv(transpose, rows, cols, alpha, pm, ld, x, incx, beta, y, incy);
}

// Raw row-major product: out (n x m, leading dimension ldo) = alpha * A @ B + beta * out.
// A single-row or single-column product goes to gemv: OpenBLAS 0.3.21's sgemm packs all of B even for one row
// (a KV-cached decoding step: 1 x 384 @ 384 x 1152 took 4.5x longer through sgemm than through sgemv).
template <class T>
void gemm_raw(const BlasMatrix& A, const T* pa, const BlasMatrix& B, const T* pb, int64_t n, int64_t m, int64_t k,
              T alpha, T beta, T* out, int64_t ldo) {
  if (n == 1) {  // out (1 x m) = a (1 x k) @ B: B stored (k x m), or (m x k) when transposed
    int64_t inc_a = A.transposed ? A.ld : 1;
    if (B.transposed) gemv_raw<T>(false, m, k, alpha, pb, B.ld, pa, inc_a, beta, out, 1);
    else gemv_raw<T>(true, k, m, alpha, pb, B.ld, pa, inc_a, beta, out, 1);
    return;
  }
  if (m == 1) {  // out (n x 1, stride ldo) = A @ b (k x 1): A stored (n x k), or (k x n) when transposed
    int64_t inc_b = B.transposed ? 1 : B.ld;
    int64_t inc_out = std::max<int64_t>(ldo, 1);
    if (A.transposed) gemv_raw<T>(true, k, n, alpha, pa, A.ld, pb, inc_b, beta, out, inc_out);
    else gemv_raw<T>(false, n, k, alpha, pa, A.ld, pb, inc_b, beta, out, inc_out);
    return;
  }
  int64_t ldc = std::max<int64_t>(ldo, 1);
  if constexpr (std::is_same_v<T, float>)
    gemm::sgemm(A.transposed, B.transposed, n, m, k, alpha, pa, A.ld, pb, B.ld, beta, out, ldc);
  else
    gemm::dgemm(A.transposed, B.transposed, n, m, k, alpha, pa, A.ld, pb, B.ld, beta, out, ldc);
}

template <class T>
void gemm_blas(const Tensor& a, const Tensor& b, Tensor& out, T alpha = T(1), T beta = T(0)) {
  int64_t n = a.sizes()[0], k = a.sizes()[1], m = b.sizes()[1];
  BlasMatrix A = as_blas(a), B = as_blas(b);
  gemm_raw<T>(A, A.data.data<T>(), B, B.data.data<T>(), n, m, k, alpha, beta, out.data<T>(), m);
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
        for (int64_t p = 0; p < k; ++p)
          acc = wrap_add(acc, wrap_mul(static_cast<int64_t>(pa[i * as0 + p * as1]), static_cast<int64_t>(pb[p * bs0 + j * bs1])));
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

// A batch of matrices in BLAS terms: every item has the same layout, item i starts at batch_stride * i.
struct BlasBatch {
  BlasMatrix item;
  int64_t batch_stride = 0;
};

BlasBatch as_blas_batch(const Tensor& t) {
  int64_t rows = t.sizes()[1], cols = t.sizes()[2];
  int64_t s0 = t.strides()[1], s1 = t.strides()[2];
  if ((s1 == 1 || cols == 1) && s0 >= std::max<int64_t>(cols, 1)) return {{t, false, s0}, t.strides()[0]};
  if ((s0 == 1 || rows == 1) && s1 >= std::max<int64_t>(rows, 1)) return {{t, true, s1}, t.strides()[0]};
  Tensor c = contiguous(t);
  return {{c, false, std::max<int64_t>(cols, 1)}, rows * cols};
}

// out[i] = a[i] @ b[i] for float32/float64, operands read in place (one contiguous() of the whole batch when
// an item's layout is not BLAS-readable). Small items run in parallel over the batch, one single-threaded
// product per loom thread: waking BLAS's own pool for every small item costs more than the product.
template <class T>
void bmm_blas(const Tensor& a, const Tensor& b, Tensor& out) {
  int64_t batch = out.sizes()[0], n = out.sizes()[1], m = out.sizes()[2], k = a.sizes()[2];
  BlasBatch A = as_blas_batch(a), B = as_blas_batch(b);
  const T* pa = A.item.data.data<T>();
  const T* pb = B.item.data.data<T>();
  T* po = out.data<T>();
  auto run = [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i)
      gemm_raw<T>(A.item, pa + i * A.batch_stride, B.item, pb + i * B.batch_stride, n, m, k, T(1), T(0),
                  po + i * n * m, m);
  };
  int threads = get_num_threads();
  bool per_item = threads > 1 && batch >= threads && n * m * k <= (int64_t(1) << 27) && !in_parallel_region();
  if (!per_item) return run(0, batch);
  gemm::SingleThreadScope single;
  parallel_for(0, batch, 1, run);
}

std::vector<Tensor> bmm_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  int64_t batch = out.sizes()[0];
  if (out.numel() == 0) return {out};
  if (c.inputs[0].sizes()[2] != 0 && (out.dtype() == DType::Float32 || out.dtype() == DType::Float64)) {
    if (out.dtype() == DType::Float32) bmm_blas<float>(c.inputs[0], c.inputs[1], out);
    else bmm_blas<double>(c.inputs[0], c.inputs[1], out);
    return {out};
  }
  for (int64_t i = 0; i < batch; ++i) {
    Tensor o = select(out, 0, i);
    gemm(select(c.inputs[0], 0, i), select(c.inputs[1], 0, i), o);
  }
  return {out};
}

// addmm: out = beta * input (broadcast) + alpha * a @ b. float32/float64: the input is copied into the output
// and BLAS accumulates the product onto it; 16-bit floats: the same in float32, rounded once at the end;
// empty products (k = 0): product, then add.
std::vector<Tensor> addmm_kernel(const KernelContext& c) {
  const Tensor &input = c.inputs[0], &a = c.inputs[1], &b = c.inputs[2];
  double beta = c.attrs.get<double>("beta"), alpha = c.attrs.get<double>("alpha");
  Tensor out = c.alloc(0);
  if (out.numel() == 0) return {out};
  DType dt = out.dtype();
  if ((dt == DType::Float32 || dt == DType::Float64) && a.sizes()[1] > 0) {
    if (beta != 0.0) detail::copy_data(out, input);
    if (dt == DType::Float32) gemm_blas<float>(a, b, out, static_cast<float>(alpha), static_cast<float>(beta));
    else gemm_blas<double>(a, b, out, alpha, beta);
    return {out};
  }
  if ((dt == DType::Float16 || dt == DType::BFloat16) && a.sizes()[1] > 0) {
    // Accumulate in float32 and round once, as PyTorch's 16-bit addmm/linear does.
    Tensor out32 = empty(out.sizes(), DType::Float32);
    if (beta != 0.0) detail::copy_data(out32, input);
    gemm_lowp_accumulate(a, b, out32, static_cast<float>(alpha), static_cast<float>(beta));  // linalg_lowp.cpp
    detail::copy_data(out, out32);
    return {out};
  }
  Tensor product = empty(out.sizes(), dt);
  gemm(a, b, product);
  if (alpha != 1.0) product = mul(product, Scalar(alpha));
  if (beta != 0.0) product = add(beta == 1.0 ? input : mul(input, Scalar(beta)), product);
  detail::copy_data(out, product);
  return {out};
}

}  // namespace

void register_linalg_kernels(Registry& r) {
  gemm::init_threads();  // BLAS libraries with their own pools follow loom's thread count
  r.set_kernel("mm", DeviceType::CPU, mm_kernel);
  r.set_kernel("bmm", DeviceType::CPU, bmm_kernel);
  r.set_kernel("addmm", DeviceType::CPU, addmm_kernel);
}

}  // namespace loom::cpu
