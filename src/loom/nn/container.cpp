// loom::nn containers: ModuleList and Sequential.
#include "loom/nn/container.h"

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

}  // namespace loom::nn
