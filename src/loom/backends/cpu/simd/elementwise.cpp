// Picks the elementwise kernel table of a capability (simd/elementwise.h). Baseline code: the tables live in
// files compiled for their instruction sets and are only reached here after the CPU check.
#include "loom/backends/cpu/simd/elementwise.h"

namespace loom::cpu {
#if defined(__x86_64__)
namespace avx2 {
const simd::ElementwiseKernels& elementwise_kernels();
}
namespace avx512 {
const simd::ElementwiseKernels& elementwise_kernels();
}
#endif

namespace simd {

const ElementwiseKernels* elementwise_kernels(CpuCapability capability) {
#if defined(__x86_64__)
  if (capability > detected_cpu_capability()) return nullptr;
  if (capability == CpuCapability::Avx512) return &avx512::elementwise_kernels();
  if (capability == CpuCapability::Avx2) return &avx2::elementwise_kernels();
#endif
  return nullptr;
}

}  // namespace simd
}  // namespace loom::cpu
