// Autograd graph nodes. Each op call that needs gradients records one OpNode pointing at the nodes that
// produced its inputs; leaves end in an AccumulateGrad node that writes .grad.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "loom/ops/registry.h"

namespace loom::autograd {

class Node;
using Hook = std::function<Tensor(const Tensor&)>;

// Where a gradient goes: input `input_nr` of `node` (the output number of the tensor it came from).
struct Edge {
  std::shared_ptr<Node> node;
  int input_nr = 0;
  bool valid() const { return node != nullptr; }
};

class Node : public std::enable_shared_from_this<Node> {
 public:
  Node();
  virtual ~Node() = default;
  // grads[i] is the gradient w.r.t. this node's output i (undefined if none flowed).
  // Returns one gradient per next edge.
  virtual std::vector<Tensor> apply(std::vector<Tensor>&& grads) = 0;
  virtual std::string name() const = 0;
  virtual size_t num_outputs() const = 0;
  // Drops saved tensors once backward no longer needs them (retain_graph=False).
  virtual void release_saved() {}

  std::vector<Edge> next_edges;
  // Hooks on the gradient of output i, run before apply (tensor.register_hook on a non-leaf).
  std::vector<std::vector<std::pair<int64_t, Hook>>> output_hooks;
  uint64_t sequence_nr;  // creation order: later nodes run first when several are ready
};

struct AutogradMeta {
  bool requires_grad = false;
  Tensor grad;
  std::shared_ptr<Node> grad_fn;
  int output_nr = 0;
  std::weak_ptr<Node> grad_accumulator;
  std::vector<std::pair<int64_t, Hook>> leaf_hooks;
  // Run with the leaf after its .grad has been accumulated (Tensor.register_post_accumulate_grad_hook).
  std::vector<std::pair<int64_t, std::function<void(const Tensor&)>>> post_accumulate_hooks;
  bool retains_grad = false;
};

// A tensor saved for backward: remembers the version it had so a later in-place write is caught.
class SavedTensor {
 public:
  SavedTensor() = default;
  SavedTensor(const Tensor& tensor, bool is_output, const std::shared_ptr<Node>& owner = nullptr);
  // Returns the tensor, raising if it was modified in place since it was saved.
  Tensor unpack(const std::string& op_name, bool with_history) const;
  void reset() { data_ = Tensor(); }
  bool defined() const { return data_.defined(); }
  // If the saved tensor lives in `storage` and is still at `version`, replaces it with a copy so that an
  // in-place write about to happen to that storage does not invalidate it.
  void snapshot_if_aliases(const Storage* storage, uint64_t version);

 private:
  Tensor data_;
  uint64_t version_ = 0;
  bool is_output_ = false;
  std::weak_ptr<Node> owner_;  // for outputs: the node that produced them (kept weak to avoid a cycle)
  int output_nr_ = 0;
};

// The node recorded for one call of a registry op.
class OpNode final : public Node {
 public:
  OpNode(const OpDef& op, Attrs attrs) : op_(op), attrs_(std::move(attrs)) {}
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override;
  std::string name() const override { return op_.name; }
  size_t num_outputs() const override { return output_meta.size(); }
  void release_saved() override;

  std::vector<SavedTensor> saved_inputs;
  std::vector<SavedTensor> saved_outputs;
  std::vector<TensorMeta> input_meta;
  std::vector<TensorMeta> output_meta;
  std::vector<bool> input_needs_grad;

 private:
  const OpDef& op_;
  Attrs attrs_;
  bool released_ = false;
};

// Writes incoming gradients into a leaf's .grad (accumulating), after the leaf's hooks.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf) : leaf_(leaf) {}
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override;
  std::string name() const override { return "AccumulateGrad"; }
  size_t num_outputs() const override { return 1; }
  std::shared_ptr<TensorImpl> leaf() const { return leaf_.lock(); }

 private:
  std::weak_ptr<TensorImpl> leaf_;
};

// The autograd meta of a tensor, created on demand.
AutogradMeta& meta(const Tensor& tensor);
const AutogradMeta* meta_if(const Tensor& tensor);
// The edge a gradient w.r.t. `tensor` flows into (grad_fn or the leaf's accumulator); invalid if none.
Edge gradient_edge(const Tensor& tensor);
// If `tensor` is a view whose storage was written in place after its history was set (through the base or
// another view) and the base requires grad, rebuilds its history as as_strided(base) of the base's current
// history (PyTorch regenerates a view's grad_fn the same way). Without this, a view taken before
// `y.mul_(2)` would keep differentiating through the old y. Cheap when there is nothing to do.
void refresh_view_history(const Tensor& tensor);
// Called by the engine after backward: whether create_graph is in effect for saved-tensor unpacking.
bool creating_graph();
void set_creating_graph(bool value);

// An in-place op computes `result` out of place and then overwrites `self`: the nodes recorded while computing
// `result` (e.g. mul_'s mul, which saves self) must keep the value self had before the write, as PyTorch's
// in-place formulas keep `original_self`. Copies those saved tensors; nodes recorded before are left alone, so
// reading a tensor modified after it was saved still raises.
void protect_saved_from_inplace(const Tensor& result, const Tensor& self);

// torch.Tensor.register_post_accumulate_grad_hook: `hook(leaf)` runs each time backward has accumulated into the
// leaf's .grad (DDP starts a bucket's all-reduce from it). Leaves only; removed with Tensor::remove_hook.
int64_t register_post_accumulate_grad_hook(const Tensor& leaf, std::function<void(const Tensor&)> hook);

// A hook's replacement gradient, after checking it keeps the gradient's shape and dtype (raises otherwise).
Tensor checked_hook_result(const Tensor& grad, const Tensor& replaced);

// Installs the recorder and the in-place hooks into the dispatcher (done by loom/init.cpp).
void install_recorder();

}  // namespace loom::autograd
