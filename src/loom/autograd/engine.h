// The backward engine: runs the graph from some roots to the leaves (or to chosen inputs, for grad()).
#pragma once
#include <vector>

#include "loom/core/tensor.h"

namespace loom::autograd {

// Tensor.backward / loom.autograd.backward: accumulates into the .grad of leaves.
void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots, bool retain_graph,
              bool create_graph);

// loom.autograd.grad: returns d(roots)/d(inputs) without touching .grad. With allow_unused, an input the
// roots do not depend on gets an undefined tensor; otherwise that raises.
std::vector<Tensor> grad(const std::vector<Tensor>& roots, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_roots, bool retain_graph, bool create_graph,
                         bool allow_unused);

}  // namespace loom::autograd
