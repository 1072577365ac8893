// _split_steps, the per-time-step split of the recurrent layers, with a backward that is one cat.
#include "loom/ops/rnn.h"
#include "loom/core/checked.h"
#include "loom/ops/creation.h"
#include "loom/ops/index.h"
#include "loom/ops/registry.h"
#include "loom/ops/shape.h"

namespace loom {
namespace {

std::vector<TensorMeta> infer_split_steps(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor& x = in[0];
  const auto& sizes = a.get<std::vector<int64_t>>("sizes");
  LOOM_CHECK(x.dim() > 0, Value, "_split_steps: expected an input with at least 1 dimension, got a 0-d tensor");
  int64_t total = 0;
  std::vector<TensorMeta> out;
  for (int64_t s : sizes) {
    LOOM_CHECK(s >= 0, Value, "_split_steps: sizes must be non-negative, got ", shape_str(sizes));
    total = checked_add(total, s, "_split_steps", "the sum of the sizes");
    Shape shape = x.sizes();
    shape[0] = s;
    out.push_back(TensorMeta{shape, x.dtype(), x.device()});
  }
  LOOM_CHECK(total == x.sizes()[0], Value, "_split_steps: sizes ", shape_str(sizes), " must sum to dim 0 of the input ",
             shape_str(x.sizes()));
  return out;
}

std::vector<Tensor> split_steps_kernel(const KernelContext& c) {
  std::vector<Tensor> out;
  int64_t start = 0;
  for (const TensorMeta& m : c.outputs) {
    out.push_back(clone(narrow(c.inputs[0], 0, start, m.sizes[0])));
    start += m.sizes[0];
  }
  return out;
}

std::vector<Tensor> split_steps_backward(BackwardContext& c) {
  std::vector<Tensor> grads;
  for (size_t i = 0; i < c.output_meta.size(); ++i) grads.push_back(c.grad(i));  // zeros where none flowed
  if (grads.empty()) return {zeros(c.input_meta[0].sizes, c.input_meta[0].dtype, c.input_meta[0].device)};
  return {cat(grads, 0)};
}

}  // namespace

std::vector<Tensor> split_steps(const Tensor& input, const std::vector<int64_t>& sizes) {
  return dispatch(LOOM_OP("_split_steps"), {input}, Attrs().set("sizes", sizes));
}

void define_rnn_ops(Registry& r) {
  r.define({.name = "_split_steps", .infer = infer_split_steps, .backward = split_steps_backward, .saved_inputs = 0});
  r.set_kernel("_split_steps", DeviceType::Any, split_steps_kernel);
}

}  // namespace loom
