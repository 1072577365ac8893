// The entry point loom calls after the ABI check: register the device name, the runtime and the kernels.
#include "loom/autocast/autocast.h"
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
  // Mixed precision as on a GPU: CUDA's op lists, bfloat16 by default.
  std::vector<std::pair<std::string, loom::AutocastPolicy>> ops;
  for (const auto& [name, policy] : loom::autocast_op_list(loom::DeviceType::CUDA)) ops.emplace_back(name, policy);
  loom::register_autocast_device(type, loom::DType::BFloat16, ops);
}

}  // namespace

LOOM_BACKEND_PLUGIN(init_vdev)
