// Op definitions of the nn family (see ops/nn.h).
#include "loom/ops/registry.h"

namespace loom {

void define_nn_ops(Registry& r) {}

}  // namespace loom
