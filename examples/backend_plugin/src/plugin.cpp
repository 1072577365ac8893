// The entry point loom calls after the ABI check: register the device name, the runtime and the kernels.
#include "loom/backends/plugin.h"

#include "kernels.h"
#include "vdev_backend.h"

#ifdef VDEV_WRONG_ABI  // tests: a plugin built for another loom, which must be refused before any of its code runs
#undef LOOM_BACKEND_ABI_VERSION
#define LOOM_BACKEND_ABI_VERSION 9999
#endif

namespace {

void init_vdev() {
  const loom::DeviceType type = loom::register_device_type("vdev");
  loom::register_backend(type, vdev::make_backend(type));
  vdev::register_kernels(type);
}

}  // namespace

LOOM_BACKEND_PLUGIN(init_vdev)
