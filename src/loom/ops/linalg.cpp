// Matrix product op definitions (mm, bmm are the primitives; the rest are composites).
#include "loom/ops/linalg.h"

#include <algorithm>
#include <cctype>

#include "loom/ops/composite_hook.h"
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

// Whether the last two dims of m are a transposed contiguous matrix (a weight used as W.t()).
bool is_transposed_matrix(const Tensor& m) {
  int64_t d = m.dim();
  const Shape& s = m.sizes();
  return s[d - 2] > 1 && s[d - 1] > 1 && m.strides()[d - 2] == 1 && m.strides()[d - 1] == s[d - 2];
}

// x @ y, laid out like `like`: when `like` is a transposed contiguous matrix, the product is computed as
// (y^T x^T)^T so that the gradient of t(weight) arrives at weight contiguous (no strided copies in the
// optimizer or in gradient accumulation).
Tensor mm_like(const Tensor& x, const Tensor& y, const Tensor& like) {
  if (is_transposed_matrix(like)) return t(mm(t(y), t(x)));
  return mm(x, y);
}

Tensor scaled(const Tensor& x, double factor) { return factor == 1.0 ? x : mul(x, Scalar(factor)); }

std::vector<Tensor> mm_backward(BackwardContext& c) {
  Tensor g = c.grad();
  const Tensor &a = c.inputs[0], &b = c.inputs[1];
  return {c.needs_input_grad[0] ? mm_like(g, t(b), a) : Tensor(),
          c.needs_input_grad[1] ? mm_like(t(a), g, b) : Tensor()};
}

std::vector<Tensor> bmm_backward(BackwardContext& c) {
  Tensor g = c.grad();
  const Tensor &a = c.inputs[0], &b = c.inputs[1];
  auto tr = [](const Tensor& x) { return transpose(x, 1, 2); };
  Tensor da, db;
  if (c.needs_input_grad[0]) da = is_transposed_matrix(a) ? tr(bmm(b, tr(g))) : bmm(g, tr(b));
  if (c.needs_input_grad[1]) db = is_transposed_matrix(b) ? tr(bmm(tr(g), a)) : bmm(tr(a), g);
  return {da, db};
}

// addmm(input, a, b; beta, alpha) = beta * input + alpha * (a @ b), input broadcast to the product's shape.
// One kernel: the product is accumulated onto the broadcast input (BLAS beta = 1), no separate add.
std::vector<TensorMeta> infer_addmm(const std::vector<Tensor>& in, const Attrs& attrs) {
  const Tensor &input = in[0], &a = in[1], &b = in[2];
  LOOM_CHECK(a.dim() == 2 && b.dim() == 2, Value, "addmm: expected 2-D matrices, got shapes ", shape_str(a.sizes()),
             " and ", shape_str(b.sizes()));
  LOOM_CHECK(a.sizes()[1] == b.sizes()[0], Value, "addmm: cannot multiply shapes ", shape_str(a.sizes()), " and ",
             shape_str(b.sizes()), ": ", a.sizes()[1], " != ", b.sizes()[0]);
  check_matmul_dtypes("addmm", a, b);
  LOOM_CHECK(input.dtype() == a.dtype(), Type, "addmm: expected input to have dtype ", dtype_name(a.dtype()), ", got ",
             dtype_name(input.dtype()));
  Shape out{a.sizes()[0], b.sizes()[1]};
  LOOM_CHECK(input.dim() <= 2 && broadcast_shapes(input.sizes(), out, "addmm") == out, Value, "addmm: input of shape ",
             shape_str(input.sizes()), " does not broadcast to the product's shape ", shape_str(out));
  (void)attrs;
  return {TensorMeta{out, a.dtype(), a.device()}};
}

std::vector<Tensor> addmm_backward(BackwardContext& c) {
  Tensor g = c.grad();
  double beta = c.attrs.get<double>("beta"), alpha = c.attrs.get<double>("alpha");
  const Tensor &a = c.inputs[1], &b = c.inputs[2];
  Tensor gi;
  if (c.needs_input_grad[0]) gi = scaled(sum_to(g, c.input_meta[0].sizes), beta);
  return {gi, c.needs_input_grad[1] ? scaled(mm_like(g, t(b), a), alpha) : Tensor(),
          c.needs_input_grad[2] ? scaled(mm_like(t(a), g, b), alpha) : Tensor()};
}

