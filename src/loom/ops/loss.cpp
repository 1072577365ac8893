// Op definitions of the loss family (see ops/loss.h).
#include "loom/ops/registry.h"

namespace loom {

void define_loss_ops(Registry& r) {}

}  // namespace loom
