// Tensor creation: empty/zeros/ones/full(_like), arange, linspace, eye, scalar_tensor, fill_.
#pragma once
#include <optional>

#include "loom/core/tensor.h"

namespace loom {

Tensor empty(const Shape& sizes, DType dtype = DType::Float32, Device device = Device());
Tensor zeros(const Shape& sizes, DType dtype = DType::Float32, Device device = Device());
Tensor ones(const Shape& sizes, DType dtype = DType::Float32, Device device = Device());
Tensor full(const Shape& sizes, Scalar value, DType dtype, Device device = Device());
// full with the dtype inferred from the value (bool, int64 or the default float), as torch.full does.
Tensor full(const Shape& sizes, Scalar value, Device device = Device());
Tensor empty_like(const Tensor& t, std::optional<DType> dtype = std::nullopt);
Tensor zeros_like(const Tensor& t, std::optional<DType> dtype = std::nullopt);
Tensor ones_like(const Tensor& t, std::optional<DType> dtype = std::nullopt);
Tensor full_like(const Tensor& t, Scalar value, std::optional<DType> dtype = std::nullopt);
// A 0-d tensor holding `value`; dtype defaults to the value's own (bool, int64, default float).
Tensor scalar_tensor(Scalar value, std::optional<DType> dtype = std::nullopt, Device device = Device());
// The 0-d "wrapped number" an op makes from a Python number: lowest priority in type promotion.
Tensor wrapped_scalar(Scalar value, Device device = Device());

// [start, end) in steps of `step`; dtype defaults to int64 when all three are integers, else the default float.
Tensor arange(Scalar start, Scalar end, Scalar step = Scalar(int64_t(1)), std::optional<DType> dtype = std::nullopt,
              Device device = Device());
Tensor linspace(double start, double end, int64_t steps, DType dtype = DType::Float32, Device device = Device());
Tensor eye(int64_t n, std::optional<int64_t> m = std::nullopt, DType dtype = DType::Float32, Device device = Device());

// Writes `value` into every element of `t` (in place, through views).
Tensor& fill_(Tensor& t, Scalar value);
Tensor& zero_(Tensor& t);

// Raises ValueError naming `op` when `value` does not fit `dtype` (PyTorch's overflow rule, as full and fill_
// apply it: integers must be in range, floats are truncated, unsigned types also take -max..-1).
void check_value_fits(Scalar value, DType dtype, const char* op);

// Tensor from host data: `data` holds numel(sizes) elements of `dtype`, copied.
Tensor from_blob_copy(const void* data, const Shape& sizes, DType dtype, Device device = Device());

}  // namespace loom
