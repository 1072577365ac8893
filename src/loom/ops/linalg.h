// Matrix products: matmul (PyTorch's 1-D/2-D/batched broadcasting rules), mm, bmm, addmm, linear, outer.
#pragma once
#include <string>
#include <vector>

#include "loom/core/tensor.h"

namespace loom {

// torch.matmul: 1-D x 1-D is a dot product, 1-D operands are promoted to matrices and the added dim removed,
// batch dims broadcast.
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor mm(const Tensor& a, const Tensor& b);    // (n, k) @ (k, m)
Tensor bmm(const Tensor& a, const Tensor& b);   // (B, n, k) @ (B, k, m)
// beta * input + alpha * (a @ b)
Tensor addmm(const Tensor& input, const Tensor& a, const Tensor& b, Scalar beta = Scalar(int64_t(1)),
             Scalar alpha = Scalar(int64_t(1)));
// x @ weight^T + bias, weight (out_features, in_features); bias may be undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
Tensor outer(const Tensor& a, const Tensor& b);
Tensor dot(const Tensor& a, const Tensor& b);
// Einstein summation over one or two operands ("ij,jk->ik", "bhqd,bhkd->bhqk", "i,j->ij", "ii->" is not
// supported: an index may appear once per operand). Without "->", the output is the alphabetical list of
// indices that appear exactly once, as in NumPy. "..." broadcasts leading dims.
Tensor einsum(const std::string& equation, const std::vector<Tensor>& operands);

}  // namespace loom
