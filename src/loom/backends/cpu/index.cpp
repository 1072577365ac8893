// CPU kernels of the index family.
#include "loom/ops/registry.h"

namespace loom::cpu {

void register_index_kernels(Registry& r) {}

}  // namespace loom::cpu
