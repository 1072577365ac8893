// The elementwise row kernels for AVX-512 F/BW/DQ/VL (this file is compiled with those flags; see
// CMakeLists.txt).
#if defined(__x86_64__)
#include "loom/backends/cpu/simd/vec_avx512.h"
#include "loom/backends/cpu/simd/elementwise_impl.h"

namespace loom::cpu::avx512 {

const simd::ElementwiseKernels& elementwise_kernels() {
  static const simd::ElementwiseKernels table = simd::make_elementwise_kernels<Vec16f>();
  return table;
}

}  // namespace loom::cpu::avx512
#endif
