// Automatic mixed precision (torch.autocast): a dispatcher mode that casts the inputs of listed ops to a lower
// precision (matmul, linear, conv -> bfloat16) or to float32 (losses, prod), per device type, with PyTorch's
// op lists. The casts are ordinary to_dtype calls, so autograd records them and gradients reach float32 leaves
// in float32. The same mode and tables serve every device type; only the lists differ (see tables.cpp).
#pragma once
#include <memory>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "loom/core/device.h"
#include "loom/core/dtype.h"
#include "loom/core/tensor.h"
// LOOM_AUTOCAST_COMPOSITE, which ops use without including this header.
#include "loom/ops/composite_hook.h"

namespace loom {

class ModeGuard;

// What autocast does to the floating-point inputs of an op (PyTorch's CastPolicy).
enum class AutocastPolicy : uint8_t {
  None,            // not listed: inputs untouched
  LowerPrecision,  // cast float32 inputs to the autocast dtype (bfloat16/float16); float64 is left alone
  Float32,         // cast bfloat16/float16 inputs to float32
  Promote,         // cast to the widest floating type among the inputs (float32 wins over the autocast dtype)
};
const char* autocast_policy_name(AutocastPolicy policy);

// The policy of an op name on a device type; op names are PyTorch's (and loom's: they are the same strings).
AutocastPolicy autocast_policy(std::string_view op_name, DeviceType device);
// Every op name listed for a device type with a policy other than None (for docs and tests).
std::vector<std::pair<std::string_view, AutocastPolicy>> autocast_op_list(DeviceType device);

// Autocast for a backend's device type: its op list (op names and policies) and its default lower-precision dtype
// (bfloat16 or float16). CPU and CUDA come with PyTorch's lists; any other backend registers its own, once (a GPU
// backend may start from autocast_op_list(DeviceType::CUDA)). Until then autocast refuses the device type.
void register_autocast_device(DeviceType device, DType default_dtype,
                              const std::vector<std::pair<std::string, AutocastPolicy>>& ops);
// Whether autocast has op lists for the device type (CPU, CUDA, or registered).
bool autocast_supported(DeviceType device);
// The default lower-precision dtype of a device type (bfloat16 on CPU, float16 on CUDA, a plugin's registered one).
DType autocast_default_dtype(DeviceType device);

// Thread-local state, as torch.is_autocast_enabled / get_autocast_dtype / set_autocast_cache_enabled.
bool is_autocast_enabled(DeviceType device = DeviceType::CPU);
DType get_autocast_dtype(DeviceType device = DeviceType::CPU);
bool is_autocast_cache_enabled();
// Drops the cached low-precision copies of leaf weights (done when the outermost autocast region exits).
void clear_autocast_cache();
// How many casts the cache holds / has served (tests, debugging).
size_t autocast_cache_size();

// Enables (or, with enabled=false, disables) autocast for one device type while it lives; nests like
// torch.autocast. dtype defaults to the current autocast dtype of the device (bfloat16 on CPU, float16 on CUDA);
// cache_enabled defaults to the current cache setting. On CPU only bfloat16 and float16 are accepted
// (TypeError otherwise; PyTorch warns and disables instead).
class AutocastGuard {
 public:
  explicit AutocastGuard(DeviceType device, std::optional<DType> dtype = std::nullopt, bool enabled = true,
                         std::optional<bool> cache_enabled = std::nullopt);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  DeviceType device_;
  bool prev_enabled_;
  DType prev_dtype_;
  bool prev_dtype_set_;
  bool prev_cache_enabled_;
  bool pushed_mode_;
  std::unique_ptr<ModeGuard> mode_guard_;
};

// Installs autocast's composite hook (ops/composite_hook.h): how a LOOM_AUTOCAST_COMPOSITE function casts its
// arguments. Called once from loom/init.cpp.
void install_autocast_composite_hook();

}  // namespace loom
