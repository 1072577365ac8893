// The runtime of the simulated device (loom::DeviceBackend, core/backend.h): two devices, their arenas, streams,
// events, copies and a pinned host pool.
#pragma once
#include <memory>

#include "device_memory.h"
#include "loom/core/backend.h"

namespace vdev {

inline constexpr int kDeviceCount = 2;

// The arena of a device index (valid after the backend is registered).
DeviceArena& arena(int device_index);
// The private address of a vdev device pointer (which arena it belongs to is found from the address).
void* to_private(const void* device_ptr);

std::unique_ptr<loom::DeviceBackend> make_backend(loom::DeviceType type);

}  // namespace vdev
