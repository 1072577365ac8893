// The composite hook's per-thread switches and the installed hook (see composite_hook.h).
#include "loom/ops/composite_hook.h"

#include <atomic>

#include "loom/core/error.h"

namespace loom::composite_hook {

namespace {
std::atomic<const Hook*> g_hook{nullptr};
}  // namespace

void set_hook(const Hook* hook) { g_hook.store(hook, std::memory_order_release); }

namespace detail {
thread_local int t_enabled_count = 0;
thread_local int t_suspended = 0;

const Hook* hook() { return g_hook.load(std::memory_order_acquire); }

Scope::Scope(std::string_view op_name, DeviceType device) : hook_(hook()) {
  call_.device = device;
  LOOM_CHECK(hook_ != nullptr, Runtime, op_name, ": composite hook switched on with no hook installed");
  hook_->begin(op_name, call_);
}

void Scope::see(const Tensor& t) { hook_->see(call_, t); }

Tensor Scope::cast(const Tensor& t) const { return call_.policy == 0 ? t : hook_->cast(call_, t); }

}  // namespace detail
}  // namespace loom::composite_hook
