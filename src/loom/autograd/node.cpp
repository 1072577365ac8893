#include "loom/autograd/node.h"

#include <atomic>
#include <unordered_set>

#include "loom/autograd/grad_mode.h"
#include "loom/ops/creation.h"
#include "loom/ops/device.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/reduce.h"
#include "loom/ops/shape.h"

namespace loom::autograd {

namespace {
std::atomic<uint64_t> g_next_sequence_nr{0};
thread_local bool t_creating_graph = false;
}  // namespace

Node::Node() : sequence_nr(g_next_sequence_nr++) {}

bool creating_graph() { return t_creating_graph; }
void set_creating_graph(bool value) { t_creating_graph = value; }

AutogradMeta& meta(const Tensor& tensor) {
  auto& slot = tensor.impl()->autograd;
  if (!slot) slot = std::make_shared<AutogradMeta>();
  return *slot;
}

const AutogradMeta* meta_if(const Tensor& tensor) { return tensor.impl()->autograd.get(); }

void refresh_view_history(const Tensor& tensor) {
  TensorImpl& impl = *tensor.impl();
  if (!impl.view_base || impl.view_version == impl.storage->version()) return;
  impl.view_version = impl.storage->version();  // first: the as_strided below must not recurse here
  Tensor base(impl.view_base);
  const AutogradMeta* base_meta = meta_if(base);
  if (!base_meta || !(base_meta->grad_fn || base_meta->requires_grad)) return;
  Tensor fresh;
  {
    EnableGradGuard grad_on(true);
    fresh = as_strided(base, impl.sizes, impl.strides, impl.offset);
  }
  const AutogradMeta* from = meta_if(fresh);
  if (!from || !from->grad_fn) return;
  AutogradMeta& m = meta(tensor);
  m.grad_fn = from->grad_fn;
  m.output_nr = from->output_nr;
  m.requires_grad = true;
}

Edge gradient_edge(const Tensor& tensor) {
  refresh_view_history(tensor);
  const AutogradMeta* m = meta_if(tensor);
  if (!m) return {};
  if (m->grad_fn) return {m->grad_fn, m->output_nr};
  if (!m->requires_grad) return {};
  AutogradMeta& mut = meta(tensor);
  std::shared_ptr<Node> accumulator = mut.grad_accumulator.lock();
  if (!accumulator) {
    accumulator = std::make_shared<AccumulateGrad>(tensor.impl());
    mut.grad_accumulator = accumulator;
  }
  return {accumulator, 0};
}

Tensor checked_hook_result(const Tensor& grad, const Tensor& replaced) {
  LOOM_CHECK(replaced.sizes() == grad.sizes(), Runtime, "hook: a hook has changed the size of the gradient from ",
             shape_str(grad.sizes()), " to ", shape_str(replaced.sizes()));
  LOOM_CHECK(replaced.dtype() == grad.dtype(), Runtime, "hook: a hook has changed the dtype of the gradient from ",
             dtype_name(grad.dtype()), " to ", dtype_name(replaced.dtype()));
  LOOM_CHECK(replaced.device() == grad.device(), Runtime, "hook: a hook has changed the device of the gradient from ",
             grad.device().str(), " to ", replaced.device().str());
  return replaced;
}

// ---- SavedTensor ----

SavedTensor::SavedTensor(const Tensor& tensor, bool is_output, const std::shared_ptr<Node>& owner)
    : version_(tensor.defined() ? tensor.version() : 0), is_output_(is_output) {
  if (!tensor.defined()) return;
  if (is_output) {
    // Keep the data, not the history: the history points back at `owner`, which owns us.
    data_ = tensor.detach();
    owner_ = owner;
    output_nr_ = meta_if(tensor) ? meta_if(tensor)->output_nr : 0;
  } else {
    data_ = tensor;
  }
}

Tensor SavedTensor::unpack(const std::string& op_name, bool with_history) const {
  if (!data_.defined()) return data_;
  LOOM_CHECK(data_.version() == version_, Runtime, op_name,
             ": one of the variables needed for gradient computation has been modified by an in-place "
             "operation: it was saved at version ",
             version_, " and is now at version ", data_.version(),
             ". Use an out-of-place op or clone() the tensor before modifying it.");
  if (!is_output_ || !with_history) return data_;
  std::shared_ptr<Node> owner = owner_.lock();
  if (!owner) return data_;
  // create_graph: give the saved output its history back so the backward formula is differentiable.
  Tensor restored = data_.detach();
  AutogradMeta& m = meta(restored);
  m.grad_fn = owner;
  m.output_nr = output_nr_;
  m.requires_grad = true;
  return restored;
}

void SavedTensor::snapshot_if_aliases(const Storage* storage, uint64_t version) {
  if (!data_.defined() || data_.storage().get() != storage || version_ != version) return;
  // A differentiable copy of a saved input keeps its history for create_graph; outputs are saved detached.
  data_ = is_output_ ? clone(data_).detach() : clone(data_);
  version_ = data_.version();
}

void protect_saved_from_inplace(const Tensor& result, const Tensor& self) {
  const AutogradMeta* m = meta_if(result);
  if (!m || !m->grad_fn) return;
  const AutogradMeta* self_meta = meta_if(self);
  const Node* self_producer = self_meta ? self_meta->grad_fn.get() : nullptr;
  if (m->grad_fn.get() == self_producer) return;  // nothing new was recorded
  const Storage* storage = self.storage().get();
  uint64_t version = self.version();
  // Only the nodes recorded while computing `result` matter: they are the newest ones, found walking back
  // from result's node. The walk stops at self's own producer and is bounded so long histories stay cheap.
  constexpr uint64_t kWindow = 64;
  uint64_t newest = m->grad_fn->sequence_nr;
  uint64_t oldest = newest >= kWindow ? newest - kWindow : 0;
  if (self_producer && self_producer->sequence_nr > oldest) oldest = self_producer->sequence_nr;
  std::vector<Node*> stack{m->grad_fn.get()};
  std::unordered_set<Node*> seen{m->grad_fn.get()};
  NoGradGuard no_grad_for_outputs;  // re-enabled below for inputs
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (auto* op = dynamic_cast<OpNode*>(n)) {
      {
        EnableGradGuard grad_on(true);
        for (SavedTensor& s : op->saved_inputs) s.snapshot_if_aliases(storage, version);
      }
      for (SavedTensor& s : op->saved_outputs) s.snapshot_if_aliases(storage, version);
    }
    for (const Edge& e : n->next_edges) {
      Node* next = e.node.get();
      if (!next || next == self_producer || next->sequence_nr <= oldest) continue;
      if (seen.insert(next).second) stack.push_back(next);
    }
  }
}

