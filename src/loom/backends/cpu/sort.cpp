// CPU kernels of the sort family.
#include "loom/ops/registry.h"

namespace loom::cpu {

void register_sort_kernels(Registry& r) {}

}  // namespace loom::cpu
