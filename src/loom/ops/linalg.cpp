// Matrix product op definitions (mm, bmm are the primitives; the rest are composites).
#include "loom/ops/linalg.h"

#include "loom/ops/elementwise.h"
#include "loom/ops/promotion.h"
#include "loom/ops/reduce.h"
#include "loom/ops/registry.h"
#include "loom/ops/shape.h"

namespace loom {

namespace {

void check_matmul_dtypes(const char* op, const Tensor& a, const Tensor& b) {
  LOOM_CHECK(a.dtype() == b.dtype(), Type, op, ": expected both operands to have the same dtype, got ",
             dtype_name(a.dtype()), " and ", dtype_name(b.dtype()));
  LOOM_CHECK(a.dtype() != DType::Bool, Type, op, ": not supported for bool tensors");
}

std::vector<TensorMeta> infer_mm(const std::vector<Tensor>& in, const Attrs&) {
  const Tensor &a = in[0], &b = in[1];
  LOOM_CHECK(a.dim() == 2 && b.dim() == 2, Value, "mm: expected 2-D tensors, got shapes ", shape_str(a.sizes()),
             " and ", shape_str(b.sizes()));
  LOOM_CHECK(a.sizes()[1] == b.sizes()[0], Value, "mm: cannot multiply shapes ", shape_str(a.sizes()), " and ",
             shape_str(b.sizes()), ": ", a.sizes()[1], " != ", b.sizes()[0]);
  check_matmul_dtypes("mm", a, b);
  return {TensorMeta{{a.sizes()[0], b.sizes()[1]}, a.dtype(), a.device()}};
}

std::vector<TensorMeta> infer_bmm(const std::vector<Tensor>& in, const Attrs&) {
  const Tensor &a = in[0], &b = in[1];
  LOOM_CHECK(a.dim() == 3 && b.dim() == 3, Value, "bmm: expected 3-D tensors, got shapes ", shape_str(a.sizes()),
             " and ", shape_str(b.sizes()));
  LOOM_CHECK(a.sizes()[0] == b.sizes()[0], Value, "bmm: batch sizes differ: shapes ", shape_str(a.sizes()), " and ",
             shape_str(b.sizes()));
  LOOM_CHECK(a.sizes()[2] == b.sizes()[1], Value, "bmm: cannot multiply shapes ", shape_str(a.sizes()), " and ",
             shape_str(b.sizes()), ": ", a.sizes()[2], " != ", b.sizes()[1]);
  check_matmul_dtypes("bmm", a, b);
  return {TensorMeta{{a.sizes()[0], a.sizes()[1], b.sizes()[2]}, a.dtype(), a.device()}};
}

std::vector<Tensor> mm_backward(BackwardContext& c) {
  Tensor g = c.grad();
  return {c.needs_input_grad[0] ? mm(g, t(c.inputs[1])) : Tensor(),
          c.needs_input_grad[1] ? mm(t(c.inputs[0]), g) : Tensor()};
}

std::vector<Tensor> bmm_backward(BackwardContext& c) {
  Tensor g = c.grad();
  return {c.needs_input_grad[0] ? bmm(g, transpose(c.inputs[1], 1, 2)) : Tensor(),
          c.needs_input_grad[1] ? bmm(transpose(c.inputs[0], 1, 2), g) : Tensor()};
}

}  // namespace

void define_linalg_ops(Registry& r) {
  r.define({.name = "mm", .infer = infer_mm, .backward = mm_backward});
  r.define({.name = "bmm", .infer = infer_bmm, .backward = bmm_backward});
}

Tensor mm(const Tensor& a, const Tensor& b) { return dispatch1(LOOM_OP("mm"), {a, b}); }
Tensor bmm(const Tensor& a, const Tensor& b) { return dispatch1(LOOM_OP("bmm"), {a, b}); }

Tensor matmul(const Tensor& a, const Tensor& b) {
  int64_t da = a.dim(), db = b.dim();
  LOOM_CHECK(da > 0 && db > 0, Value, "matmul: both arguments need at least 1 dimension, got shapes ",
             shape_str(a.sizes()), " and ", shape_str(b.sizes()));
  int64_t ka = a.sizes().back(), kb = db == 1 ? b.sizes()[0] : b.sizes()[db - 2];
  LOOM_CHECK(ka == kb, Value, "matmul: cannot multiply shapes ", shape_str(a.sizes()), " and ", shape_str(b.sizes()),
             ": ", ka, " != ", kb);
  check_matmul_dtypes("matmul", a, b);
  if (da == 1 && db == 1) return dot(a, b);
  if (da == 2 && db == 1) return squeeze(mm(a, unsqueeze(b, 1)), {1});
  if (da == 1 && db == 2) return squeeze(mm(unsqueeze(a, 0), b), {0});
  if (da == 2 && db == 2) return mm(a, b);
  if (db <= 2 && da >= 3) {
    // Fold a's batch dims into rows: one large mm instead of many small ones.
    Tensor b2 = db == 1 ? unsqueeze(b, 1) : b;
    Shape out_shape(a.sizes().begin(), a.sizes().end() - 1);
    Tensor rows = reshape(a, {-1, ka});
    Tensor out = mm(rows, b2);
    if (db == 2) out_shape.push_back(b.sizes()[1]);
    return reshape(out, out_shape);
  }
  // General case: broadcast batch dims, then bmm.
  Tensor a3 = da == 1 ? unsqueeze(a, 0) : a;
  Tensor b3 = db == 1 ? unsqueeze(b, 1) : b;
  Shape batch_a(a3.sizes().begin(), a3.sizes().end() - 2), batch_b(b3.sizes().begin(), b3.sizes().end() - 2);
  Shape batch = broadcast_shapes(batch_a, batch_b, "matmul");
  int64_t n = a3.sizes()[a3.dim() - 2], m = b3.sizes()[b3.dim() - 1];
  Shape full_a = batch, full_b = batch;
  full_a.insert(full_a.end(), {n, ka});
  full_b.insert(full_b.end(), {ka, m});
  int64_t batch_count = numel(batch);
  Tensor out = bmm(reshape(expand(a3, full_a), {batch_count, n, ka}), reshape(expand(b3, full_b), {batch_count, ka, m}));
  Shape out_shape = batch;
  if (da > 1) out_shape.push_back(n);
  if (db > 1) out_shape.push_back(m);
  return reshape(out, out_shape);
}

Tensor addmm(const Tensor& input, const Tensor& a, const Tensor& b, Scalar beta, Scalar alpha) {
  Tensor product = mm(a, b);
  if (alpha.to_double() != 1.0) product = mul(product, alpha);
  if (beta.to_double() == 0.0) return product;
  return add(beta.to_double() == 1.0 ? input : mul(input, beta), product);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  LOOM_CHECK(weight.dim() == 2 || weight.dim() == 1, Value, "linear: weight must be 1-D or 2-D, got shape ",
             shape_str(weight.sizes()));
  Tensor out = matmul(x, t(weight));
  return bias.defined() ? add(out, bias) : out;
}

Tensor outer(const Tensor& a, const Tensor& b) {
  LOOM_CHECK(a.dim() == 1 && b.dim() == 1, Value, "outer: expected 1-D tensors, got shapes ", shape_str(a.sizes()),
             " and ", shape_str(b.sizes()));
  return mul(unsqueeze(a, 1), unsqueeze(b, 0));
}

Tensor dot(const Tensor& a, const Tensor& b) {
  LOOM_CHECK(a.dim() == 1 && b.dim() == 1, Value, "dot: expected 1-D tensors, got shapes ", shape_str(a.sizes()),
             " and ", shape_str(b.sizes()));
  LOOM_CHECK(a.sizes()[0] == b.sizes()[0], Value, "dot: inconsistent tensor size, expected tensor [", a.sizes()[0],
             "] and src [", b.sizes()[0], "] to have the same number of elements");
  check_matmul_dtypes("dot", a, b);
  return reshape(mm(unsqueeze(a, 0), unsqueeze(b, 1)), {});
}

}  // namespace loom
