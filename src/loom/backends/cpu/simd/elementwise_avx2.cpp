// The elementwise row kernels for AVX2 + FMA (this file is compiled with -mavx2 -mfma; see CMakeLists.txt).
#if defined(__x86_64__)
#include "loom/backends/cpu/simd/vec_avx2.h"
#include "loom/backends/cpu/simd/elementwise_impl.h"

namespace loom::cpu::avx2 {

const simd::ElementwiseKernels& elementwise_kernels() {
  static const simd::ElementwiseKernels table = simd::make_elementwise_kernels<Vec8f>();
  return table;
}

}  // namespace loom::cpu::avx2
#endif
