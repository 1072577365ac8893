// The op registry: every op has one OpDef (name, shape/dtype inference, backward, optional composite) and
// per-device kernels. Every call goes through dispatch(): validate/infer -> modes -> kernel -> autograd.
#pragma once
#include <atomic>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "loom/core/backend.h"
#include "loom/core/device.h"
#include "loom/core/error.h"
#include "loom/core/scalar.h"
#include "loom/core/tensor.h"

namespace loom {

// An attribute: the non-tensor arguments of an op (dims, alphas, flags, dtypes...).
using AttrValue =
    std::variant<std::monostate, bool, int64_t, double, Scalar, std::vector<int64_t>, DType, Device, std::string>;

class Attrs {
 public:
  Attrs() = default;
  // Names are expected to be string literals (they are stored as views).
  Attrs& set(std::string_view name, AttrValue value) &;
  // On a temporary (dispatch1(op, inputs, Attrs().set(...))): moves instead of copying the attributes.
  Attrs&& set(std::string_view name, AttrValue value) && { return std::move(set(name, std::move(value))); }
  bool has(std::string_view name) const;
  const AttrValue& get(std::string_view name) const;
  template <class T>
  const T& get(std::string_view name) const {
    const AttrValue& v = get(name);
    const T* p = std::get_if<T>(&v);
    if (!p) fail(ErrorKind::Runtime, "attrs: attribute '", name, "' has an unexpected type");
    return *p;
  }
  template <class T>
  T get_or(std::string_view name, T fallback) const {
    return has(name) ? get<T>(name) : fallback;
  }
  const std::vector<std::pair<std::string_view, AttrValue>>& items() const { return items_; }

 private:
  std::vector<std::pair<std::string_view, AttrValue>> items_;
};

// What an op's output will look like, known before any kernel runs.
struct TensorMeta {
  Shape sizes;
  DType dtype = DType::Float32;
  Device device;
};

struct OpDef;

struct KernelContext {
  const std::vector<Tensor>& inputs;
  const Attrs& attrs;
  const std::vector<TensorMeta>& outputs;
  Device device;  // with a concrete index; the dispatcher has made it the current device
  // Output 0 given by the caller (dispatch_into: the self of an in-place op), undefined otherwise. Kernels
  // registered with `writes_out` get it from alloc(0) and must write there, whatever its strides.
  Tensor out = {};
  // The stream the kernel's work goes on: the calling thread's current stream of `device` (stream 0 on the CPU).
  Stream stream = {};
  // The op being run, so one generic kernel can serve many ops (a plugin's offload kernel, the CPU fallback).
  const OpDef* op = nullptr;
  // A fresh contiguous tensor for output i, as inferred (output 0: `out` when given).
  Tensor alloc(size_t i) const;
};

struct BackwardContext {
  const Attrs& attrs;
  std::vector<Tensor> inputs;   // saved inputs (undefined where the op does not save them)
  std::vector<Tensor> outputs;  // saved outputs (undefined unless the op saves outputs)
  std::vector<Tensor> grads;    // gradient w.r.t. each output; undefined when none flowed
  std::vector<TensorMeta> input_meta;
  std::vector<TensorMeta> output_meta;
  std::vector<bool> needs_input_grad;
  // Gradient w.r.t. output i, zeros when none flowed.
  Tensor grad(size_t i = 0) const;
};

using InferFn = std::vector<TensorMeta> (*)(const std::vector<Tensor>& inputs, const Attrs& attrs);
using KernelFn = std::vector<Tensor> (*)(const KernelContext& ctx);
// Returns one gradient per input (undefined where the input needs none), written in loom ops.
using BackwardFn = std::vector<Tensor> (*)(BackwardContext& ctx);
// An implementation in terms of other ops; used when no kernel is registered for the device.
using CompositeFn = std::vector<Tensor> (*)(const std::vector<Tensor>& inputs, const Attrs& attrs);

struct OpDef {
  std::string name;
  InferFn infer = nullptr;
  BackwardFn backward = nullptr;
  CompositeFn composite = nullptr;
  uint64_t saved_inputs = ~0ull;  // bit i set: backward needs input i
  bool saves_outputs = false;     // backward needs the outputs
  uint64_t nondiff_inputs = 0;    // bit i set: input i never receives a gradient (indices, masks)
  bool is_view = false;           // outputs alias input 0's storage
  bool mutates_inputs = false;    // the kernel writes into inputs (copy: its destination; fused optimizer updates)
  int id = -1;
  // Per device type: the kernel (null: none); bit d of out_kernels: kernels[d] writes output 0 into
  // KernelContext::out when given (dispatch_into); bit d of masked_kernels: tests masked it
  // (Registry::set_kernel_masked). Accessed atomically (std::atomic_ref), because a plugin may register kernels while
  // other threads dispatch: read them through kernel() and writes_out(), write them through the Registry.
  KernelFn kernels[kNumDeviceTypes] = {};
  uint32_t out_kernels = 0;
  uint32_t masked_kernels = 0;

