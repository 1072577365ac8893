// The composite hook: the seam through which a layer above ops (autocast) treats a C++ composite function as one op.
// PyTorch's autocast lists composites such as linear, matmul, conv2d and cross_entropy as single ops: their tensor
// arguments are cast once, by the op's policy, and the ops they issue themselves are not cast again. The ops layer
// only marks those functions (LOOM_AUTOCAST_COMPOSITE) and keeps the per-thread switches; what a call does to its
// arguments is the installed hook's (autocast/autocast.cpp installs it from init.cpp), so ops never include autocast.
#pragma once
#include <cstdint>
#include <string_view>
#include <type_traits>
#include <vector>

#include "loom/core/device.h"
#include "loom/core/dtype.h"
#include "loom/core/tensor.h"

namespace loom::composite_hook {

// One hooked call: filled by Hook::begin, read by see/cast. `policy` means what the hook says (autocast: its
// AutocastPolicy); 0 leaves the arguments alone.
struct Call {
  DeviceType device = DeviceType::CPU;
  uint8_t policy = 0;
  DType target = DType::Float32;
};

struct Hook {
  void (*begin)(std::string_view op_name, Call& call);  // decides for this call
  void (*see)(Call& call, const Tensor& t);             // sees every tensor argument before any is cast
  Tensor (*cast)(const Call& call, const Tensor& t);    // the argument the composite gets instead of t
};
// Installs the hook (once, at initialisation; the hook must outlive every call).
void set_hook(const Hook* hook);

namespace detail {
// How many reasons this thread has to hook composites (autocast: device types with autocast on), and how deep it is
// inside a region where hooking is off (inside a hooked composite, or a kernel the hook's mode already handled).
extern thread_local int t_enabled_count;
extern thread_local int t_suspended;
const Hook* hook();

// Switches hooking off on this thread while it lives.
struct Suspend {
  Suspend() { ++t_suspended; }
  ~Suspend() { --t_suspended; }
  Suspend(const Suspend&) = delete;
  Suspend& operator=(const Suspend&) = delete;
};

// One composite call: asks the hook, and switches hooking off for the ops the composite issues itself (as PyTorch's
// autocast wrappers exclude the autocast key around the redispatch).
class Scope {
 public:
  Scope(std::string_view op_name, DeviceType device);
  void see(const Tensor& t);
  Tensor cast(const Tensor& t) const;

 private:
  Suspend suspend_;
  const Hook* hook_;
  Call call_;
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
void see_arg(Scope& scope, const T& arg) {
  if constexpr (std::is_same_v<std::decay_t<T>, Tensor>) {
    scope.see(arg);
  } else if constexpr (std::is_same_v<std::decay_t<T>, std::vector<Tensor>>) {
    for (const Tensor& t : arg) scope.see(t);
  }
}

template <class T>
decltype(auto) cast_arg(const Scope& scope, const T& arg) {
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

// True when the hook is on for this thread and not switched off (cheap: two thread-local reads).
inline bool active() { return detail::t_enabled_count > 0 && detail::t_suspended == 0; }

// Runs fn(args...) as the composite op `op_name`: tensor arguments (and vectors of tensors) go through the hook,
// which is off for the ops fn calls. Use through LOOM_AUTOCAST_COMPOSITE.
template <class Fn, class... Args>
auto call(std::string_view op_name, Fn&& fn, const Args&... args) {
  const Tensor* first = detail::first_tensor(args...);
  detail::Scope scope(op_name, first ? first->device().type : DeviceType::CPU);
  (detail::see_arg(scope, args), ...);
  return fn(detail::cast_arg(scope, args)...);
}

}  // namespace loom::composite_hook

// First line of a C++ composite function that PyTorch's autocast lists as one op (linear, matmul, conv2d,
// cross_entropy...): under autocast the call re-enters itself with cast arguments and autocast off inside, so
// its inner ops (mm, add, log_softmax) are not cast again. Costs one thread-local read when autocast is off.
#define LOOM_AUTOCAST_COMPOSITE(op_name, fn, ...)                                                                \
  do {                                                                                                           \
    if (::loom::composite_hook::active())                                                                        \
      return ::loom::composite_hook::call(                                                                       \
          op_name, [&](const auto&... loom_composite_args) { return fn(loom_composite_args...); }, __VA_ARGS__); \
  } while (0)
