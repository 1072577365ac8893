// loom::nn::Module: the C++ base class of layers (torch.nn.Module's C++ counterpart).
//
// A module owns named parameters, buffers and child modules, registered in order. Names of nested entries are
// dotted exactly as PyTorch writes them ("0.weight", "layers.1.bias"), so state dicts move between loom and
// PyTorch by name. Modules are held by std::shared_ptr (children are shared, as in libtorch):
//
//   auto fc = std::make_shared<loom::nn::Linear>(784, 10);
//   loom::Tensor y = fc->forward(x);            // or (*fc)(x)
//
// A subclass registers its state in the constructor and keeps handles to it as members:
//
//   struct Net : loom::nn::Module {
//     std::shared_ptr<loom::nn::Linear> fc1, fc2;
//     Net() : Module("Net") {
//       fc1 = register_module("fc1", std::make_shared<loom::nn::Linear>(4, 8));
//       fc2 = register_module("fc2", std::make_shared<loom::nn::Linear>(8, 1));
//     }
//     loom::Tensor forward(const loom::Tensor& x) override { return fc2->forward(loom::relu(fc1->forward(x))); }
//   };
//
// Tensor is a handle, so the member returned by register_parameter and the registered entry are the same
// tensor: in-place updates (optimizer steps, load_state_dict, to(dtype)) are seen through both. Assigning a new
// tensor to the member does not re-register it; call register_parameter again with the same name for that.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "loom/core/tensor.h"

namespace loom::nn {

// An ordered list of (dotted name, tensor), as state_dict() returns it.
using StateDict = std::vector<std::pair<std::string, Tensor>>;

// What load_state_dict(strict = false) could not match (torch's _IncompatibleKeys).
struct IncompatibleKeys {
  std::vector<std::string> missing_keys;
  std::vector<std::string> unexpected_keys;
};

class Module : public std::enable_shared_from_this<Module> {
 public:
  explicit Module(std::string name = "Module") : name_(std::move(name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The class name, used in errors and in str().
  const std::string& name() const { return name_; }

  // The computation; the base raises NotImplementedError (containers such as ModuleList have none).
  virtual Tensor forward(const Tensor& input);
  Tensor operator()(const Tensor& input) { return forward(input); }

  // ---- registration (names must be non-empty, contain no '.', and be unique within this module) ----

  // Registers `tensor` as a parameter (a leaf with requires_grad set as given) and returns it. An undefined
  // tensor registers an absent parameter (like `bias=False`): it is skipped by parameters() and state_dict().
  // Registering an existing name replaces the entry.
  Tensor register_parameter(const std::string& name, Tensor tensor, bool requires_grad = true);
  // Registers a buffer (state that is not a parameter, e.g. running_mean). Persistent buffers are in state_dict.
  Tensor register_buffer(const std::string& name, Tensor tensor, bool persistent = true);
  // Registers a child module and returns it with its own type.
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    register_module_impl(name, module);
    return module;
  }

  // ---- access (recursive entries in PyTorch's order: own entries first, then each child's, depth first) ----

  // Parameters, each listed once even when shared between modules (as torch's remove_duplicate=True).
  std::vector<Tensor> parameters(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor>> named_parameters(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor>> named_buffers(bool recurse = true) const;
  std::vector<std::shared_ptr<Module>> children() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const { return children_; }
  // This module and every descendant (named "" for this one), each once.
  std::vector<std::shared_ptr<Module>> modules();
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules();
  // A registered parameter / buffer / child by its (possibly dotted) name; raises IndexError when absent.
  Tensor parameter(const std::string& name) const;
  Tensor buffer(const std::string& name) const;
  std::shared_ptr<Module> child(const std::string& name) const;

  // ---- state ----

  // Parameters and persistent buffers, module by module (own parameters, own buffers, then children), with
  // dotted names. The tensors are the module's own (not copies): detach/clone them to keep a snapshot.
  StateDict state_dict() const;
  // Copies values from `state` (by name, converting dtype) into the parameters and buffers without recording
  // autograd. Shapes must match (else RuntimeError naming each key and both shapes). With strict, missing or
  // unexpected keys raise RuntimeError naming them; otherwise they are returned. Nothing is copied on error.
  IncompatibleKeys load_state_dict(const StateDict& state, bool strict = true);

  // ---- modes and utilities ----

  // Sets training mode on this module and every descendant; returns *this.
  Module& train(bool on = true);
  Module& eval() { return train(false); }
  bool is_training() const { return training_; }
  // Drops (set_to_none) or zeroes the .grad of every parameter.
  void zero_grad(bool set_to_none = true);
  // Converts floating-point parameters and buffers (and existing grads) to `dtype` in place: the tensors keep
  // their identity, so handles held elsewhere (members, optimizers) see the new data.
  Module& to(DType dtype);
  // Moves every parameter and buffer (and existing grads) to `device` in place, keeping their identity as to(dtype)
  // does; create optimizers after moving, or they keep state on the old device, as in PyTorch.
  Module& to(Device device);
  // Calls fn on every module (children first, then this one), as torch's Module.apply.
  Module& apply(const std::function<void(Module&)>& fn);
  // A multi-line summary like PyTorch's repr: "Sequential(\n  (0): Linear(in_features=..., ...)\n)".
  std::string str() const;
  // The text inside the parentheses of str() for this module alone (torch's extra_repr).
  virtual std::string extra_repr() const { return ""; }

 protected:
  bool training_ = true;

 private:
  void register_module_impl(const std::string& name, std::shared_ptr<Module> module);
  void check_new_name(const std::string& name, const char* what) const;
  void collect_named_modules(const std::string& prefix,
                             std::vector<std::pair<std::string, std::shared_ptr<Module>>>& out,
                             std::vector<const Module*>& seen);
  void collect_state(const std::string& prefix, StateDict& out) const;
  std::pair<const Module*, std::string> resolve(const std::string& dotted, const char* what) const;
  using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
  // The tensors of one kind (parameters_ or buffers_) of this module and, with recurse, its descendants,
  // by dotted name; a tensor registered twice is listed once, under its first name (PyTorch's rule).
  NamedTensors collect_named(NamedTensors Module::*kind, bool recurse) const;

  std::string name_;
  std::vector<std::pair<std::string, Tensor>> parameters_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::string> non_persistent_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

}  // namespace loom::nn
