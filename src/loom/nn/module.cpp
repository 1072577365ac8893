// loom::nn::Module: registration, recursive traversal with dotted names, state dicts, modes.
#include "loom/nn/module.h"

#include <algorithm>
#include <sstream>

#include "loom/autograd/grad_mode.h"
#include "loom/core/error.h"
#include "loom/ops/creation.h"
#include "loom/ops/device.h"
#include "loom/ops/shape.h"

namespace loom::nn {

namespace {

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

std::string quoted_list(const std::vector<std::string>& keys) {
  std::string out;
  for (size_t i = 0; i < keys.size(); ++i) out += (i ? ", \"" : "\"") + keys[i] + "\"";
  return out;
}

// Replaces t's data with `data`'s, keeping t's identity and autograd flags (torch's `t.data = data`).
void swap_data(const Tensor& t, const Tensor& data) {
  TensorImpl& impl = *t.impl();
  impl.storage = data.storage();
  impl.offset = data.offset();
  impl.sizes = data.sizes();
  impl.strides = data.strides();
  impl.dtype = data.dtype();
}

}  // namespace

Tensor Module::forward(const Tensor&) {
  fail(ErrorKind::NotImplemented, name_, ".forward: this module has no forward (it is a container or a base ",
       "class); override Module::forward");
}

void Module::check_new_name(const std::string& name, const char* what) const {
  LOOM_CHECK(!name.empty(), Value, name_, ".register_", what, ": the name must not be empty");
  LOOM_CHECK(name.find('.') == std::string::npos, Value, name_, ".register_", what, ": name \"", name,
             "\" must not contain \".\"");
  auto has = [&](const auto& list) {
    return std::any_of(list.begin(), list.end(), [&](const auto& entry) { return entry.first == name; });
  };
  std::string kind = what;
  LOOM_CHECK(kind == "parameter" || !has(parameters_), Value, name_, ".register_", what, ": \"", name,
             "\" is already a parameter");
  LOOM_CHECK(kind == "buffer" || !has(buffers_), Value, name_, ".register_", what, ": \"", name,
             "\" is already a buffer");
  LOOM_CHECK(kind == "module" || !has(children_), Value, name_, ".register_", what, ": \"", name,
             "\" is already a submodule");
}

Tensor Module::register_parameter(const std::string& name, Tensor tensor, bool requires_grad) {
  check_new_name(name, "parameter");
  if (tensor.defined()) {
    LOOM_CHECK(!requires_grad || is_floating(tensor.dtype()), Type, name_, ".register_parameter: \"", name,
               "\" has dtype ", dtype_name(tensor.dtype()), "; only floating-point parameters can require grad");
    LOOM_CHECK(tensor.is_leaf(), Value, name_, ".register_parameter: \"", name,
               "\" is not a leaf tensor (it has autograd history); pass a detached tensor");
    tensor.set_requires_grad(requires_grad);
  }
  for (auto& entry : parameters_) {
    if (entry.first == name) {
      entry.second = tensor;
      return tensor;
    }
  }
  parameters_.emplace_back(name, tensor);
  return tensor;
}

Tensor Module::register_buffer(const std::string& name, Tensor tensor, bool persistent) {
  check_new_name(name, "buffer");
  auto np = std::find(non_persistent_.begin(), non_persistent_.end(), name);
  if (!persistent && np == non_persistent_.end()) non_persistent_.push_back(name);
  if (persistent && np != non_persistent_.end()) non_persistent_.erase(np);
  for (auto& entry : buffers_) {
    if (entry.first == name) {
      entry.second = tensor;
      return tensor;
    }
  }
  buffers_.emplace_back(name, tensor);
  return tensor;
}

void Module::register_module_impl(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name, "module");
  LOOM_CHECK(module != nullptr, Value, name_, ".register_module: \"", name, "\" is a null module");
  LOOM_CHECK(module.get() != this, Value, name_, ".register_module: a module cannot be its own child");
  for (auto& entry : children_) {
    if (entry.first == name) {
      entry.second = std::move(module);
      return;
    }
  }
  children_.emplace_back(name, std::move(module));
}