std::vector<Tensor> addmm_composite(const std::vector<Tensor>& in, const Attrs& attrs) {
  double beta = attrs.get<double>("beta"), alpha = attrs.get<double>("alpha");
  Tensor product = scaled(mm(in[1], in[2]), alpha);
  if (beta == 0.0) return {product};
  return {add(scaled(in[0], beta), product)};
}

}  // namespace

void define_linalg_ops(Registry& r) {
  r.define({.name = "mm", .infer = infer_mm, .backward = mm_backward});
  r.define({.name = "bmm", .infer = infer_bmm, .backward = bmm_backward});
  r.define({.name = "addmm", .infer = infer_addmm, .backward = addmm_backward, .composite = addmm_composite,
            .saved_inputs = 0b110});
}

Tensor mm(const Tensor& a, const Tensor& b) { return dispatch1(LOOM_OP("mm"), {a, b}); }
Tensor bmm(const Tensor& a, const Tensor& b) { return dispatch1(LOOM_OP("bmm"), {a, b}); }

Tensor matmul(const Tensor& a, const Tensor& b) {
  LOOM_AUTOCAST_COMPOSITE("matmul", matmul, a, b);
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
  LOOM_AUTOCAST_COMPOSITE("addmm", addmm, input, a, b, beta, alpha);
  if (is_floating(a.dtype()) || is_floating(b.dtype()) || is_floating(input.dtype())) {
    Attrs attrs;
    attrs.set("beta", beta.to_double()).set("alpha", alpha.to_double());
    return dispatch1(LOOM_OP("addmm"), {input, a, b}, std::move(attrs));
  }
  // Integer products: the plain composite.
  Tensor product = mm(a, b);
  if (alpha.to_double() != 1.0) product = mul(product, alpha);
  if (beta.to_double() == 0.0) return product;
  return add(beta.to_double() == 1.0 ? input : mul(input, beta), product);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  LOOM_AUTOCAST_COMPOSITE("linear", linear, x, weight, bias);
  LOOM_CHECK(weight.dim() == 2 || weight.dim() == 1, Value, "linear: weight must be 1-D or 2-D, got shape ",
             shape_str(weight.sizes()));
  if (bias.defined() && weight.dim() == 2 && x.dim() >= 2 && bias.dim() <= 1 && is_floating(x.dtype()) &&
      weight.dtype() == x.dtype() && bias.dtype() == x.dtype() && x.sizes().back() == weight.sizes()[1]) {
    // x @ weight^T + bias as one addmm over the rows of x: the bias is the BLAS accumulator, no extra pass.
    Tensor rows = x.dim() == 2 ? x : reshape(x, {-1, x.sizes().back()});
    Tensor out = addmm(bias, rows, t(weight));
    if (x.dim() == 2) return out;
    Shape out_shape(x.sizes().begin(), x.sizes().end() - 1);
    out_shape.push_back(weight.sizes()[0]);
    return reshape(out, out_shape);
  }
  Tensor out = matmul(x, t(weight));
  return bias.defined() ? add(out, bias) : out;
}

Tensor outer(const Tensor& a, const Tensor& b) {
  LOOM_CHECK(a.dim() == 1 && b.dim() == 1, Value, "outer: expected 1-D tensors, got shapes ", shape_str(a.sizes()),
             " and ", shape_str(b.sizes()));
  return mul(unsqueeze(a, 1), unsqueeze(b, 0));
}

Tensor dot(const Tensor& a, const Tensor& b) {
  LOOM_AUTOCAST_COMPOSITE("dot", dot, a, b);
  LOOM_CHECK(a.dim() == 1 && b.dim() == 1, Value, "dot: expected 1-D tensors, got shapes ", shape_str(a.sizes()),
             " and ", shape_str(b.sizes()));
  LOOM_CHECK(a.sizes()[0] == b.sizes()[0], Value, "dot: inconsistent tensor size, expected tensor [", a.sizes()[0],
             "] and src [", b.sizes()[0], "] to have the same number of elements");
  check_matmul_dtypes("dot", a, b);
  return reshape(mm(unsqueeze(a, 0), unsqueeze(b, 1)), {});
}

