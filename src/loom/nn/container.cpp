// loom::nn containers: ModuleList, Sequential and ModuleDict.
#include "loom/nn/container.h"

#include <algorithm>

#include "loom/core/error.h"

namespace loom::nn {

void ModuleList::push_back(std::shared_ptr<Module> module) {
  LOOM_CHECK(module != nullptr, Value, name(), ".push_back: the module is null");
  register_module(std::to_string(modules_.size()), module);
  modules_.push_back(std::move(module));
}

const std::shared_ptr<Module>& ModuleList::operator[](int64_t index) const {
  int64_t size = static_cast<int64_t>(modules_.size());
  LOOM_CHECK(index >= -size && index < size, Index, name(), ": index ", index, " is out of range for ", size,
             " modules");
  return modules_[static_cast<size_t>(index < 0 ? index + size : index)];
}

void ModuleList::wrong_type(int64_t index) const {
  fail(ErrorKind::Type, name(), ".at: module ", index, " is a ", (*this)[index]->name(),
       ", not the requested type");
}

Sequential::Sequential(const std::vector<std::shared_ptr<Module>>& modules) : ModuleList("Sequential") {
  for (const auto& m : modules) push_back(m);
}

Tensor Sequential::forward(const Tensor& input) {
  Tensor x = input;
  for (const auto& m : modules_) x = m->forward(x);
  return x;
}

ModuleDict::ModuleDict(const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& modules)
    : Module("ModuleDict") {
  for (const auto& [key, module] : modules) insert_impl(key, module);
}

void ModuleDict::insert_impl(const std::string& key, std::shared_ptr<Module> module) {
  LOOM_CHECK(module != nullptr, Value, name(), ".insert: the module for key \"", key, "\" is null");
  register_module(key, std::move(module));
}

bool ModuleDict::contains(const std::string& key) const {
  const auto& children = named_children();
  return std::any_of(children.begin(), children.end(), [&](const auto& entry) { return entry.first == key; });
}

std::vector<std::string> ModuleDict::keys() const {
  std::vector<std::string> out;
  for (const auto& entry : named_children()) out.push_back(entry.first);
  return out;
}

const std::shared_ptr<Module>& ModuleDict::operator[](const std::string& key) const {
  for (const auto& entry : named_children())
    if (entry.first == key) return entry.second;
  fail(ErrorKind::Index, name(), ": no module under key \"", key, "\"");
}

void ModuleDict::wrong_type(const std::string& key) const {
  fail(ErrorKind::Type, name(), ".at: the module under key \"", key, "\" is a ", (*this)[key]->name(),
       ", not the requested type");
}

}  // namespace loom::nn
