// The autograd half of loom::Tensor's methods.
#include "loom/autograd/engine.h"
#include "loom/autograd/node.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/shape.h"

namespace loom {

using autograd::meta;
using autograd::meta_if;

bool Tensor::requires_grad() const {
  autograd::refresh_view_history(*this);
  const autograd::AutogradMeta* m = meta_if(*this);
  return m && (m->requires_grad || m->grad_fn);
}

Tensor& Tensor::set_requires_grad(bool requires_grad) {
  if (requires_grad)
    LOOM_CHECK(is_floating(dtype()), Type, "requires_grad_: only tensors of floating point dtype can require "
               "gradients, got ", dtype_name(dtype()));
  if (!requires_grad && !is_leaf())
    fail(ErrorKind::Runtime, "requires_grad_: you can only change requires_grad flags of leaf variables; use "
         "detach() to get a tensor that does not require grad");
  if (!requires_grad && !impl_->autograd) return *this;
  meta(*this).requires_grad = requires_grad;
  return *this;
}

Tensor Tensor::grad() const {
  const autograd::AutogradMeta* m = meta_if(*this);
  return m ? m->grad : Tensor();
}

void Tensor::set_grad(const Tensor& grad) const {
  if (grad.defined()) {
    LOOM_CHECK(grad.sizes() == sizes(), Value, "grad: assigned grad has shape ", shape_str(grad.sizes()),
               " but the tensor has shape ", shape_str(sizes()));
    LOOM_CHECK(grad.dtype() == dtype(), Type, "grad: assigned grad has dtype ", dtype_name(grad.dtype()),
               " but the tensor has dtype ", dtype_name(dtype()));
    LOOM_CHECK(grad.device() == device(), Value, "grad: assigned grad is on ", grad.device().str(),
               " but the tensor is on ", device().str());
  }
  meta(*this).grad = grad;
}

std::shared_ptr<autograd::Node> Tensor::grad_fn() const {
  autograd::refresh_view_history(*this);
  const autograd::AutogradMeta* m = meta_if(*this);
  return m ? m->grad_fn : nullptr;
}

int64_t Tensor::output_nr() const {
  autograd::refresh_view_history(*this);
  const autograd::AutogradMeta* m = meta_if(*this);
  return m ? m->output_nr : 0;
}

bool Tensor::is_leaf() const { return grad_fn() == nullptr; }

void Tensor::backward(const Tensor& gradient, bool retain_graph, bool create_graph) const {
  autograd::backward({*this}, {gradient}, retain_graph, create_graph);
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>(*impl_);
  impl->autograd = nullptr;
  impl->view_base = nullptr;  // not a differentiable view: a later write to the base must not give it history
  return Tensor(std::move(impl));
}

void Tensor::retain_grad() const {
  if (is_leaf()) return;  // leaves keep .grad anyway
  autograd::AutogradMeta& m = meta(*this);
  if (m.retains_grad) return;
  m.retains_grad = true;
  std::weak_ptr<TensorImpl> weak = impl_;
  m.grad_fn->output_hooks.resize(m.grad_fn->num_outputs());
  m.grad_fn->output_hooks[m.output_nr].emplace_back(-1, [weak](const Tensor& g) {
    if (auto impl = weak.lock()) {
      autograd::AutogradMeta& meta_ref = *impl->autograd;
      meta_ref.grad = meta_ref.grad.defined() ? add(meta_ref.grad, g.detach()) : clone(g.detach());
    }
    return Tensor();
  });
}

bool Tensor::retains_grad() const {
  const autograd::AutogradMeta* m = meta_if(*this);
  return m && m->retains_grad;
}

namespace {
int64_t next_hook_id() {
  static int64_t id = 0;
  return ++id;
}
}  // namespace

int64_t Tensor::register_hook(std::function<Tensor(const Tensor&)> hook) const {
  LOOM_CHECK(requires_grad(), Runtime, "register_hook: cannot register a hook on a tensor that doesn't require gradient");
  int64_t id = next_hook_id();
  autograd::AutogradMeta& m = meta(*this);
  if (m.grad_fn) {
    m.grad_fn->output_hooks.resize(m.grad_fn->num_outputs());
    m.grad_fn->output_hooks[m.output_nr].emplace_back(id, std::move(hook));
  } else {
    m.leaf_hooks.emplace_back(id, std::move(hook));
  }
  return id;
}

namespace autograd {
int64_t register_post_accumulate_grad_hook(const Tensor& leaf, std::function<void(const Tensor&)> hook) {
  LOOM_CHECK(leaf.requires_grad() && leaf.is_leaf(), Runtime, "register_post_accumulate_grad_hook: the tensor must be ",
             "a leaf that requires grad (got ", leaf.requires_grad() ? "a non-leaf" : "a tensor that doesn't require grad",
             ")");
  int64_t id = next_hook_id();
  meta(leaf).post_accumulate_hooks.emplace_back(id, std::move(hook));
  return id;
}
}  // namespace autograd

void Tensor::remove_hook(int64_t handle) const {
  autograd::AutogradMeta* m = impl_->autograd.get();
  if (!m) return;
  auto drop = [handle](auto& hooks) { std::erase_if(hooks, [handle](const auto& h) { return h.first == handle; }); };
  drop(m->leaf_hooks);
  drop(m->post_accumulate_hooks);
  if (m->grad_fn)
    for (auto& hooks : m->grad_fn->output_hooks) drop(hooks);
}

}  // namespace loom