namespace {

struct EinsumTerm {
  std::string letters;  // one letter per dim of the operand, '.' entries expanded by the caller
};

// Splits "ab,bc->ac" into its inputs and output, expanding "..." into upper-case letters (unused in terms).
std::vector<std::string> parse_einsum(const std::string& equation, const std::vector<Tensor>& operands,
                                      std::string& output) {
  std::string spec;
  for (char ch : equation)
    if (ch != ' ') spec += ch;
  std::string lhs = spec, rhs;
  bool explicit_output = false;
  if (auto arrow = spec.find("->"); arrow != std::string::npos) {
    lhs = spec.substr(0, arrow);
    rhs = spec.substr(arrow + 2);
    explicit_output = true;
  }
  std::vector<std::string> terms;
  size_t start = 0;
  while (true) {
    size_t comma = lhs.find(',', start);
    terms.push_back(lhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  LOOM_CHECK(terms.size() == operands.size(), Value, "einsum: equation '", equation, "' has ", terms.size(),
             " operand(s) but ", operands.size(), " tensor(s) were given");
  LOOM_CHECK(operands.size() == 1 || operands.size() == 2, NotImplemented,
             "einsum: only one or two operands are supported, got ", operands.size());
  int64_t ellipsis_dims = 0;
  for (size_t i = 0; i < terms.size(); ++i) {
    size_t dots = terms[i].find("...");
    int64_t named = static_cast<int64_t>(terms[i].size()) - (dots == std::string::npos ? 0 : 3);
    LOOM_CHECK(dots != std::string::npos ? named <= operands[i].dim() : named == operands[i].dim(), Value,
               "einsum: term '", terms[i], "' does not match operand ", i, " of shape ", shape_str(operands[i].sizes()));
    if (dots != std::string::npos) ellipsis_dims = std::max(ellipsis_dims, operands[i].dim() - named);
  }
  auto expand_dots = [](std::string term, int64_t count) {
    size_t dots = term.find("...");
    if (dots == std::string::npos) return term;
    std::string letters;
    for (int64_t k = 0; k < count; ++k) letters += static_cast<char>('A' + k);
    return term.substr(0, dots) + letters + term.substr(dots + 3);
  };
  for (size_t i = 0; i < terms.size(); ++i) {
    size_t dots = terms[i].find("...");
    int64_t own = dots == std::string::npos ? 0 : operands[i].dim() - (static_cast<int64_t>(terms[i].size()) - 3);
    // An operand's ellipsis covers its own trailing share of the broadcast dims.
    std::string letters;
    for (int64_t k = ellipsis_dims - own; k < ellipsis_dims; ++k) letters += static_cast<char>('A' + k);
    if (dots != std::string::npos) terms[i] = terms[i].substr(0, dots) + letters + terms[i].substr(dots + 3);
    for (char ch : terms[i])
      LOOM_CHECK(std::isalpha(static_cast<unsigned char>(ch)), Value, "einsum: invalid character '", ch, "' in '", equation, "'");
    for (size_t a = 0; a < terms[i].size(); ++a)
      LOOM_CHECK(terms[i].find(terms[i][a], a + 1) == std::string::npos, NotImplemented, "einsum: index '", terms[i][a],
                 "' repeats within operand ", i, " (diagonals are not supported)");
  }
  if (explicit_output) {
    output = expand_dots(rhs, ellipsis_dims);
  } else {
    std::string all = terms[0] + (terms.size() > 1 ? terms[1] : "");
    for (int64_t k = 0; k < ellipsis_dims; ++k) output += static_cast<char>('A' + k);
    std::string named;
    for (char ch : all)
      if (std::islower(static_cast<unsigned char>(ch)) && std::count(all.begin(), all.end(), ch) == 1) named += ch;
    std::sort(named.begin(), named.end());
    output += named;
  }
  for (char ch : output)
    LOOM_CHECK(terms[0].find(ch) != std::string::npos || (terms.size() > 1 && terms[1].find(ch) != std::string::npos),
               Value, "einsum: output index '", ch, "' does not appear in any input of '", equation, "'");
  return terms;
}

// Sums away the dims of `t` (labelled `letters`) whose letters are not in `keep`.
Tensor sum_unlisted(const Tensor& t, std::string& letters, const std::string& keep) {
  Dims dims;
  std::string kept;
  for (size_t i = 0; i < letters.size(); ++i) {
    if (keep.find(letters[i]) == std::string::npos) dims.push_back(static_cast<int64_t>(i));
    else kept += letters[i];
  }
  letters = kept;
  return dims.empty() ? t : sum(t, dims);
}

// Permutes `t` (labelled `letters`) into the order `order` (a permutation of letters).
Tensor arrange(const Tensor& t, const std::string& letters, const std::string& order) {
  std::vector<int64_t> perm;
  for (char ch : order) perm.push_back(static_cast<int64_t>(letters.find(ch)));
  return permute(t, perm);
}

int64_t size_of(const Tensor& t, const std::string& letters, char ch) {
  size_t at = letters.find(ch);
  return at == std::string::npos ? 1 : t.sizes()[at];
}

}  // namespace

Tensor einsum(const std::string& equation, const std::vector<Tensor>& operands) {
  std::string output;
  std::vector<std::string> terms = parse_einsum(equation, operands, output);
  if (operands.size() == 1) {
    std::string letters = terms[0];
    Tensor reduced = sum_unlisted(operands[0], letters, output);
    return arrange(reduced, letters, output);
  }
  std::string la = terms[0], lb = terms[1];
  // Letters only in one operand and not in the output can be summed right away.
  Tensor a = sum_unlisted(operands[0], la, lb + output);
  Tensor b = sum_unlisted(operands[1], lb, la + output);
  std::string batch, left, right, contracted;
  for (char ch : la) {
    bool in_b = lb.find(ch) != std::string::npos, in_out = output.find(ch) != std::string::npos;
    if (in_b && in_out) batch += ch;
    else if (in_b) contracted += ch;
    else left += ch;
  }
  for (char ch : lb)
    if (la.find(ch) == std::string::npos) right += ch;
  // a -> (batch..., left..., contracted...), b -> (batch..., contracted..., right...), then one bmm.
  Tensor a_arranged = arrange(a, la, batch + left + contracted);
  Tensor b_arranged = arrange(b, lb, batch + contracted + right);
  Shape batch_shape, contracted_shape;
  for (char ch : batch) {
    int64_t sa = size_of(a, la, ch), sb = size_of(b, lb, ch);
    LOOM_CHECK(sa == sb || sa == 1 || sb == 1, Value, "einsum: index '", ch, "' has size ", sa, " in operand 0 but ",
               sb, " in operand 1");
    batch_shape.push_back(std::max(sa, sb));
  }
  for (char ch : contracted) {
    int64_t sa = size_of(a, la, ch), sb = size_of(b, lb, ch);
    LOOM_CHECK(sa == sb, Value, "einsum: contracted index '", ch, "' has size ", sa, " in operand 0 but ", sb,
               " in operand 1");
    contracted_shape.push_back(sa);
  }
  Shape left_shape, right_shape;
  for (char ch : left) left_shape.push_back(size_of(a, la, ch));
  for (char ch : right) right_shape.push_back(size_of(b, lb, ch));
  // numel: 0 when a size is 0 however large the others are (zero-size operands may have dims near 2^63).
  int64_t batch_count = numel(batch_shape), rows = numel(left_shape), inner = numel(contracted_shape),
          cols = numel(right_shape);
  Shape full_a = batch_shape, full_b = batch_shape;
  full_a.insert(full_a.end(), a_arranged.sizes().begin() + batch.size(), a_arranged.sizes().end());
  full_b.insert(full_b.end(), b_arranged.sizes().begin() + batch.size(), b_arranged.sizes().end());
  Tensor a3 = reshape(expand(a_arranged, full_a), {batch_count, rows, inner});
  Tensor b3 = reshape(expand(b_arranged, full_b), {batch_count, inner, cols});
  Tensor product = bmm(a3, b3);
  Shape result_shape = batch_shape;
  result_shape.insert(result_shape.end(), left_shape.begin(), left_shape.end());
  result_shape.insert(result_shape.end(), right_shape.begin(), right_shape.end());
  return arrange(reshape(product, result_shape), batch + left + right, output);
}

}  // namespace loom
