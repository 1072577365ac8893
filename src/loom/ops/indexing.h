// Python-style indexing in C++: tensor[indices] (index) and tensor[indices] = value (index_put_), with
// PyTorch's semantics. Basic indices (ints, slices, None, Ellipsis) give views; integer and bool tensors are
// advanced indices: they broadcast together, and their result dims replace the indexed dims in place when
// the advanced indices are adjacent, or go first when a slice/None separates them (as in PyTorch/NumPy).
#pragma once
#include <optional>
#include <vector>

#include "loom/core/tensor.h"

namespace loom {

struct TensorIndex {
  enum class Kind { Integer, Slice, None, Ellipsis, Boolean, Tensor };
  Kind kind = Kind::None;
  int64_t integer = 0;                 // Integer
  std::optional<int64_t> start, stop;  // Slice (Python bounds, clamped)
  int64_t step = 1;                    // Slice (must be positive)
  bool boolean = false;                // Boolean: True adds a size-1 dim, False a size-0 dim
  loom::Tensor tensor;                 // Tensor: an integer index or a bool/uint8 mask

  static TensorIndex make_integer(int64_t i) {
    TensorIndex ix = of(Kind::Integer);
    ix.integer = i;
    return ix;
  }
  static TensorIndex make_slice(std::optional<int64_t> start, std::optional<int64_t> stop, int64_t step = 1) {
    TensorIndex ix = of(Kind::Slice);
    ix.start = start;
    ix.stop = stop;
    ix.step = step;
    return ix;
  }
  static TensorIndex make_none() { return of(Kind::None); }
  static TensorIndex make_ellipsis() { return of(Kind::Ellipsis); }
  static TensorIndex make_boolean(bool b) {
    TensorIndex ix = of(Kind::Boolean);
    ix.boolean = b;
    return ix;
  }
  static TensorIndex make_tensor(const loom::Tensor& t) {
    TensorIndex ix = of(Kind::Tensor);
    ix.tensor = t;
    return ix;
  }

 private:
  static TensorIndex of(Kind kind) {
    TensorIndex ix;
    ix.kind = kind;
    return ix;
  }
};

// self[indices]: a view when every index is basic, otherwise a new tensor (differentiable either way).
// Raises IndexError for out-of-range ints/indices, too many indices or mismatched masks; ValueError for a
// non-positive slice step.
Tensor index(const Tensor& self, const std::vector<TensorIndex>& indices);

// self[indices] = value, written into self's storage (through views too). value broadcasts to the indexed
// shape (leading size-1 dims of value are ignored) and is cast to self's dtype. Differentiable w.r.t. self
// and value: autograd history is rebased like every in-place op.
Tensor& index_put_(Tensor& self, const std::vector<TensorIndex>& indices, const Tensor& value);
Tensor& index_put_(Tensor& self, const std::vector<TensorIndex>& indices, Scalar value);

// torch.index_put: out-of-place; indices is one tensor (or undefined = every position) per leading dim;
// with accumulate, repeated positions add up (index_add), otherwise one of the writes wins.
Tensor index_put(const Tensor& self, const std::vector<Tensor>& indices, const Tensor& values, bool accumulate = false);
Tensor& index_put_(Tensor& self, const std::vector<Tensor>& indices, const Tensor& values, bool accumulate = false);
// Elements of self viewed as 1-D at `index` (negative indices count from the end); shape of index.
Tensor take(const Tensor& self, const Tensor& index);
// gather with self and indices broadcast outside `dim`; without dim, on the flattened tensors.
Tensor take_along_dim(const Tensor& self, const Tensor& indices, std::optional<int64_t> dim = std::nullopt);

}  // namespace loom
