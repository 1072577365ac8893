// Automatic mixed precision (torch.autocast): a dispatcher mode that casts the inputs of listed ops to a lower
// precision (matmul, linear, conv -> bfloat16) or to float32 (losses, prod), per device type, with PyTorch's
// op lists. The casts are ordinary to_dtype calls, so autograd records them and gradients reach float32 leaves
// in float32. The same mode and tables serve every device type; only the lists differ (see tables.cpp).
#pragma once
#include <memory>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "loom/core/device.h"
#include "loom/core/dtype.h"
#include "loom/core/tensor.h"

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

namespace autocast {

namespace detail {
// Number of device types with autocast enabled on this thread, and how deep this thread is inside a region
// where autocast is switched off (a composite or a kernel that autocast already handled).
extern thread_local int t_enabled_count;
extern thread_local int t_suspended;

// Switches autocast off on this thread while it lives (ops called inside autocast's own redispatch).
struct Suspend {
  Suspend() { ++t_suspended; }
  ~Suspend() { --t_suspended; }
  Suspend(const Suspend&) = delete;
  Suspend& operator=(const Suspend&) = delete;
};

// Casts the tensors of one composite call per its policy and switches autocast off for the ops the composite
// issues itself (as PyTorch's autocast wrappers exclude the autocast key around the redispatch).
class CompositeScope {
 public:
  CompositeScope(std::string_view op_name, DeviceType device);
  ~CompositeScope();
  CompositeScope(const CompositeScope&) = delete;
  CompositeScope& operator=(const CompositeScope&) = delete;
  // The widest floating dtype among eligible tensors (Promote policy); call before cast().
  void see(const Tensor& t);
  Tensor cast(const Tensor& t) const;

 private:
  DeviceType device_;
  AutocastPolicy policy_ = AutocastPolicy::None;
  DType target_ = DType::Float32;
  bool enabled_ = false;
  Suspend suspend_;
};

inline const Tensor* first_tensor() { return nullptr; }
template <class T, class... Rest>
const Tensor* first_tensor(const T& arg, const Rest&... rest) {
  if constexpr (std::is_same_v<std::decay_t<T>, Tensor>) {
    if (arg.defined()) return &arg;
  } else if constexpr (std::is_same_v<std::decay_t<T>, std::vector<Tensor>>) {
    for (const Tensor& t : arg)
      if (t.defined()) return &t;
  }
  return first_tensor(rest...);
}

template <class T>
void see_arg(CompositeScope& scope, const T& arg) {
  if constexpr (std::is_same_v<std::decay_t<T>, Tensor>) {
    scope.see(arg);
  } else if constexpr (std::is_same_v<std::decay_t<T>, std::vector<Tensor>>) {
    for (const Tensor& t : arg) scope.see(t);
  }
}

template <class T>
decltype(auto) cast_arg(const CompositeScope& scope, const T& arg) {
  if constexpr (std::is_same_v<std::decay_t<T>, Tensor>) {
    return scope.cast(arg);
  } else if constexpr (std::is_same_v<std::decay_t<T>, std::vector<Tensor>>) {
    std::vector<Tensor> out;
    out.reserve(arg.size());
    for (const Tensor& t : arg) out.push_back(scope.cast(t));
    return out;
  } else {
    return (arg);  // non-tensor arguments pass through by reference
  }
}
}  // namespace detail

// True when autocast is enabled for some device type on this thread and not switched off by a composite or
// kernel that autocast already handled (cheap: two thread-local reads).
inline bool any_enabled() { return detail::t_enabled_count > 0 && detail::t_suspended == 0; }

// Runs fn(args...) as the composite op `op_name`: tensor arguments (and vectors of tensors) are cast per the
// op's policy, and autocast is off for the ops fn calls. Use through LOOM_AUTOCAST_COMPOSITE.
template <class Fn, class... Args>
auto call_composite(std::string_view op_name, Fn&& fn, const Args&... args) {
  const Tensor* first = detail::first_tensor(args...);
  detail::CompositeScope scope(op_name, first ? first->device().type : DeviceType::CPU);
  (detail::see_arg(scope, args), ...);
  return fn(detail::cast_arg(scope, args)...);
}

}  // namespace autocast
}  // namespace loom

// First line of a C++ composite function that PyTorch's autocast lists as one op (linear, matmul, conv2d,
// cross_entropy...): under autocast the call re-enters itself with cast arguments and autocast off inside, so
// its inner ops (mm, add, log_softmax) are not cast again. Costs one thread-local read when autocast is off.
#define LOOM_AUTOCAST_COMPOSITE(op_name, fn, ...)                                                              \
  do {                                                                                                         \
    if (::loom::autocast::any_enabled())                                                                       \
      return ::loom::autocast::call_composite(                                                                 \
          op_name, [&](const auto&... loom_autocast_args) { return fn(loom_autocast_args...); }, __VA_ARGS__); \
  } while (0)
