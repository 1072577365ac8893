// CPU kernels of the nn family.
#include "loom/ops/registry.h"

namespace loom::cpu {

void register_nn_kernels(Registry& r) {}

}  // namespace loom::cpu
