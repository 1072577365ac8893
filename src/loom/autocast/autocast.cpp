// Autocast: thread-local state per device type, the dispatcher mode that casts listed ops' inputs, the cast cache
// for leaf weights, and the guard that enables it.
#include "loom/autocast/autocast.h"

#include <mutex>
#include <unordered_map>

#include "loom/ops/registry.h"
#include "loom/ops/shape.h"

namespace loom {
namespace {

// Autocast is the composite hook's only user, so the hook's per-thread switches are autocast's.
using composite_hook::detail::t_enabled_count;
using composite_hook::detail::t_suspended;

struct CacheEntry {
  std::shared_ptr<TensorImpl> source;  // keeps the key's address from being reused while cached
  uint64_t version;
  Tensor cast;
};

struct State {
  bool enabled[kNumDeviceTypes] = {};
  // The dtype per device type once a region set it; until then the device's default (autocast_default_dtype), which
  // a backend registered after this thread started may provide.
  DType dtype[kNumDeviceTypes] = {};
  bool dtype_set[kNumDeviceTypes] = {};
  bool cache_enabled = true;
  int nesting = 0;
  bool mode_pushed = false;
  std::unordered_map<const TensorImpl*, CacheEntry> cache;
};

thread_local State t_state;

bool device_supported(DeviceType device) { return autocast_supported(device); }

DType current_dtype(DeviceType device) {
  const int d = static_cast<int>(device);
  return t_state.dtype_set[d] ? t_state.dtype[d] : autocast_default_dtype(device);
}

// Policies indexed by op id, computed once from the name tables (ops defined later fall back to a lookup).
AutocastPolicy policy_of(const OpDef& op, DeviceType device) {
  static std::once_flag once;
  static std::vector<AutocastPolicy> by_id[kNumDeviceTypes];
  std::call_once(once, [] {
    std::vector<std::string> names = Registry::instance().op_names();
    for (int d = 0; d < kNumDeviceTypes; ++d) {
      by_id[d].resize(names.size());
      for (size_t i = 0; i < names.size(); ++i) by_id[d][i] = autocast_policy(names[i], static_cast<DeviceType>(d));
    }
  });
  if (device != DeviceType::CPU && device != DeviceType::CUDA)
    return autocast_policy(op.name, device);  // registered later
  const auto& table = by_id[static_cast<int>(device)];
  if (op.id >= 0 && static_cast<size_t>(op.id) < table.size()) return table[op.id];
  return autocast_policy(op.name, device);
}

// PyTorch's is_eligible: a defined floating tensor on the autocast device; float64 is never touched.
bool eligible(const Tensor& t, DeviceType device) {
  return t.defined() && t.device().type == device && is_floating(t.dtype()) && t.dtype() != DType::Float64;
}

// Casts one input; low-precision copies of float32 leaves that require grad (weights) are cached for the
// outermost autocast region, so a weight used by many calls is converted once per step.
Tensor cast_to(const Tensor& t, DType target, DeviceType device) {
  if (!eligible(t, device) || t.dtype() == target) return t;
  State& s = t_state;
  bool cacheable = s.cache_enabled && target == current_dtype(device) && t.dtype() == DType::Float32 &&
                   grad_mode_enabled() && t.requires_grad() && t.is_leaf() && !t.is_view();
  if (!cacheable) return to_dtype(t, target);
  const TensorImpl* key = t.impl().get();
  auto it = s.cache.find(key);
  if (it != s.cache.end() && it->second.version == t.version() && it->second.cast.dtype() == target)
    return it->second.cast;
  Tensor cast = to_dtype(t, target);
  s.cache[key] = CacheEntry{t.impl(), t.version(), cast};
  return cast;
}

DType promote_target(const std::vector<Tensor>& inputs, DeviceType device) {
  DType lower = current_dtype(device);
  for (const Tensor& t : inputs)
    if (eligible(t, device) && t.dtype() == DType::Float32) return DType::Float32;
  return lower;
}

DType target_dtype(AutocastPolicy policy, DeviceType device, const std::vector<Tensor>& tensors) {
  switch (policy) {
    case AutocastPolicy::LowerPrecision: return current_dtype(device);
    case AutocastPolicy::Float32: return DType::Float32;
    case AutocastPolicy::Promote: return promote_target(tensors, device);
    case AutocastPolicy::None: break;
  }
  return DType::Float32;
}

// The device type of a call: that of its first defined input that is not a 0-d CPU number.
DeviceType call_device(const std::vector<Tensor>& inputs) {
  const Tensor* first = nullptr;
  for (const Tensor& t : inputs) {
    if (!t.defined()) continue;
    if (!first || (first->dim() == 0 && first->device().type == DeviceType::CPU)) first = &t;
  }
  return first ? first->device().type : DeviceType::CPU;
}

class AutocastMode final : public Mode {
 public:
  std::optional<std::vector<Tensor>> on_call(const OpDef& op, std::vector<Tensor>& inputs, Attrs& attrs) override {
    if (t_suspended == 0 && t_enabled_count > 0 && !inputs.empty()) {
      DeviceType device = call_device(inputs);
      if (t_state.enabled[static_cast<int>(device)]) {
        AutocastPolicy policy = policy_of(op, device);
        if (policy != AutocastPolicy::None) {
          DType target = target_dtype(policy, device, inputs);
          DType before = inputs[0].defined() ? inputs[0].dtype() : target;
          for (Tensor& t : inputs) t = cast_to(t, target, device);
          // Ops whose output dtype is an attribute (prod, sum) follow their cast input, as PyTorch's
          // fp32_set_opt_dtype policy does.
          if (inputs[0].defined() && inputs[0].dtype() != before && attrs.has("dtype")) {
            const DType* d = std::get_if<DType>(&attrs.get("dtype"));
            if (d && *d == before) attrs.set("dtype", inputs[0].dtype());
          }
        }
      }
    }
    // Always run the op here, with autocast off: the ops a kernel or composite issues itself are never cast
    // again, and outer modes still see the call.
    composite_hook::detail::Suspend suspend;
    return dispatch(op, std::move(inputs), std::move(attrs));
  }
};

AutocastMode g_mode;

void recount() {
  int n = 0;
  for (bool e : t_state.enabled) n += e;
  t_enabled_count = n;
}

}  // namespace

bool is_autocast_enabled(DeviceType device) { return t_state.enabled[static_cast<int>(device)]; }
DType get_autocast_dtype(DeviceType device) { return current_dtype(device); }
bool is_autocast_cache_enabled() { return t_state.cache_enabled; }
void clear_autocast_cache() { t_state.cache.clear(); }
size_t autocast_cache_size() { return t_state.cache.size(); }

AutocastGuard::AutocastGuard(DeviceType device, std::optional<DType> dtype, bool enabled,
                             std::optional<bool> cache_enabled)
    : device_(device) {
  LOOM_CHECK(device_supported(device), Value, "autocast: unsupported device_type '", device_type_name(device),
             "' (autocast has op lists for cpu, cuda and backends that registered them)");
  State& s = t_state;
  int d = static_cast<int>(device);
  DType target = dtype.value_or(current_dtype(device));
  if (enabled) {
    LOOM_CHECK(target == DType::BFloat16 || target == DType::Float16, Type, "autocast: ", device_type_name(device),
               " autocast supports only bfloat16 and float16, got dtype ", dtype_name(target));
  }
  prev_enabled_ = s.enabled[d];
  prev_dtype_ = s.dtype[d];
  prev_dtype_set_ = s.dtype_set[d];
  prev_cache_enabled_ = s.cache_enabled;
  s.enabled[d] = enabled;
  s.dtype[d] = target;
  s.dtype_set[d] = true;
  s.cache_enabled = cache_enabled.value_or(s.cache_enabled);
  ++s.nesting;
  recount();
  pushed_mode_ = enabled && !s.mode_pushed;
  if (pushed_mode_) {
    s.mode_pushed = true;
    mode_guard_ = std::make_unique<ModeGuard>(&g_mode);
  }
}

AutocastGuard::~AutocastGuard() {
  State& s = t_state;
  int d = static_cast<int>(device_);
  if (--s.nesting == 0) s.cache.clear();
  s.enabled[d] = prev_enabled_;
  s.dtype[d] = prev_dtype_;
  s.dtype_set[d] = prev_dtype_set_;
  s.cache_enabled = prev_cache_enabled_;
  recount();
  if (pushed_mode_) {
    mode_guard_.reset();
    s.mode_pushed = false;
  }
}

namespace {
// The composite hook: a LOOM_AUTOCAST_COMPOSITE call is cast like a registry op of the same name. begin runs with the
// call's own Suspend already counted, so t_suspended == 1 means "not nested in another handled call".
void composite_begin(std::string_view op_name, composite_hook::Call& call) {
  const DeviceType device = call.device;
  if (t_suspended != 1 || !device_supported(device) || !t_state.enabled[static_cast<int>(device)]) return;
  const AutocastPolicy policy = autocast_policy(op_name, device);
  call.policy = static_cast<uint8_t>(policy);
  if (policy == AutocastPolicy::LowerPrecision || policy == AutocastPolicy::Promote)
    call.target = current_dtype(device);
}

void composite_see(composite_hook::Call& call, const Tensor& t) {
  if (static_cast<AutocastPolicy>(call.policy) == AutocastPolicy::Promote && eligible(t, call.device) &&
      t.dtype() == DType::Float32)
    call.target = DType::Float32;
}

Tensor composite_cast(const composite_hook::Call& call, const Tensor& t) {
  return cast_to(t, call.target, call.device);
}

const composite_hook::Hook g_composite_hook{&composite_begin, &composite_see, &composite_cast};
}  // namespace

void install_autocast_composite_hook() { composite_hook::set_hook(&g_composite_hook); }

}  // namespace loom
