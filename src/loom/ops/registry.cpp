#include "loom/ops/registry.h"

#include <algorithm>

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

OpDef& Registry::define(OpDef def) {
  LOOM_CHECK(find(def.name) == nullptr, Runtime, "registry: op '", def.name, "' is defined twice");
  LOOM_CHECK(def.infer != nullptr, Runtime, "registry: op '", def.name, "' has no infer function");
  def.id = static_cast<int>(ops_.size());
  ops_.push_back(std::make_unique<OpDef>(std::move(def)));
  return *ops_.back();
}

const OpDef* Registry::find(std::string_view name) const {
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
  def->kernels[static_cast<int>(device)] = kernel;
  const uint32_t bit = 1u << static_cast<int>(device);
  def->out_kernels = writes_out ? (def->out_kernels | bit) : (def->out_kernels & ~bit);
}

std::vector<std::string> Registry::op_names() const {
  std::vector<std::string> names;
  for (const auto& op : ops_) names.push_back(op->name);
  return names;
}

// ---- modes and grad mode ----

namespace {
thread_local std::vector<Mode*> t_modes;
thread_local bool t_grad_enabled = true;
AutogradRecorder g_recorder = nullptr;

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
  if (!first) return attrs.has("device") ? attrs.get<Device>("device") : Device();
  Device device = first->device();
  for (const Tensor& t : inputs) {
    if (!t.defined() || t.device() == device) continue;
    if (t.dim() == 0 && t.device().type == DeviceType::CPU) continue;
    fail(ErrorKind::Value, op.name, ": expected all tensors on the same device, got ", device.str(), " and ",
         t.device().str());
  }
  return device;
}

std::string available_devices(const OpDef& op) {
  std::string out;
  for (int d = 0; d < kNumDeviceTypes; ++d) {
    if (!op.kernels[d]) continue;
    if (!out.empty()) out += ", ";
    out += device_type_name(static_cast<DeviceType>(d));
  }
  return out.empty() ? "none" : out;
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
  KernelFn kernel = op.kernels[static_cast<int>(device.type)];
  if (!kernel) kernel = op.kernels[static_cast<int>(DeviceType::Any)];
  if (!kernel) {
    if (op.composite) return op.composite(inputs, attrs);
    const char* dtype = inputs.empty() || !inputs[0].defined() ? "-" : dtype_name(inputs[0].dtype());
    fail(ErrorKind::NotImplemented, op.name, ": no kernel for device '", device_type_name(device.type),
         "' and dtype ", dtype, " (available: ", available_devices(op), ")");
  }
  std::vector<Tensor> outputs;
  bool record = t_grad_enabled && op.backward && g_recorder;
  {
    GradModeOff no_grad;  // a kernel's own op calls are implementation details, never graph nodes
    KernelContext ctx{inputs, attrs, metas, device, Tensor()};
    outputs = kernel(ctx);
  }
  if (record) g_recorder(op, inputs, outputs, attrs);
  return outputs;
}

bool dispatch_into(const OpDef& op, std::vector<Tensor> inputs, const Tensor& out, Attrs attrs) {
  if (!t_modes.empty()) return false;  // a mode may rewrite the call (autocast): let it see the plain op
  Device device = resolve_device(op, inputs, attrs);
  if (device != out.device()) return false;
  const int d = static_cast<int>(device.type);
  if (!op.kernels[d] || !(op.out_kernels & (1u << d))) return false;
  std::vector<TensorMeta> metas = op.infer(inputs, attrs);
  if (metas.size() != 1 || metas[0].sizes != out.sizes() || metas[0].dtype != out.dtype()) return false;
  GradModeOff no_grad;
  KernelContext ctx{inputs, attrs, metas, device, out};
  std::vector<Tensor> outputs = op.kernels[d](ctx);
  LOOM_CHECK(outputs.size() == 1 && outputs[0].is_same(out), Runtime, op.name,
             ": kernel registered as writing into its output returned another tensor");
  return true;
}

Tensor dispatch1(const OpDef& op, std::vector<Tensor> inputs, Attrs attrs) {
  return dispatch(op, std::move(inputs), std::move(attrs))[0];
}

}  // namespace loom
