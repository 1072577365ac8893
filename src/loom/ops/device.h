// Moving tensors between devices: the one op that reads on one device and writes on another.
#pragma once
#include "loom/core/tensor.h"

namespace loom {

// A copy of `t` on `device` (PyTorch's Tensor.to(device)): `t` itself when it is already there and `copy` is false.
// Differentiable: the gradient goes back to t's device. non_blocking lets a host<->device copy return before it has
// run (as CUDA's does from pinned memory); the result is then only safe to use on the device's current stream.
Tensor to_device(const Tensor& t, Device device, bool non_blocking = false, bool copy = false);

}  // namespace loom