void Module::collect_named_modules(const std::string& prefix,
                                   std::vector<std::pair<std::string, std::shared_ptr<Module>>>& out,
                                   std::vector<const Module*>& seen) {
  if (std::find(seen.begin(), seen.end(), this) != seen.end()) return;
  seen.push_back(this);
  std::shared_ptr<Module> self = weak_from_this().lock();
  if (!self) self = std::shared_ptr<Module>(this, [](Module*) {});  // not owned by a shared_ptr: borrow it
  out.emplace_back(prefix, self);
  for (const auto& [name, child] : children_) child->collect_named_modules(join(prefix, name), out, seen);
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_modules() {
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
  std::vector<const Module*> seen;
  collect_named_modules("", out, seen);
  return out;
}

std::vector<std::shared_ptr<Module>> Module::modules() {
  std::vector<std::shared_ptr<Module>> out;
  for (auto& entry : named_modules()) out.push_back(entry.second);
  return out;
}

std::vector<std::shared_ptr<Module>> Module::children() const {
  std::vector<std::shared_ptr<Module>> out;
  for (const auto& entry : children_) out.push_back(entry.second);
  return out;
}

Module::NamedTensors Module::collect_named(NamedTensors Module::*kind, bool recurse) const {
  NamedTensors out;
  std::vector<const TensorImpl*> seen;
  auto add_from = [&](const std::string& prefix, const Module& m) {
    for (const auto& [name, t] : m.*kind) {
      if (!t.defined() || std::find(seen.begin(), seen.end(), t.impl().get()) != seen.end()) continue;
      seen.push_back(t.impl().get());
      out.emplace_back(join(prefix, name), t);
    }
  };
  if (!recurse) {
    add_from("", *this);
    return out;
  }
  for (const auto& [prefix, m] : const_cast<Module*>(this)->named_modules()) add_from(prefix, *m);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters(bool recurse) const {
  return collect_named(&Module::parameters_, recurse);
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& entry : named_parameters(recurse)) out.push_back(entry.second);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers(bool recurse) const {
  return collect_named(&Module::buffers_, recurse);
}

std::vector<Tensor> Module::buffers(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& entry : named_buffers(recurse)) out.push_back(entry.second);
  return out;
}

std::pair<const Module*, std::string> Module::resolve(const std::string& dotted, const char* what) const {
  const Module* m = this;
  std::string rest = dotted;
  for (size_t dot; (dot = rest.find('.')) != std::string::npos;) {
    std::string head = rest.substr(0, dot);
    const Module* next = nullptr;
    for (const auto& entry : m->children_)
      if (entry.first == head) next = entry.second.get();
    LOOM_CHECK(next != nullptr, Index, name_, ".", what, ": no submodule \"", head, "\" on the way to \"", dotted,
               "\"");
    m = next;
    rest = rest.substr(dot + 1);
  }
  return {m, rest};
}

Tensor Module::parameter(const std::string& name) const {
  auto [m, last] = resolve(name, "parameter");
  for (const auto& entry : m->parameters_)
    if (entry.first == last) return entry.second;
  fail(ErrorKind::Index, name_, ".parameter: no parameter named \"", name, "\"");
}

Tensor Module::buffer(const std::string& name) const {
  auto [m, last] = resolve(name, "buffer");
  for (const auto& entry : m->buffers_)
    if (entry.first == last) return entry.second;
  fail(ErrorKind::Index, name_, ".buffer: no buffer named \"", name, "\"");
}

std::shared_ptr<Module> Module::child(const std::string& name) const {
  auto [m, last] = resolve(name, "child");
  for (const auto& entry : m->children_)
    if (entry.first == last) return entry.second;
  fail(ErrorKind::Index, name_, ".child: no submodule named \"", name, "\"");
}

void Module::collect_state(const std::string& prefix, StateDict& out) const {
  for (const auto& [name, t] : parameters_)
    if (t.defined()) out.emplace_back(prefix + name, t);
  for (const auto& [name, t] : buffers_) {
    bool persistent = std::find(non_persistent_.begin(), non_persistent_.end(), name) == non_persistent_.end();
    if (t.defined() && persistent) out.emplace_back(prefix + name, t);
  }
  for (const auto& [name, child] : children_) child->collect_state(prefix + name + ".", out);
}

StateDict Module::state_dict() const {
  StateDict out;
  collect_state("", out);
  return out;
}

IncompatibleKeys Module::load_state_dict(const StateDict& state, bool strict) {
  StateDict own = state_dict();
  IncompatibleKeys result;
  std::vector<std::string> errors;
  std::vector<std::pair<Tensor, Tensor>> copies;  // (destination, source)
  for (const auto& [key, dst] : own) {
    auto it = std::find_if(state.begin(), state.end(), [&](const auto& entry) { return entry.first == key; });
    if (it == state.end()) {
      result.missing_keys.push_back(key);
      continue;
    }
    const Tensor& src = it->second;
    if (!src.defined()) {
      errors.push_back("value for \"" + key + "\" is an undefined tensor");
    } else if (src.sizes() != dst.sizes()) {
      errors.push_back("size mismatch for " + key + ": copying a param with shape " + shape_str(src.sizes()) +
                       " from checkpoint, the shape in current model is " + shape_str(dst.sizes()) + ".");
    } else {
      copies.emplace_back(dst, src);
    }
  }
  for (const auto& [key, src] : state) {
    bool known = std::any_of(own.begin(), own.end(), [&](const auto& entry) { return entry.first == key; });
    if (!known) result.unexpected_keys.push_back(key);
  }
  if (strict) {
    if (!result.unexpected_keys.empty())
      errors.insert(errors.begin(), "Unexpected key(s) in state_dict: " + quoted_list(result.unexpected_keys) + ".");
    if (!result.missing_keys.empty())
      errors.insert(errors.begin(), "Missing key(s) in state_dict: " + quoted_list(result.missing_keys) + ".");
  }
  if (!errors.empty()) {
    std::string message = "Error(s) in loading state_dict for " + name_ + ":";
    for (const auto& e : errors) message += "\n\t" + e;
    fail(ErrorKind::Runtime, message);
  }
  NoGradGuard no_grad;
  for (auto& [dst, src] : copies) {
    Tensor target = dst;
    copy_(target, src);
  }
  return result;
}

Module& Module::train(bool on) {
  for (auto& m : modules()) m->training_ = on;
  return *this;
}

void Module::zero_grad(bool set_to_none) {
  NoGradGuard no_grad;
  for (const Tensor& p : parameters()) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (set_to_none) {
      p.set_grad(Tensor());
    } else {
      Tensor target = g.grad_fn() ? g.detach() : g;
      zero_(target);
    }
  }
}

