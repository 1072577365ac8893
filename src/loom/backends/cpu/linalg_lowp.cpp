// 16-bit float matrix products: widen the operands to float32, one OpenBLAS sgemm, round the result once.
// Measured against the alternatives on this AMD EPYC (Zen 3: AVX2, no AVX512-BF16, no AMX), see
// docs/autocast.md: Debian's OpenBLAS 0.3.21 is built without cblas_sbgemm (no BUILD_BFLOAT16), and OpenBLAS's
// sbgemm has bf16 kernels only for Cooper Lake/Sapphire Rapids, using generic C code elsewhere; widening is
// O(n^2) work against the O(n^3) product, so float32 sgemm is the fastest path a CPU without bf16 FMA has.
// The widening/rounding go through to_dtype/copy_data, i.e. the vectorised dtype conversions of copy.cpp.
#include "loom/backends/cpu/linalg_lowp.h"

#include <algorithm>

#include <cblas.h>

#include "loom/ops/creation.h"
#include "loom/ops/shape.h"

namespace loom::cpu {

void gemm_lowp(const Tensor& a, const Tensor& b, Tensor& out) {
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
  Tensor out32 = empty(out.sizes(), DType::Float32);
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, n, m, k, 1.0f,
              a32.data<float>(), ta ? std::max<int64_t>(n, 1) : std::max<int64_t>(k, 1), b32.data<float>(),
              tb ? std::max<int64_t>(k, 1) : std::max<int64_t>(m, 1), 0.0f, out32.data<float>(),
              std::max<int64_t>(m, 1));
  detail::copy_data(out, out32);
}

}  // namespace loom::cpu