// ---- OpNode ----

std::vector<Tensor> OpNode::apply(std::vector<Tensor>&& grads) {
  LOOM_CHECK(!released_, Runtime, op_.name,
             ": trying to backward through the graph a second time (or directly access saved tensors after "
             "they have already been freed). Specify retain_graph=True on the first backward call if you need "
             "to backward through the graph again.");
  bool with_history = creating_graph();
  BackwardContext ctx{attrs_, {}, {}, std::move(grads), input_meta, output_meta, input_needs_grad};
  for (const SavedTensor& s : saved_inputs) ctx.inputs.push_back(s.unpack(op_.name, with_history));
  for (const SavedTensor& s : saved_outputs) ctx.outputs.push_back(s.unpack(op_.name, with_history));
  std::vector<Tensor> input_grads = op_.backward(ctx);
  input_grads.resize(input_meta.size());
  for (size_t i = 0; i < input_grads.size(); ++i) {
    Tensor& g = input_grads[i];
    if (!g.defined() || !input_needs_grad[i]) {
      g = Tensor();
      continue;
    }
    const TensorMeta& want = input_meta[i];
    if (g.sizes() != want.sizes) {
      LOOM_CHECK(numel(want.sizes) == g.numel() || g.dim() >= static_cast<int64_t>(want.sizes.size()), Runtime,
                 op_.name, ": backward produced a gradient of shape ", shape_str(g.sizes()), " for input ", i,
                 " of shape ", shape_str(want.sizes));
      g = numel(want.sizes) == g.numel() ? reshape(g, want.sizes) : sum_to(g, want.sizes);
    }
    if (g.dtype() != want.dtype) g = to_dtype(g, want.dtype);
    // A 0-d CPU input of a device op (a number) gets its gradient on the CPU, as PyTorch's engine moves it.
    if (g.device() != want.device) g = to_device(g, want.device);
  }
  return input_grads;
}

void OpNode::release_saved() {
  // Only a node that actually saved something refuses a second backward (add, sum... can run again, as in
  // PyTorch).
  bool any = false;
  for (auto* saved : {&saved_inputs, &saved_outputs})
    for (SavedTensor& s : *saved) {
      any = any || s.defined();
      s.reset();
    }
  if (any) released_ = true;
}

// ---- AccumulateGrad ----

namespace {
// True when `g` is contiguous, fills its whole storage, and no tensor but `g` (held here and in `incoming`)
// and the base it views (held by nothing else) can reach that storage.
bool only_reference(const Tensor& g, const Tensor& incoming) {
  const std::shared_ptr<TensorImpl>& impl = g.impl();
  long holders = impl == incoming.impl() ? 2 : 1;
  if (impl.use_count() > holders || !g.is_contiguous()) return false;
  long storage_refs = 1;
  for (const std::shared_ptr<TensorImpl>* base = &impl->view_base; *base; base = &(*base)->view_base) {
    if (base->use_count() != 1 || (*base)->storage != impl->storage) return false;
    ++storage_refs;
  }
  return impl->storage.use_count() == storage_refs &&
         impl->storage->nbytes() == static_cast<size_t>(g.numel()) * g.itemsize();
}
}  // namespace

