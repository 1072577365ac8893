// Kernel registration of the simulated device.
#pragma once
#include <string>
#include <vector>

#include "loom/core/device.h"

namespace vdev {

void register_kernels(loom::DeviceType type);
// The ops this backend has kernels for.
std::vector<std::string> claimed_ops();

}  // namespace vdev
