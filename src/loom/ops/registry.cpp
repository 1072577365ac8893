#include "loom/ops/registry.h"

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <set>

#include "loom/core/backend.h"

namespace loom {

// ---- Attrs ----

Attrs& Attrs::set(std::string_view name, AttrValue value) & {
  for (auto& [key, v] : items_)
    if (key == name) {
      v = std::move(value);
      return *this;
    }
  items_.emplace_back(name, std::move(value));
  return *this;
}

bool Attrs::has(std::string_view name) const {
  return std::any_of(items_.begin(), items_.end(), [&](const auto& kv) { return kv.first == name; });
}

const AttrValue& Attrs::get(std::string_view name) const {
  for (const auto& [key, v] : items_)
    if (key == name) return v;
  fail(ErrorKind::Runtime, "attrs: missing attribute '", name, "'");
}

// ---- contexts ----

Tensor KernelContext::alloc(size_t i) const {
  if (i == 0 && out.defined()) return out;
  return Tensor::empty(outputs[i].sizes, outputs[i].dtype, device);
}

// ---- registry ----

Registry& Registry::instance() {
  static Registry* registry = [] {
    auto* r = new Registry();  // never destroyed: kernels may run during static destruction elsewhere
    detail::initialize_registry(*r);
    return r;
  }();
  return *registry;
}

namespace {
// The kernel table is written while other threads may read it (a plugin loading during training).
template <class T>
T load_slot(const T& slot) {
  return std::atomic_ref<T>(const_cast<T&>(slot)).load(std::memory_order_acquire);
}
template <class T>
void store_slot(T& slot, T value) {
  std::atomic_ref<T>(slot).store(value, std::memory_order_release);
}
}  // namespace

KernelFn OpDef::kernel(DeviceType type) const {
  const int d = static_cast<int>(type);
  if (!(load_slot(masked_kernels) & (1u << d))) {
    if (KernelFn own = load_slot(kernels[d])) return own;
  }
  return load_slot(kernels[static_cast<int>(DeviceType::Any)]);
}

KernelFn OpDef::own_kernel(DeviceType type) const { return load_slot(kernels[static_cast<int>(type)]); }

bool OpDef::writes_out(DeviceType type) const {
  const int d = static_cast<int>(type);
  return load_slot(kernels[d]) != nullptr && !(load_slot(masked_kernels) & (1u << d)) &&
         (load_slot(out_kernels) & (1u << d));
}

OpDef& Registry::define(OpDef def) {
  LOOM_CHECK(def.infer != nullptr, Runtime, "registry: op '", def.name, "' has no infer function");
  std::unique_lock lock(mutex_);
  for (const auto& op : ops_)
    LOOM_CHECK(op->name != def.name, Runtime, "registry: op '", def.name, "' is defined twice");
  def.id = static_cast<int>(ops_.size());
  ops_.push_back(std::make_unique<OpDef>(std::move(def)));
  return *ops_.back();
}

const OpDef* Registry::find(std::string_view name) const {
  std::shared_lock lock(mutex_);
  for (const auto& op : ops_)
    if (op->name == name) return op.get();
  return nullptr;
}

const OpDef& Registry::op(std::string_view name) const {
  const OpDef* op = find(name);
  LOOM_CHECK(op != nullptr, NotImplemented, "registry: no op named '", name, "'");
  return *op;
}

void Registry::set_kernel(std::string_view op_name, DeviceType device, KernelFn kernel, bool writes_out) {
  const OpDef* op = find(op_name);
  LOOM_CHECK(op != nullptr, Runtime, "registry: cannot register a kernel for unknown op '", op_name, "'");
  OpDef* def = const_cast<OpDef*>(op);
  const uint32_t bit = 1u << static_cast<int>(device);
  // Under the lock so two registrations of one op's flags do not interleave; readers go lock-free.
  std::unique_lock lock(mutex_);
  const uint32_t flags = load_slot(def->out_kernels);
  store_slot(def->out_kernels, writes_out ? (flags | bit) : (flags & ~bit));
  store_slot(def->kernels[static_cast<int>(device)], kernel);
}

void Registry::set_kernel_masked(std::string_view op_name, DeviceType device, bool masked) {
  OpDef* def = const_cast<OpDef*>(&op(op_name));
  const uint32_t bit = 1u << static_cast<int>(device);
  std::unique_lock lock(mutex_);
  const uint32_t flags = load_slot(def->masked_kernels);
  store_slot(def->masked_kernels, masked ? (flags | bit) : (flags & ~bit));
}

void Registry::set_cpu_fallback(DeviceType device, bool enabled) {
  LOOM_CHECK(device != DeviceType::CPU && device != DeviceType::Any, Value,
             "set_cpu_fallback: the fallback is for devices other than the CPU, got '", device_type_name(device), "'");
  const uint32_t bit = 1u << static_cast<int>(device);
  if (enabled) cpu_fallback_.fetch_or(bit);
  else cpu_fallback_.fetch_and(~bit);
}

bool Registry::cpu_fallback(DeviceType device) const {
  return cpu_fallback_.load(std::memory_order_relaxed) & (1u << static_cast<int>(device));
}

bool has_kernel(const OpDef& op, Device device) { return op.kernel(device.type) != nullptr; }

namespace {
void print_warning(const std::string& message) { std::fprintf(stderr, "loom warning: %s\n", message.c_str()); }
std::atomic<WarningHandler> g_warning_handler{print_warning};
}  // namespace

void set_warning_handler(WarningHandler handler) { g_warning_handler.store(handler ? handler : print_warning); }
void warn(const std::string& message) { g_warning_handler.load()(message); }

std::vector<std::string> Registry::op_names() const {
  std::shared_lock lock(mutex_);
  std::vector<std::string> names;
  for (const auto& op : ops_) names.push_back(op->name);
  return names;
}

// ---- modes and grad mode ----

namespace {
thread_local std::vector<Mode*> t_modes;
thread_local bool t_grad_enabled = true;
AutogradRecorder g_recorder = nullptr;
InplaceAutogradHooks g_inplace_hooks;

struct GradModeOff {
  bool previous = t_grad_enabled;
  GradModeOff() { t_grad_enabled = false; }
  ~GradModeOff() { t_grad_enabled = previous; }
};

// Pops the innermost mode while it handles a call, so ops it issues itself go to the outer modes.
struct ModeSuspend {
  Mode* mode;
  ModeSuspend() : mode(t_modes.back()) { t_modes.pop_back(); }
  ~ModeSuspend() { t_modes.push_back(mode); }
};
}  // namespace

ModeGuard::ModeGuard(Mode* mode) { t_modes.push_back(mode); }
ModeGuard::~ModeGuard() { t_modes.pop_back(); }

void set_autograd_recorder(AutogradRecorder recorder) { g_recorder = recorder; }
void set_inplace_autograd_hooks(InplaceAutogradHooks hooks) { g_inplace_hooks = hooks; }
const InplaceAutogradHooks& inplace_autograd_hooks() { return g_inplace_hooks; }
bool grad_mode_enabled() { return t_grad_enabled; }
void set_grad_mode_enabled(bool enabled) { t_grad_enabled = enabled; }

// ---- dispatch ----

namespace {

// All tensor inputs must share one device; 0-d CPU tensors (numbers) may join any device, as in PyTorch.
Device resolve_device(const OpDef& op, const std::vector<Tensor>& inputs, const Attrs& attrs) {
  const Tensor* first = nullptr;
  for (const Tensor& t : inputs) {
    if (!t.defined()) continue;
    if (!first || (first->dim() == 0 && first->device().type == DeviceType::CPU)) first = &t;
  }
  if (!first) {
    if (!attrs.has("device")) return Device();
    const Device wanted = attrs.get<Device>("device");
    return wanted.type == DeviceType::CPU ? wanted : resolve_device_index(wanted);
  }
  Device device = first->device();
  for (const Tensor& t : inputs) {
    if (!t.defined() || t.device() == device) continue;
    if (t.dim() == 0 && t.device().type == DeviceType::CPU) continue;
    fail(ErrorKind::Runtime, op.name, ": expected all tensors on the same device, got ", device.str(), " and ",
         t.device().str());
  }
  return device;
}

std::string available_devices(const OpDef& op) {
  std::string out;
  for (int d = 0; d < kNumDeviceTypes; ++d) {
    if (!op.own_kernel(static_cast<DeviceType>(d))) continue;
    if (!out.empty()) out += ", ";
    out += device_type_name(static_cast<DeviceType>(d));
  }
  return out.empty() ? "none" : out;
}

[[noreturn]] void fail_no_kernel(const OpDef& op, const std::vector<Tensor>& inputs, Device device) {
  const char* dtype = inputs.empty() || !inputs[0].defined() ? "-" : dtype_name(inputs[0].dtype());
  const bool device_backend = device.type != DeviceType::CPU;
  fail(ErrorKind::NotImplemented, op.name, ": no kernel for device '", device_type_name(device.type), "' and dtype ",
       dtype, " (available: ", available_devices(op), ")",
       device_backend ? "; loom.backends.set_cpu_fallback(device_type, True) runs such ops on the CPU" : "");
}

// A composite must give what a kernel would: the outputs infer promised (a wrong composite would otherwise only
// show on a device that lacks the kernel). Cheap next to the ops a composite runs.
std::vector<Tensor> checked_composite(const OpDef& op, const std::vector<Tensor>& inputs, const Attrs& attrs,
                                      const std::vector<TensorMeta>& metas) {
  std::vector<Tensor> outputs = op.composite(inputs, attrs);
  LOOM_CHECK(outputs.size() == metas.size(), Runtime, op.name, ": composite returned ", outputs.size(),
             " outputs, the op has ", metas.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (!outputs[i].defined()) continue;
    LOOM_CHECK(outputs[i].sizes() == metas[i].sizes && outputs[i].dtype() == metas[i].dtype, Runtime, op.name,
               ": composite output ", i, " is ", shape_str(outputs[i].sizes()), " ", dtype_name(outputs[i].dtype()),
               ", infer promised ", shape_str(metas[i].sizes), " ", dtype_name(metas[i].dtype));
  }
  return outputs;
}

// Copies a CPU tensor to `device` (the fallback's way back; the _to_device op's kernel does the same).
Tensor host_to_device(const Tensor& host, Device device) {
  Tensor dense = host.is_contiguous() ? host : dispatch1(Registry::instance().op("clone"), {host});
  Tensor out = Tensor::empty(dense.sizes(), dense.dtype(), device);
  copy_bytes(out.data_ptr(), device, dense.data_ptr(), Device(), static_cast<size_t>(dense.numel()) * dense.itemsize());
  return out;
}

// The explicit bring-up fallback (Registry::set_cpu_fallback): run the op's CPU kernel on host copies of the inputs,
// copy the outputs back, and copy back inputs that the op writes into.
std::vector<Tensor> run_on_cpu(const OpDef& op, const std::vector<Tensor>& inputs, const Attrs& attrs, Device device) {
  static std::mutex warned_mutex;
  static std::set<std::string> warned;
  {
    std::lock_guard<std::mutex> lock(warned_mutex);
    if (warned.insert(op.name).second)
      warn(op.name + ": no kernel for device '" + device_type_name(device.type) +
           "'; running it on the CPU and copying the results back (the CPU fallback is on)");
  }
  std::vector<Tensor> host(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined()) host[i] = inputs[i].to_host();
  Attrs host_attrs = attrs;
  if (host_attrs.has("device")) host_attrs.set("device", Device());
  std::vector<Tensor> results = dispatch(op, host, std::move(host_attrs));
  if (op.mutates_inputs)
    for (size_t i = 0; i < inputs.size(); ++i)
      if (inputs[i].defined() && !host[i].is_same(inputs[i]))
        dispatch(Registry::instance().op("copy"), {inputs[i], host_to_device(host[i], device)});
  for (Tensor& r : results)
    if (r.defined()) r = host_to_device(r, device);
  return results;
}

}  // namespace

std::vector<Tensor> dispatch(const OpDef& op, std::vector<Tensor> inputs, Attrs attrs) {
  if (!t_modes.empty()) {
    ModeSuspend suspend;
    if (auto replaced = suspend.mode->on_call(op, inputs, attrs)) return std::move(*replaced);
  }
  Device device = resolve_device(op, inputs, attrs);
  std::vector<TensorMeta> metas = op.infer(inputs, attrs);
  for (const TensorMeta& m : metas) check_rank(static_cast<int64_t>(m.sizes.size()), op.name.c_str());
  KernelFn kernel = op.kernel(device.type);
  if (!kernel) {
    if (op.composite) return checked_composite(op, inputs, attrs, metas);
    if (device.type == DeviceType::CPU || !Registry::instance().cpu_fallback(device.type))
      fail_no_kernel(op, inputs, device);
  }
  std::vector<Tensor> outputs;
  bool record = t_grad_enabled && op.backward && g_recorder;
  {
    GradModeOff no_grad;  // a kernel's own op calls are implementation details, never graph nodes
    if (device.type == DeviceType::CPU) {
      KernelContext ctx{inputs, attrs, metas, device, Tensor(), Stream{}, &op};
      outputs = kernel(ctx);
    } else {
      DeviceGuard guard(device);
      if (kernel) {
        KernelContext ctx{inputs, attrs, metas, device, Tensor(), current_stream(device), &op};
        outputs = kernel(ctx);
      } else {
        outputs = run_on_cpu(op, inputs, attrs, device);
      }
    }
  }
  if (record) g_recorder(op, inputs, outputs, attrs);
  return outputs;
}

bool dispatch_into(const OpDef& op, std::vector<Tensor> inputs, const Tensor& out, Attrs attrs) {
  if (!t_modes.empty()) return false;  // a mode may rewrite the call (autocast): let it see the plain op
  Device device = resolve_device(op, inputs, attrs);
  if (device != out.device()) return false;
  if (!op.writes_out(device.type)) return false;
  std::vector<TensorMeta> metas = op.infer(inputs, attrs);
  if (metas.size() != 1 || metas[0].sizes != out.sizes() || metas[0].dtype != out.dtype()) return false;
  GradModeOff no_grad;
  std::vector<Tensor> outputs;
  if (device.type == DeviceType::CPU) {
    KernelContext ctx{inputs, attrs, metas, device, out, Stream{}, &op};
    outputs = op.kernel(device.type)(ctx);
  } else {
    DeviceGuard guard(device);
    KernelContext ctx{inputs, attrs, metas, device, out, current_stream(device), &op};
    outputs = op.kernel(device.type)(ctx);
  }
  LOOM_CHECK(outputs.size() == 1 && outputs[0].is_same(out), Runtime, op.name,
             ": kernel registered as writing into its output returned another tensor");
  return true;
}

Tensor dispatch1(const OpDef& op, std::vector<Tensor> inputs, Attrs attrs) {
  return dispatch(op, std::move(inputs), std::move(attrs))[0];
}

}  // namespace loom