Module& Module::to(DType dtype) {
  LOOM_CHECK(is_floating(dtype), Type, name_, ".to: nn.Module.to only accepts floating point dtypes, got ",
             dtype_name(dtype));
  NoGradGuard no_grad;
  for (auto& m : modules()) {
    for (auto* list : {&m->parameters_, &m->buffers_}) {
      for (auto& [name, t] : *list) {
        if (!t.defined() || !is_floating(t.dtype()) || t.dtype() == dtype) continue;
        Tensor grad = t.grad();
        if (grad.defined()) t.set_grad(Tensor());
        swap_data(t, to_dtype(t, dtype));
        if (grad.defined()) t.set_grad(to_dtype(grad, dtype));
      }
    }
  }
  return *this;
}

Module& Module::to(Device device) {
  NoGradGuard no_grad;
  for (auto& m : modules()) {
    for (auto* list : {&m->parameters_, &m->buffers_}) {
      for (auto& [name, t] : *list) {
        if (!t.defined() || t.device() == resolve_device_index(device)) continue;
        Tensor grad = t.grad();
        if (grad.defined()) t.set_grad(Tensor());
        swap_data(t, to_device(t, device));
        if (grad.defined()) t.set_grad(to_device(grad, device));
      }
    }
  }
  return *this;
}

Module& Module::apply(const std::function<void(Module&)>& fn) {
  for (auto& [name, child] : children_) child->apply(fn);
  fn(*this);
  return *this;
}

std::string Module::str() const {
  std::string extra = extra_repr();
  if (children_.empty()) return name_ + "(" + extra + ")";
  std::ostringstream out;
  out << name_ << "(";
  if (!extra.empty()) out << "\n  " << extra;
  for (const auto& [name, child] : children_) {
    std::string text = child->str();
    std::string indented;
    for (char c : text) {
      indented += c;
      if (c == '\n') indented += "  ";
    }
    out << "\n  (" << name << "): " << indented;
  }
  out << "\n)";
  return out.str();
}

}  // namespace loom::nn
