// The _to_device op (see ops/device.h). Its one kernel is device-independent: it allocates on the destination and
// moves the bytes with copy_bytes, which routes through the backends' copy functions (core/backend.h).
#include "loom/ops/device.h"

#include "loom/ops/registry.h"
#include "loom/ops/shape.h"

namespace loom {

namespace {

std::vector<TensorMeta> infer_to_device(const std::vector<Tensor>& in, const Attrs& a) {
  return {TensorMeta{in[0].sizes(), in[0].dtype(), resolve_device_index(a.get<Device>("device"))}};
}

std::vector<Tensor> to_device_backward(BackwardContext& c) { return {to_device(c.grad(), c.input_meta[0].device)}; }

std::vector<Tensor> to_device_kernel(const KernelContext& ctx) {
  const Tensor& src = ctx.inputs[0];
  const Tensor dense = contiguous(src);  // on the source device, so one copy moves it
  // Not ctx.alloc(0): the kernel runs for the source device, the output lives on the destination.
  Tensor out = Tensor::empty(src.sizes(), src.dtype(), ctx.outputs[0].device);
  const size_t nbytes = static_cast<size_t>(dense.numel()) * dense.itemsize();
  copy_bytes(out.data_ptr(), out.device(), dense.data_ptr(), dense.device(), nbytes,
             ctx.attrs.get_or<bool>("non_blocking", false));
  return {out};
}

}  // namespace

void define_device_ops(Registry& r) {
  r.define({.name = "_to_device", .infer = infer_to_device, .backward = to_device_backward, .saved_inputs = 0});
  r.set_kernel("_to_device", DeviceType::Any, to_device_kernel);
}

Tensor to_device(const Tensor& t, Device device, bool non_blocking, bool copy) {
  LOOM_CHECK(t.defined(), Value, "to: the tensor is undefined");
  const Device target = resolve_device_index(device);
  if (target == t.device()) return copy ? clone(t) : t;
  return dispatch1(LOOM_OP("_to_device"), {t}, Attrs().set("device", target).set("non_blocking", non_blocking));
}

}  // namespace loom
