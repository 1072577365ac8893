// Op definitions of the random family (see ops/random.h).
#include "loom/ops/registry.h"

namespace loom {

void define_random_ops(Registry& r) {}

}  // namespace loom
