// The entry point loom calls after the ABI check (loom/backends/plugin.h): the CUDA backend is loaded exactly as a
// vendor's plugin is. It takes CUDA's device-type slot, registers its runtime and kernels even when no GPU is usable
// (is_available() then answers false, and tensors cannot be created on it), and relies on loom's built-in CUDA
// autocast lists (autocast_op_list(DeviceType::CUDA)).
#include "loom/backends/plugin.h"

#include "kernels.h"
#include "runtime.h"

namespace {

void init_cuda() {
  const loom::DeviceType type = loom::register_device_type("cuda");
  loom::register_backend(type, loom_cuda::make_backend());
  loom_cuda::register_kernels(type);
}

}  // namespace

LOOM_BACKEND_PLUGIN(init_cuda)
