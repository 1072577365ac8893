// Op definitions of the sort family (see ops/sort.h).
#include "loom/ops/registry.h"

namespace loom {

void define_sort_ops(Registry& r) {}

}  // namespace loom
