// CPU kernels of the loss family.
#include "loom/ops/registry.h"

namespace loom::cpu {

void register_loss_kernels(Registry& r) {}

}  // namespace loom::cpu
