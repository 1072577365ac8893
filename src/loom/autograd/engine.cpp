#include "loom/autograd/engine.h"

#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "loom/autograd/grad_mode.h"
#include "loom/autograd/node.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"

namespace loom::autograd {

namespace {

struct NodeOrder {
  bool operator()(const Node* a, const Node* b) const { return a->sequence_nr < b->sequence_nr; }
};

struct CreatingGraphScope {
  bool previous = creating_graph();
  explicit CreatingGraphScope(bool value) { set_creating_graph(value); }
  ~CreatingGraphScope() { set_creating_graph(previous); }
};

// Where grad() wants a gradient captured: (node, output number) -> slot in the result.
struct Capture {
  Node* node;
  int output_nr;
  size_t slot;
};

std::vector<Tensor> run_engine(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots,
                               bool retain_graph, bool create_graph, const std::vector<Capture>& captures,
                               size_t num_captures, const char* api) {
  LOOM_CHECK(grad_roots.empty() || grad_roots.size() == roots.size(), Value, api, ": got ", roots.size(),
             " tensors and ", grad_roots.size(), " gradients");
  std::unordered_map<Node*, std::vector<Tensor>> buffers;
  std::vector<std::shared_ptr<Node>> root_nodes;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& root = roots[i];
    Edge edge = gradient_edge(root);
    LOOM_CHECK(edge.valid(), Runtime, api, ": element ", i, " of tensors does not require grad and does not have a grad_fn");
    Tensor seed;
    if (!grad_roots.empty() && grad_roots[i].defined()) {
      seed = grad_roots[i];
      LOOM_CHECK(seed.sizes() == root.sizes(), Value, api, ": gradient has shape ", shape_str(seed.sizes()),
                 " but the output has shape ", shape_str(root.sizes()));
      LOOM_CHECK(seed.device() == root.device(), Value, api, ": invalid gradient at index ", i, ": expected device ",
                 root.device().str(), " but got ", seed.device().str());
    } else {
      LOOM_CHECK(root.numel() == 1, Runtime, api, ": grad can be implicitly created only for scalar outputs (got shape ",
                 shape_str(root.sizes()), ")");
      seed = ones_like(root);
    }
    auto& buffer = buffers[edge.node.get()];
    buffer.resize(edge.node->num_outputs());
    Tensor& slot = buffer[edge.input_nr];
    slot = slot.defined() ? add(slot, seed) : seed;
    root_nodes.push_back(edge.node);
  }

  // Count, for every reachable node, how many edges lead into it.
  std::unordered_map<Node*, int> dependencies;
  std::unordered_set<Node*> seen;
  std::vector<Node*> stack;
  for (auto& n : root_nodes)
    if (seen.insert(n.get()).second) stack.push_back(n.get());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next_edges) {
      if (!e.valid()) continue;
      ++dependencies[e.node.get()];
      if (seen.insert(e.node.get()).second) stack.push_back(e.node.get());
    }
  }

  bool capturing = !captures.empty() || num_captures > 0;
  std::vector<Tensor> captured(num_captures);
  std::priority_queue<Node*, std::vector<Node*>, NodeOrder> ready;
  std::unordered_set<Node*> queued;
  for (auto& n : root_nodes)
    if (dependencies[n.get()] == 0 && queued.insert(n.get()).second) ready.push(n.get());

  CreatingGraphScope graph_scope(create_graph);
  EnableGradGuard grad_mode(create_graph);
  while (!ready.empty()) {
    Node* node = ready.top();
    ready.pop();
    std::vector<Tensor> grads = std::move(buffers[node]);
    buffers.erase(node);
    grads.resize(node->num_outputs());
    for (size_t i = 0; i < grads.size() && i < node->output_hooks.size(); ++i)
      for (auto& [id, hook] : node->output_hooks[i])
        if (grads[i].defined()) {
          Tensor replaced = hook(grads[i]);
          if (replaced.defined()) grads[i] = checked_hook_result(grads[i], replaced);
        }
    for (const Capture& c : captures)
      if (c.node == node && grads[c.output_nr].defined())
        captured[c.slot] = captured[c.slot].defined() ? add(captured[c.slot], grads[c.output_nr]) : grads[c.output_nr];

    std::vector<Tensor> input_grads;
    bool is_accumulator = dynamic_cast<AccumulateGrad*>(node) != nullptr;
    if (!(capturing && is_accumulator)) input_grads = node->apply(std::move(grads));
    if (!retain_graph) node->release_saved();

    for (size_t i = 0; i < node->next_edges.size(); ++i) {
      const Edge& e = node->next_edges[i];
      if (!e.valid()) continue;
      Node* next = e.node.get();
      if (i < input_grads.size() && input_grads[i].defined()) {
        auto& buffer = buffers[next];
        buffer.resize(next->num_outputs());
        Tensor& slot = buffer[e.input_nr];
        slot = slot.defined() ? add(slot, input_grads[i]) : input_grads[i];
      }
      if (--dependencies[next] == 0 && queued.insert(next).second) ready.push(next);
    }
  }
  return captured;
}

}  // namespace

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots, bool retain_graph,
              bool create_graph) {
  run_engine(roots, grad_roots, retain_graph || create_graph, create_graph, {}, 0, "backward");
}

std::vector<Tensor> grad(const std::vector<Tensor>& roots, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_roots, bool retain_graph, bool create_graph,
                         bool allow_unused) {
  LOOM_CHECK(!inputs.empty(), Value, "grad: expected at least one input tensor");
  std::vector<Capture> captures;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Edge edge = gradient_edge(inputs[i]);
    LOOM_CHECK(edge.valid(), Runtime, "grad: input ", i, " does not require grad");
    captures.push_back({edge.node.get(), edge.input_nr, i});
  }
  std::vector<Tensor> result =
      run_engine(roots, grad_roots, retain_graph || create_graph, create_graph, captures, inputs.size(), "grad");
  for (size_t i = 0; i < result.size(); ++i)
    LOOM_CHECK(result[i].defined() || allow_unused, Runtime, "grad: input ", i,
               " was not used in the graph; pass allow_unused=True if this is intended");
  return result;
}

}  // namespace loom::autograd
