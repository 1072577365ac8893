// loom::nn containers: Sequential (chains forward), ModuleList (holds modules, no forward), ModuleDict (modules
// by string key, in insertion order) and Functional (wraps a Tensor -> Tensor function so it can sit in a
// Sequential). Children are named "0", "1", ... as in
// PyTorch, so a Sequential's state dict has keys "0.weight", "2.bias", ...
//
//   auto model = std::make_shared<loom::nn::Sequential>(
//       std::make_shared<loom::nn::Linear>(784, 128), std::make_shared<loom::nn::ReLU>(),
//       std::make_shared<loom::nn::Linear>(128, 10));
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "loom/nn/module.h"

namespace loom::nn {

// Holds modules in order, indexable and iterable; children are named by position.
class ModuleList : public Module {
 public:
  ModuleList() : Module("ModuleList") {}
  template <class... Modules>
  explicit ModuleList(std::shared_ptr<Modules>... modules) : Module("ModuleList") {
    (push_back(std::move(modules)), ...);
  }

  void push_back(std::shared_ptr<Module> module);
  size_t size() const { return modules_.size(); }
  bool empty() const { return modules_.empty(); }
  // Negative indices count from the end; out of range raises IndexError.
  const std::shared_ptr<Module>& operator[](int64_t index) const;
  // The module at `index` cast to M; raises TypeError when it is not an M.
  template <class M>
  std::shared_ptr<M> at(int64_t index) const {
    auto cast = std::dynamic_pointer_cast<M>((*this)[index]);
    if (!cast) wrong_type(index);
    return cast;
  }
  auto begin() const { return modules_.begin(); }
  auto end() const { return modules_.end(); }

 protected:
  explicit ModuleList(std::string name) : Module(std::move(name)) {}
  [[noreturn]] void wrong_type(int64_t index) const;

  std::vector<std::shared_ptr<Module>> modules_;
};

// A ModuleList whose forward feeds each module's output to the next (the input itself when empty).
class Sequential : public ModuleList {
 public:
  Sequential() : ModuleList("Sequential") {}
  template <class... Modules>
  explicit Sequential(std::shared_ptr<Modules>... modules) : ModuleList("Sequential") {
    (push_back(std::move(modules)), ...);
  }
  explicit Sequential(const std::vector<std::shared_ptr<Module>>& modules);
  Tensor forward(const Tensor& input) override;
};

// Holds modules under string keys in insertion order (torch.nn.ModuleDict): each is a child named by its key,
// so state dict keys read "key.weight". Setting an existing key replaces the module in place (same position).
//
//   auto blocks = std::make_shared<loom::nn::ModuleDict>();
//   blocks->insert("proj", std::make_shared<loom::nn::Linear>(4, 8));
//   blocks->at<loom::nn::Linear>("proj")->forward(x);
class ModuleDict : public Module {
 public:
  ModuleDict() : Module("ModuleDict") {}
  explicit ModuleDict(const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& modules);

  // Adds `module` under `key` (or replaces the module already there) and returns it with its own type.
  template <class M>
  std::shared_ptr<M> insert(const std::string& key, std::shared_ptr<M> module) {
    insert_impl(key, module);
    return module;
  }
  size_t size() const { return named_children().size(); }
  bool empty() const { return named_children().empty(); }
  bool contains(const std::string& key) const;
  std::vector<std::string> keys() const;
  // The module under `key`; raises IndexError (torch: KeyError) when absent.
  const std::shared_ptr<Module>& operator[](const std::string& key) const;
  // The module under `key` cast to M; raises TypeError when it is not an M.
  template <class M>
  std::shared_ptr<M> at(const std::string& key) const {
    auto cast = std::dynamic_pointer_cast<M>((*this)[key]);
    if (!cast) wrong_type(key);
    return cast;
  }
  // (key, module) pairs in insertion order.
  auto begin() const { return named_children().begin(); }
  auto end() const { return named_children().end(); }

 private:
  void insert_impl(const std::string& key, std::shared_ptr<Module> module);
  [[noreturn]] void wrong_type(const std::string& key) const;
};

// A module with no state that applies `fn` (e.g. a reshape between layers).
class Functional : public Module {
 public:
  explicit Functional(std::function<Tensor(const Tensor&)> fn, std::string name = "Functional")
      : Module(std::move(name)), fn_(std::move(fn)) {}
  Tensor forward(const Tensor& input) override { return fn_(input); }

 private:
  std::function<Tensor(const Tensor&)> fn_;
};

}  // namespace loom::nn
