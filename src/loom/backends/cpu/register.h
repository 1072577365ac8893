// Registers the CPU backend's kernels (called once by the registry's initialisation).
#pragma once
#include "loom/ops/registry.h"

namespace loom::cpu {
void register_cpu_backend(Registry& registry);
}