  // The kernel that runs for `type`: its own, else the device-independent (Any) one; nullptr when neither exists or
  // the kernel is masked. Composites and the CPU fallback are not kernels.
  KernelFn kernel(DeviceType type) const;
  // The kernel registered for exactly `type` (Any included), ignoring masks; nullptr when none.
  KernelFn own_kernel(DeviceType type) const;
  bool writes_out(DeviceType type) const;
};

class Registry {
 public:
  // The process-wide registry, filled with loom's ops and built-in backends on first use.
  static Registry& instance();

  OpDef& define(OpDef def);
  const OpDef* find(std::string_view name) const;
  const OpDef& op(std::string_view name) const;  // raises NotImplementedError for an unknown name
  // DeviceType::Any registers a device-independent kernel (views, metadata-only ops).
  // writes_out: the kernel honours KernelContext::out (elementwise kernels: it may alias an input exactly).
  void set_kernel(std::string_view op_name, DeviceType device, KernelFn kernel, bool writes_out = false);
  std::vector<std::string> op_names() const;

  // For tests of composites: while masked, the op's own kernel for `device` is ignored (has_kernel() is false and
  // dispatch takes the composite), as on a backend that lacks it.
  void set_kernel_masked(std::string_view op_name, DeviceType device, bool masked);

  // The explicit bring-up fallback for a device type (off by default): an op with neither a kernel for the device
  // nor a composite runs on the CPU, its inputs copied to the host and its outputs (and inputs it wrote) copied back,
  // with a warning the first time each op does so.
  void set_cpu_fallback(DeviceType device, bool enabled);
  bool cpu_fallback(DeviceType device) const;

 private:
  Registry() = default;
  mutable std::shared_mutex mutex_;  // guards ops_ (define may run while other threads look ops up)
  std::vector<std::unique_ptr<OpDef>> ops_;
  std::atomic<uint32_t> cpu_fallback_{0};
};

// Whether `op` has a kernel (own or device-independent) for the device: the question every choice between a fused op
// and its composite asks, so a backend without the fused kernel gets the composite instead of an error.
bool has_kernel(const OpDef& op, Device device);

// Where the dispatcher's warnings go (the CPU fallback's); Python routes them to warnings.warn.
using WarningHandler = void (*)(const std::string& message);
void set_warning_handler(WarningHandler handler);
void warn(const std::string& message);

// A mode sees every op call before its kernel runs (autocast, tracing, quantization hook in here).
// Modes form a thread-local stack; the innermost runs first.
class Mode {
 public:
  virtual ~Mode() = default;
  // May rewrite the inputs/attrs, or return outputs to use instead of running the op.
  virtual std::optional<std::vector<Tensor>> on_call(const OpDef& op, std::vector<Tensor>& inputs, Attrs& attrs) = 0;
};
// Pushes a mode for the guard's lifetime.
class ModeGuard {
 public:
  explicit ModeGuard(Mode* mode);
  ~ModeGuard();
  ModeGuard(const ModeGuard&) = delete;
  ModeGuard& operator=(const ModeGuard&) = delete;
};

std::vector<Tensor> dispatch(const OpDef& op, std::vector<Tensor> inputs, Attrs attrs = {});
Tensor dispatch1(const OpDef& op, std::vector<Tensor> inputs, Attrs attrs = {});
// Runs a single-output op writing its result straight into `out` (in-place ops without a graph: x.add_(y)).
// Validates like dispatch(); returns false, having done nothing, when it cannot: a mode is active, the
// device's kernel does not write into a given output, or the inferred size/dtype differs from out's. The caller
// then runs the op out of place. Records no autograd node and does not bump out's version: the caller must only
// use it when no graph is needed, and ensure out overlaps no input except by being that very tensor.
bool dispatch_into(const OpDef& op, std::vector<Tensor> inputs, const Tensor& out, Attrs attrs = {});

// The autograd layer installs this so the dispatcher records graph nodes without depending on autograd.
using AutogradRecorder = void (*)(const OpDef& op, const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs,
                                  const Attrs& attrs);
void set_autograd_recorder(AutogradRecorder recorder);
// Autograd's part of an in-place write (detail::commit_inplace in ops/shape.cpp), installed with the recorder for the
// same reason: before the write, protect_saved keeps saved tensors that alias `self` valid for their backward; after
// it, adopt_history gives `self` the autograd history of the value written into it.
struct InplaceAutogradHooks {
  void (*protect_saved)(const Tensor& value, const Tensor& self) = nullptr;
  void (*adopt_history)(const Tensor& self, const Tensor& source) = nullptr;
};
void set_inplace_autograd_hooks(InplaceAutogradHooks hooks);
const InplaceAutogradHooks& inplace_autograd_hooks();
bool grad_mode_enabled();
void set_grad_mode_enabled(bool enabled);

// Looks an op up once per call site: LOOM_OP("add") -> const OpDef&.
#define LOOM_OP(name)                                                           \
  ([]() -> const ::loom::OpDef& {                                               \
    static const ::loom::OpDef& op_def = ::loom::Registry::instance().op(name); \
    return op_def;                                                              \
  }())

namespace detail {
// Defined in loom/init.cpp: defines every op family and registers the built-in backends.
void initialize_registry(Registry& registry);
}  // namespace detail

}  // namespace loom
