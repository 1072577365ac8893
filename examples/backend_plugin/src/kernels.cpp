// The kernels of the simulated device. Its "hardware" is the host, so its compute library is loom's own CPU ops: a
// kernel queues a task on the op's stream that views the device buffers through the private mapping as CPU tensors
// and runs the op there. What this exercises is everything around a kernel that a real backend has too: output
// allocation on the device, the stream in KernelContext, asynchronous execution, lifetimes of the tensors a queued
// kernel uses, and the composites and fallback that cover the ops it does not claim (docs/backends.md).
#include "kernels.h"

#include <string>

#include "loom/ops/registry.h"
#include "vdev_backend.h"
#include "work_queue.h"

namespace vdev {

namespace {

using loom::Tensor;

WorkQueue& queue_of(const loom::KernelContext& ctx) { return streams().get(ctx.device.index, ctx.stream.id); }

// A CPU tensor over a vdev tensor's bytes (through the private mapping): only for use on a stream thread, where the
// work queued before has run. CPU tensors (0-d numbers) are returned as they are.
Tensor host_alias(const Tensor& t) {
  if (!t.defined() || t.device().is_cpu()) return t;
  auto impl = std::make_shared<loom::TensorImpl>();
  impl->storage = loom::Storage::wrap(to_private(t.storage()->data()), t.storage()->nbytes(), loom::Device(), nullptr);
  impl->offset = t.offset();
  impl->sizes = t.sizes();
  impl->strides = t.strides();
  impl->dtype = t.dtype();
  impl->wrapped_number = t.impl()->wrapped_number;
  return Tensor(std::move(impl));
}

// The inputs a queued task keeps: device tensors by handle (their memory stays allocated until the task has run),
// host numbers copied now, since the caller may change them before the stream gets to the task.
std::vector<Tensor> captured_inputs(const std::vector<Tensor>& inputs) {
  std::vector<Tensor> kept = inputs;
  for (Tensor& t : kept)
    if (t.defined() && t.device().is_cpu()) t = loom::dispatch1(loom::Registry::instance().op("clone"), {t});
  return kept;
}

// The generic kernel: runs ctx.op's CPU kernel on the stream thread and writes its results into device outputs.
std::vector<Tensor> offload_kernel(const loom::KernelContext& ctx) {
  const loom::OpDef* op = ctx.op;
  std::vector<Tensor> outputs;
  if (op->mutates_inputs) {
    // copy and fill write into input 0 and return it; the fused optimizers return nothing.
    if (!ctx.outputs.empty()) outputs.push_back(ctx.inputs[0]);
  } else {
    for (size_t i = 0; i < ctx.outputs.size(); ++i) outputs.push_back(ctx.alloc(i));
  }
  loom::Attrs attrs = ctx.attrs;
  if (attrs.has("device")) attrs.set("device", loom::Device());  // factories: the CPU kernel fills host memory
  bool host_state = false;  // a mutating op that updates host tensors (an optimizer's step counts) must finish now
  for (const Tensor& t : ctx.inputs) host_state |= op->mutates_inputs && t.defined() && t.device().is_cpu();
  std::vector<Tensor> inputs = host_state ? ctx.inputs : captured_inputs(ctx.inputs);
  WorkQueue& queue = queue_of(ctx);
  queue.push([op, inputs = std::move(inputs), attrs = std::move(attrs), outputs] {
    std::vector<Tensor> host_inputs;
    for (const Tensor& t : inputs) host_inputs.push_back(host_alias(t));
    std::vector<Tensor> results = loom::dispatch(*op, host_inputs, attrs);
    if (op->mutates_inputs) return;
    const loom::OpDef& copy = loom::Registry::instance().op("copy");
    for (size_t i = 0; i < outputs.size(); ++i) loom::dispatch(copy, {host_alias(outputs[i]), results[i]});
  });
  if (host_state) queue.synchronize();
  return outputs;
}

// What this backend claims: the minimal set a backend needs to train (docs/backends.md). Views, clone, to_dtype and
// cat are device-independent; addmm, layer norm, cross-entropy, attention and the fused backward ops come from their
// composites; anything else raises NotImplementedError unless the CPU fallback is on.
const char* const kClaimedOps[] = {
    // memory: copy and fill; factories
    "copy", "fill", "full", "arange", "linspace",
    // elementwise, binary and unary
    "add", "sub", "mul", "div", "remainder", "pow", "maximum", "minimum", "atan2", "eq", "ne", "lt", "le", "gt", "ge",
    "logical_and", "logical_or", "logical_xor", "logical_not", "bitwise_and", "bitwise_or", "bitwise_xor",
    "bitwise_not", "where", "clamp", "isnan", "isinf", "isfinite", "neg", "abs", "sign", "floor", "ceil", "round",
    "trunc", "exp", "expm1", "log", "log1p", "log2", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "erf",
    "reciprocal", "gelu", "silu", "softplus", "relu", "leaky_relu",
    // reductions
    "sum", "prod", "amax", "amin", "max_dim", "min_dim", "all", "any", "cumsum",
    // matrix products
    "mm", "bmm",
    // softmax
    "softmax", "log_softmax",
    // embedding and index ops
    "index_select", "index_add", "index_copy", "gather", "scatter", "scatter_add", "wrap_index",
    // random numbers (same Philox stream as the CPU)
    "uniform", "normal", "bernoulli", "randint", "randperm",
    // optimizer updates
    "_fused_sgd_", "_fused_adam_", "_fused_adamw_"};

}  // namespace

void register_kernels(loom::DeviceType type) {
  loom::Registry& registry = loom::Registry::instance();
  for (const char* op : kClaimedOps) registry.set_kernel(op, type, offload_kernel);
}

std::vector<std::string> claimed_ops() { return {std::begin(kClaimedOps), std::end(kClaimedOps)}; }

}  // namespace vdev
