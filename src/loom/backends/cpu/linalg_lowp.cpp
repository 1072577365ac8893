// 16-bit float matrix products. bfloat16 on CPUs with bf16 instructions (AVX512_BF16, AMX-BF16): oneDNN's
// matmul primitive on the operands in place (gemm/engine.h). Everywhere else, and for float16: widen the
// operands to float32, one sgemm, round the result once — Debian's OpenBLAS 0.3.21 has no cblas_sbgemm, and
// widening is O(n^2) work against the O(n^3) product, so float32 sgemm is the fastest path a CPU without bf16
// FMA has (docs/autocast.md, docs/dependencies.md). The widening/rounding go through to_dtype/copy_data, i.e.
// the vectorised dtype conversions of copy.cpp.
#include "loom/backends/cpu/linalg_lowp.h"

#include <algorithm>

#include "loom/backends/cpu/gemm/engine.h"
#include "loom/ops/creation.h"
#include "loom/ops/shape.h"

namespace loom::cpu {

namespace {

// c (n x m, dtype c_type, contiguous) = alpha * a @ b + beta * c on bf16 hardware; false when not available.
bool gemm_bf16_native(const Tensor& a, const Tensor& b, void* c, DType c_type, float alpha, float beta) {
  if (a.dtype() != DType::BFloat16 || !gemm::native_bf16()) return false;
  int64_t n = a.sizes()[0], k = a.sizes()[1], m = b.sizes()[1];
  BlasMatrix A = as_blas(a), B = as_blas(b);
  return gemm::gemm_bf16(A.transposed, B.transposed, n, m, k, alpha, A.data.data<uint16_t>(), A.ld,
                         B.data.data<uint16_t>(), B.ld, beta, c_type, c, std::max<int64_t>(m, 1));
}

// out32 = alpha * a @ b + beta * out32 through float32 sgemm.
void gemm_widened(const Tensor& a, const Tensor& b, Tensor& out32, float alpha, float beta) {
  int64_t n = a.sizes()[0], k = a.sizes()[1], m = b.sizes()[1];
  // Operands that are transposed views stay transposed (BLAS reads them with Trans) rather than being copied
  // into row-major order by the conversion.
  auto widen = [](const Tensor& t, bool& transposed) {
    transposed = t.strides()[0] == 1 && t.strides()[1] != 1 && t.sizes()[0] > 1;
    Tensor src = transposed ? loom::t(t) : t;
    return to_dtype(src, DType::Float32);  // contiguous float32
  };
  bool ta = false, tb = false;
  Tensor a32 = widen(a, ta), b32 = widen(b, tb);
  gemm::sgemm(ta, tb, n, m, k, alpha, a32.data<float>(), ta ? std::max<int64_t>(n, 1) : std::max<int64_t>(k, 1),
              b32.data<float>(), tb ? std::max<int64_t>(k, 1) : std::max<int64_t>(m, 1), beta, out32.data<float>(),
              std::max<int64_t>(m, 1));
}

}  // namespace

void gemm_lowp(const Tensor& a, const Tensor& b, Tensor& out) {
  if (gemm_bf16_native(a, b, out.data<uint16_t>(), DType::BFloat16, 1.0f, 0.0f)) return;
  Tensor out32 = empty(out.sizes(), DType::Float32);
  gemm_widened(a, b, out32, 1.0f, 0.0f);
  detail::copy_data(out, out32);
}

void gemm_lowp_accumulate(const Tensor& a, const Tensor& b, Tensor& out32, float alpha, float beta) {
  if (gemm_bf16_native(a, b, out32.data<float>(), DType::Float32, alpha, beta)) return;
  gemm_widened(a, b, out32, alpha, beta);
}

}  // namespace loom::cpu
