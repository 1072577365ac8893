// Indexing and data movement: cat/stack, index_select/index_add/index_copy, gather/scatter, masked ops,
// nonzero, and layout helpers built on them (flip, roll, repeat, tril/triu, pad, one_hot, embedding).
// Index tensors hold integers (int64; index_select/index_add/index_copy also take int32). An index outside
// its dimension raises IndexError naming the op, the index value and the size; kernels never read out of bounds.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "loom/core/tensor.h"

namespace loom {

// Concatenates along `dim`. Dtypes promote like torch.cat (torch.result_type over all inputs); 1-D empty
// tensors (the legacy "no data" placeholder) are skipped for the shape check. Differentiable per input.
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
// Stacks equally shaped tensors along a new dim `dim` (in [-ndim-1, ndim]).
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);

// cat along dim 1 (dim 0 for 1-D inputs), along dim 0 after promoting inputs to at least 2-D.
Tensor hstack(const std::vector<Tensor>& tensors);
Tensor vstack(const std::vector<Tensor>& tensors);
// Coordinate grids from 1-D (or 0-d) tensors; indexing "ij" (matrix) or "xy" (Cartesian: first two swapped).
// The results are broadcast views of the inputs.
std::vector<Tensor> meshgrid(const std::vector<Tensor>& tensors, const std::string& indexing = "ij");

// out = self with dim `dim` replaced by index's elements: out[.., j, ..] = self[.., index[j], ..].
// index is 0-d or 1-D; negative indices are errors (as in PyTorch). Backward: index_add into zeros.
Tensor index_select(const Tensor& self, int64_t dim, const Tensor& index);
// out-of-place: self with alpha * source[.., j, ..] added to slot index[j] along dim (repeats accumulate).
Tensor index_add(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& source,
                 Scalar alpha = Scalar(int64_t(1)));
// out-of-place: self with slot index[j] along dim replaced by source[.., j, ..].
Tensor index_copy(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& source);
// out-of-place index_fill: slots index[j] along dim set to value.
Tensor index_fill(const Tensor& self, int64_t dim, const Tensor& index, Scalar value);

// out[i][j] = self[index[i][j]][j] (dim 0). index has self's rank and sizes <= self's outside `dim`.
Tensor gather(const Tensor& self, int64_t dim, const Tensor& index);
// out-of-place: out[index[i][j]][j] = src[i][j] (dim 0); index sizes <= src's, and <= self's outside dim.
Tensor scatter(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src);
Tensor scatter(const Tensor& self, int64_t dim, const Tensor& index, Scalar value);
// out-of-place: out[index[i][j]][j] += src[i][j] (dim 0).
Tensor scatter_add(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src);

// self where mask (broadcast) is false, value where it is true; the result keeps self's dtype.
Tensor masked_fill(const Tensor& self, const Tensor& mask, Scalar value);
// value: a 0-d tensor (differentiable).
Tensor masked_fill(const Tensor& self, const Tensor& mask, const Tensor& value);
// The elements of self (broadcast with mask) where mask is true, as a 1-D tensor.
Tensor masked_select(const Tensor& self, const Tensor& mask);
// The indices of the non-zero elements, shape (count, ndim), int64, in row-major order.
Tensor nonzero(const Tensor& self);
// nonzero as one 1-D index tensor per dim (a 0-d input counts as 1-D).
std::vector<Tensor> nonzero_tuple(const Tensor& self);

// In-place variants (write through views; autograd history is rebased as for every in-place op).
Tensor& index_add_(Tensor& self, int64_t dim, const Tensor& index, const Tensor& source,
                   Scalar alpha = Scalar(int64_t(1)));
Tensor& index_copy_(Tensor& self, int64_t dim, const Tensor& index, const Tensor& source);
Tensor& index_fill_(Tensor& self, int64_t dim, const Tensor& index, Scalar value);
Tensor& scatter_(Tensor& self, int64_t dim, const Tensor& index, const Tensor& src);
Tensor& scatter_(Tensor& self, int64_t dim, const Tensor& index, Scalar value);
Tensor& scatter_add_(Tensor& self, int64_t dim, const Tensor& index, const Tensor& src);
Tensor& masked_fill_(Tensor& self, const Tensor& mask, Scalar value);
Tensor& masked_fill_(Tensor& self, const Tensor& mask, const Tensor& value);

// ---- layout ops built on the above ----

// Reverses the order of elements along each of `dims`.
Tensor flip(const Tensor& self, const std::vector<int64_t>& dims);
// Rolls elements along dims (shifts and dims pair up); with no dims the flattened tensor is rolled.
Tensor roll(const Tensor& self, const std::vector<int64_t>& shifts, const std::vector<int64_t>& dims = {});
// Tiles the tensor: sizes has at least self.dim() entries (extra leading ones add dims), as Tensor.repeat.
Tensor repeat(const Tensor& self, const std::vector<int64_t>& sizes);
// torch.tile: repeat with dims padded by leading ones when shorter than self.dim().
Tensor tile(const Tensor& self, const std::vector<int64_t>& dims);
// Lower/upper triangle of the last two dims: elements with col - row <= diagonal (tril), >= diagonal (triu).
Tensor tril(const Tensor& self, int64_t diagonal = 0);
Tensor triu(const Tensor& self, int64_t diagonal = 0);
// Constant padding in torch.nn.functional.pad's order: (last_left, last_right, 2nd_last_left, ...).
// Negative pads crop.
Tensor pad(const Tensor& self, const std::vector<int64_t>& pads, double value = 0.0);
// int64 tensor of shape self.shape + (num_classes,); num_classes = -1 means max(self) + 1.
Tensor one_hot(const Tensor& self, int64_t num_classes = -1);
// Rows of weight (num_embeddings, dim) picked by indices; rows equal to padding_idx get no gradient.
Tensor embedding(const Tensor& weight, const Tensor& indices, std::optional<int64_t> padding_idx = std::nullopt);

namespace detail {
// The int64 copy of `index` with negatives in [-size, 0) wrapped; raises IndexError naming `op` (and `dim`)
// for values outside [-size, size). The bounds check behind Python indexing.
Tensor wrap_index(const Tensor& index, int64_t size, int64_t dim, const char* op);
}  // namespace detail

}  // namespace loom
