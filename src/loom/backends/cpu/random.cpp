// CPU kernels of the random family.
#include "loom/ops/registry.h"

namespace loom::cpu {

void register_random_kernels(Registry& r) {}

}  // namespace loom::cpu