std::vector<Tensor> AccumulateGrad::apply(std::vector<Tensor>&& grads) {
  std::shared_ptr<TensorImpl> impl = leaf_.lock();
  if (!impl || !grads[0].defined()) return {};
  Tensor leaf(impl);
  AutogradMeta& m = meta(leaf);
  Tensor g = grads[0];
  for (auto& [id, hook] : m.leaf_hooks) {
    Tensor replaced = hook(g);
    if (replaced.defined()) g = checked_hook_result(g, replaced);
  }
  if (!m.grad.defined()) {
    // Own the buffer: the incoming gradient may alias another tensor (e.g. a broadcast of the seed). A
    // contiguous gradient that nothing else can reach (as PyTorch, which steals such a buffer) is taken as is.
    if (creating_graph()) {
      m.grad = g;
    } else if (only_reference(g, grads[0])) {
      auto owned = std::make_shared<TensorImpl>();
      owned->storage = g.impl()->storage;
      owned->offset = g.offset();
      owned->sizes = g.sizes();
      owned->strides = g.strides();
      owned->dtype = g.dtype();
      m.grad = Tensor(std::move(owned));
    } else {
      m.grad = clone(g.detach());
    }
  } else if (creating_graph()) {
    m.grad = add(m.grad, g);
  } else {
    NoGradGuard no_grad;
    add_(m.grad, g);
  }
  for (auto& [id, hook] : m.post_accumulate_hooks) hook(leaf);
  return {};
}

// ---- recording ----

namespace {

bool is_differentiable_dtype(DType dtype) { return is_floating(dtype); }

void record(const OpDef& op, const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs, const Attrs& attrs) {
  bool any = false;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined() && !(op.nondiff_inputs >> i & 1) && inputs[i].requires_grad()) any = true;
  if (!any) return;

  auto node = std::make_shared<OpNode>(op, attrs);
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& in = inputs[i];
    bool needs = in.defined() && !(op.nondiff_inputs >> i & 1) && in.requires_grad();
    node->input_needs_grad.push_back(needs);
    node->next_edges.push_back(needs ? gradient_edge(in) : Edge{});
    node->input_meta.push_back(in.defined() ? TensorMeta{in.sizes(), in.dtype(), in.device()} : TensorMeta{});
    bool save = in.defined() && (op.saved_inputs >> i & 1);
    node->saved_inputs.emplace_back(save ? in : Tensor(), false);
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    Tensor& out = outputs[i];
    node->output_meta.push_back(TensorMeta{out.sizes(), out.dtype(), out.device()});
    if (!is_differentiable_dtype(out.dtype())) continue;
    if (out.impl()->autograd) out = out.detach();  // a kernel returned an existing tensor: keep its history intact
    AutogradMeta& m = meta(out);
    m.grad_fn = node;
    m.output_nr = static_cast<int>(i);
    m.requires_grad = true;
  }
  node->output_hooks.resize(outputs.size());
  if (op.saves_outputs)
    for (Tensor& out : outputs) node->saved_outputs.emplace_back(out, true, node);
}

// The in-place hooks (ops/registry.h, InplaceAutogradHooks). adopt_history points `self` at the autograd node that
// produced `source` (keeping self's own hooks and .grad slot fresh).
void adopt_history(const Tensor& self, const Tensor& source) {
  // retain_grad() follows the tensor to its new value (as in PyTorch): the old node stops writing .grad.
  bool retains = false;
  Tensor kept_grad;
  if (AutogradMeta* old = self.impl()->autograd.get(); old && old->retains_grad) {
    retains = true;
    kept_grad = old->grad;
    if (old->grad_fn && old->output_nr < static_cast<int>(old->grad_fn->output_hooks.size()))
      std::erase_if(old->grad_fn->output_hooks[old->output_nr], [](const auto& h) { return h.first == -1; });
  }
  auto m = std::make_shared<AutogradMeta>();
  if (const AutogradMeta* from = source.impl()->autograd.get()) {
    m->grad_fn = from->grad_fn;
    m->output_nr = from->output_nr;
    m->requires_grad = from->requires_grad;
  }
  m->grad = kept_grad;
  self.impl()->autograd = std::move(m);
  if (retains && !self.is_leaf()) self.retain_grad();
}

}  // namespace

void install_recorder() {
  set_autograd_recorder(&record);
  set_inplace_autograd_hooks({&protect_saved_from_inplace, &adopt_history});
}

}  // namespace loom::autograd

namespace loom {

Tensor BackwardContext::grad(size_t i) const {
  if (i < grads.size() && grads[i].defined()) return grads[i];
  return zeros(output_meta[i].sizes, output_meta[i].dtype, output_meta[i].device);
}

}  // namespace loom
