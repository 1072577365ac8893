// Op definitions of the index family (see ops/index.h).
#include "loom/ops/registry.h"

namespace loom {

void define_index_ops(Registry& r) {}

}  // namespace loom
