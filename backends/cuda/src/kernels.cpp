// The loom side of the CUDA kernels: reads a KernelContext (inputs, attributes, outputs), prepares operands
// (dtype casts and broadcasts are loom ops, so they run on this device through the copy kernel; 0-d CPU inputs are
// host numbers read here and passed to the kernel as arguments), and launches the device code of loops.cu,
// reduce.cu and random.cu on the context's stream. Semantics follow loom's CPU kernels (backends/cpu/).
#include "kernels.h"

#include <cuda_runtime_api.h>

#include <string>

#include "cuda_check.h"
#include "loom/ops/creation.h"
#include "loom/ops/device.h"
#include "loom/ops/promotion.h"
#include "loom/ops/shape.h"
#include "runtime.h"

namespace loom_cuda {

using loom::DType;
using loom::KernelContext;
using loom::Tensor;

static_assert(static_cast<int>(DType::Bool) == static_cast<int>(ScalarType::Bool));
static_assert(static_cast<int>(DType::Int64) == static_cast<int>(ScalarType::Int64));
static_assert(static_cast<int>(DType::Float16) == static_cast<int>(ScalarType::Float16));
static_assert(static_cast<int>(DType::BFloat16) == static_cast<int>(ScalarType::BFloat16));
static_assert(static_cast<int>(DType::Float64) == static_cast<int>(ScalarType::Float64));

ScalarType scalar_type(DType dtype) { return static_cast<ScalarType>(static_cast<int>(dtype)); }

Geometry make_geometry(const loom::Shape& shape, const std::vector<Tensor>& operands) {
  LOOM_CHECK(operands.size() <= static_cast<size_t>(kMaxOperands), Runtime, "cuda: too many operands");
  // Drop size-1 dims, then merge neighbours that every operand walks as one (stride[d] == stride[d+1] * size[d+1]).
  std::vector<int64_t> sizes;
  std::vector<std::vector<int64_t>> strides(operands.size());
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    sizes.push_back(shape[d]);
    for (size_t k = 0; k < operands.size(); ++k)
      strides[k].push_back(operands[k].defined() ? operands[k].strides()[d] * static_cast<int64_t>(operands[k].itemsize())
                                                 : 0);
  }
  for (size_t d = sizes.size(); d-- > 1;) {
    bool mergeable = true;
    for (auto& s : strides) mergeable = mergeable && s[d - 1] == s[d] * sizes[d];
    if (!mergeable) continue;
    sizes[d - 1] *= sizes[d];
    sizes.erase(sizes.begin() + static_cast<std::ptrdiff_t>(d));
    for (auto& s : strides) {
      s[d - 1] = s[d];
      s.erase(s.begin() + static_cast<std::ptrdiff_t>(d));
    }
  }
  LOOM_CHECK(sizes.size() <= static_cast<size_t>(kMaxDims), NotImplemented, "cuda: an elementwise loop over ",
             sizes.size(), " non-mergeable dims (at most ", kMaxDims, "); make the inputs contiguous first");
  Geometry g;
  g.ndim = static_cast<int>(sizes.size());
  g.numel = loom::numel(shape);
  for (int d = 0; d < g.ndim; ++d) {
    g.sizes[d] = sizes[d];
    for (size_t k = 0; k < operands.size(); ++k) g.strides[k][d] = strides[k][d];
  }
  return g;
}

namespace {

void* stream_of(const KernelContext& c) { return stream_handle(c.stream); }

bool is_host_number(const Tensor& t) { return t.device().is_cpu(); }

// The value of a one-element CPU tensor, in both spellings.
HostScalar host_value(const Tensor& t) {
  LOOM_CHECK(t.numel() == 1, Value, "cuda: a CPU tensor with ", t.numel(),
             " elements cannot be an operand of a CUDA op (only numbers: 0-d CPU tensors); move it with .to('cuda')");
  HostScalar s;
  const void* p = t.data_ptr();
  switch (t.dtype()) {
    case DType::Bool: s.i = *static_cast<const bool*>(p); break;
    case DType::UInt8: s.i = *static_cast<const uint8_t*>(p); break;
    case DType::Int8: s.i = *static_cast<const int8_t*>(p); break;
    case DType::Int16: s.i = *static_cast<const int16_t*>(p); break;
    case DType::Int32: s.i = *static_cast<const int32_t*>(p); break;
    case DType::Int64: s.i = *static_cast<const int64_t*>(p); break;
    case DType::Float16: s.f = static_cast<float>(*static_cast<const loom::Half*>(p)); break;
    case DType::BFloat16: s.f = static_cast<float>(*static_cast<const loom::BFloat16*>(p)); break;
    case DType::Float32: s.f = *static_cast<const float*>(p); break;
    case DType::Float64: s.f = *static_cast<const double*>(p); break;
  }
  if (loom::is_floating(t.dtype())) s.i = loom::Scalar(s.f).to_int();
  else s.f = static_cast<double>(s.i);
  return s;
}

HostScalar host_value(const loom::Scalar& v) {
  HostScalar s;
  s.f = v.to_double();
  s.i = v.to_int();
  return s;
}

// A loop operand: a device tensor cast to `dtype` and broadcast to `shape`, or a host number.
struct Prepared {
  Tensor tensor;  // undefined for a host number
  Input input;
};
Prepared prepare(const Tensor& t, DType dtype, const loom::Shape& shape) {
  Prepared p;
  if (is_host_number(t)) {
    p.input.value = host_value(t);
    // Cast the number as the CPU would cast the 0-d tensor: a float into an integer dtype truncates (the kernel
    // reads the int64 spelling); into bool it is != 0, which scalar_as reads from both spellings.
    return p;
  }
  Tensor x = t.dtype() == dtype ? t : loom::to_dtype(t, dtype);
  p.tensor = x.sizes() == shape ? x : loom::expand(x, shape);
  p.input.data = p.tensor.data_ptr();
  return p;
}

void type_check(bool ok, const char* op, DType dtype) {
  LOOM_CHECK(ok, Type, op, ": not supported for dtype ", loom::dtype_name(dtype), " on cuda");
}

// ---- copy, fill, factories ----

std::vector<Tensor> copy_kernel(const KernelContext& c) {
  const Tensor& dst = c.inputs[0];
  Tensor src = c.inputs[1];
  if (dst.numel() == 0) return {dst};
  if (dst.device().is_cpu()) {  // into host memory: bring the source over, then copy on the host
    loom::dispatch(*c.op, {dst, loom::to_device(src, loom::Device())});
    return {dst};
  }
  if (src.device().is_cpu()) {
    if (src.numel() == 1) {  // a host number everywhere: a fill
      Geometry g = make_geometry(dst.sizes(), {dst});
      HostScalar v = host_value(src);
      if (!loom::is_floating(src.dtype())) v.f = static_cast<double>(v.i);
      launch_fill(scalar_type(dst.dtype()), g, dst.data_ptr(), v, stream_of(c));
      check_launch("copy");
      return {dst};
    }
    src = loom::to_device(src, dst.device());
  }
  if (src.sizes() != dst.sizes()) src = loom::expand(src, dst.sizes());
  if (src.dtype() == dst.dtype() && dst.is_contiguous() && src.is_contiguous()) {
    if (dst.data_ptr() != src.data_ptr())
      check(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), dst.numel() * dst.itemsize(), cudaMemcpyDeviceToDevice,
                            static_cast<cudaStream_t>(stream_of(c))),
            "cudaMemcpyAsync (copy)");
    return {dst};
  }
  Geometry g = make_geometry(dst.sizes(), {dst, src});
  launch_copy(scalar_type(dst.dtype()), scalar_type(src.dtype()), g, dst.data_ptr(), src.data_ptr(), stream_of(c));
  check_launch("copy");
  return {dst};
}

void fill_value(const KernelContext& c, const Tensor& t, const loom::Scalar& value) {
  launch_fill(scalar_type(t.dtype()), make_geometry(t.sizes(), {t}), t.data_ptr(), host_value(value), stream_of(c));
  check_launch("fill");
}

std::vector<Tensor> fill_kernel(const KernelContext& c) {
  fill_value(c, c.inputs[0], c.attrs.get<loom::Scalar>("value"));
  return {c.inputs[0]};
}

std::vector<Tensor> full_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  fill_value(c, out, c.attrs.get<loom::Scalar>("value"));
  return {out};
}

std::vector<Tensor> arange_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  type_check(out.dtype() != DType::Bool, "arange", out.dtype());
  launch_arange(scalar_type(out.dtype()), out.data_ptr(), out.numel(), host_value(c.attrs.get<loom::Scalar>("start")),
                host_value(c.attrs.get<loom::Scalar>("step")), stream_of(c));
  check_launch("arange");
  return {out};
}

std::vector<Tensor> linspace_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  type_check(out.dtype() != DType::Bool, "linspace", out.dtype());
  launch_linspace(scalar_type(out.dtype()), out.data_ptr(), out.numel(), c.attrs.get<double>("start"),
                  c.attrs.get<double>("end"), stream_of(c));
  check_launch("linspace");
  return {out};
}

// ---- binary, comparison, where ----

enum class Domain { All, NoBool, Float, Integral };

bool in_domain(Domain d, DType t) {
  switch (d) {
    case Domain::All: return true;
    case Domain::NoBool: return t != DType::Bool;
    case Domain::Float: return loom::is_floating(t);
    case Domain::Integral: return !loom::is_floating(t);
  }
  return false;
}

std::vector<Tensor> run_binary(const KernelContext& c, BinaryOp op, Domain domain) {
  Tensor out = c.alloc(0);
  type_check(in_domain(domain, out.dtype()), c.op->name.c_str(), out.dtype());
  const loom::Scalar alpha = c.attrs.get_or<loom::Scalar>("alpha", loom::Scalar(int64_t(1)));
  LOOM_CHECK(loom::is_floating(out.dtype()) || !alpha.is_float(), Type,
             "add: for integral input tensors, argument alpha must not be a floating point number");
  Prepared a = prepare(c.inputs[0], out.dtype(), out.sizes()), b = prepare(c.inputs[1], out.dtype(), out.sizes());
  Geometry g = make_geometry(out.sizes(), {out, a.tensor, b.tensor});
  launch_binary(op, scalar_type(out.dtype()), g, out.data_ptr(), a.input, b.input, host_value(alpha), stream_of(c));
  check_launch(c.op->name.c_str());
  return {out};
}

template <BinaryOp Op, Domain D>
std::vector<Tensor> binary_kernel(const KernelContext& c) {
  return run_binary(c, Op, D);
}

std::vector<Tensor> div_kernel(const KernelContext& c) {
  const std::string& mode = c.attrs.get<std::string>("rounding_mode");
  if (mode.empty()) return run_binary(c, BinaryOp::Div, Domain::Float);
  return run_binary(c, mode == "trunc" ? BinaryOp::DivTrunc : BinaryOp::DivFloor, Domain::NoBool);
}

template <CompareOp Op>
std::vector<Tensor> compare_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  const DType compute = loom::result_type(c.inputs);
  Prepared a = prepare(c.inputs[0], compute, out.sizes()), b = prepare(c.inputs[1], compute, out.sizes());
  Geometry g = make_geometry(out.sizes(), {out, a.tensor, b.tensor});
  launch_compare(Op, scalar_type(compute), g, out.data_ptr(), a.input, b.input, stream_of(c));
  check_launch(c.op->name.c_str());
  return {out};
}

std::vector<Tensor> where_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  Prepared cond = prepare(c.inputs[0], DType::Bool, out.sizes());
  Prepared a = prepare(c.inputs[1], out.dtype(), out.sizes()), b = prepare(c.inputs[2], out.dtype(), out.sizes());
  Geometry g = make_geometry(out.sizes(), {out, cond.tensor, a.tensor, b.tensor});
  launch_where(scalar_type(out.dtype()), g, out.data_ptr(), cond.input, a.input, b.input, stream_of(c));
  check_launch("where");
  return {out};
}

// ---- unary ----

std::vector<Tensor> run_unary(const KernelContext& c, UnaryOp op, Domain domain, UnaryParams params = {}) {
  Tensor out = c.alloc(0);
  type_check(in_domain(domain, out.dtype()), c.op->name.c_str(), out.dtype());
  Prepared in = prepare(c.inputs[0], out.dtype(), out.sizes());
  LOOM_CHECK(in.tensor.defined(), Value, c.op->name, ": expected a cuda input");
  Geometry g = make_geometry(out.sizes(), {out, in.tensor});
  launch_unary(op, scalar_type(out.dtype()), g, out.data_ptr(), in.input.data, params, stream_of(c));
  check_launch(c.op->name.c_str());
  return {out};
}

template <UnaryOp Op, Domain D>
std::vector<Tensor> unary_kernel(const KernelContext& c) {
  return run_unary(c, Op, D);
}

// Rounding and sign keep integer (and bool) inputs as they are.
template <UnaryOp Op>
std::vector<Tensor> rounding_kernel(const KernelContext& c) {
  const DType dtype = c.inputs[0].dtype();
  if (!loom::is_floating(dtype)) {
    if (Op == UnaryOp::Sign && dtype != DType::Bool) return run_unary(c, Op, Domain::NoBool);
    return {loom::clone(c.inputs[0])};
  }
  return run_unary(c, Op, Domain::Float);
}

std::vector<Tensor> leaky_relu_kernel(const KernelContext& c) {
  UnaryParams p;
  p.a = c.attrs.get<double>("negative_slope");
  return run_unary(c, UnaryOp::LeakyRelu, Domain::Float, p);
}
std::vector<Tensor> gelu_kernel(const KernelContext& c) {
  const bool tanh = c.attrs.get<std::string>("approximate") == "tanh";
  return run_unary(c, tanh ? UnaryOp::GeluTanh : UnaryOp::Gelu, Domain::Float);
}
std::vector<Tensor> softplus_kernel(const KernelContext& c) {
  UnaryParams p;
  p.a = c.attrs.get<double>("beta");
  p.b = c.attrs.get<double>("threshold");
  return run_unary(c, UnaryOp::Softplus, Domain::Float, p);
}
std::vector<Tensor> clamp_kernel(const KernelContext& c) {
  UnaryParams p;
  if ((p.has_a = c.attrs.has("min"))) p.a = c.attrs.get<loom::Scalar>("min").to_double();
  if ((p.has_b = c.attrs.has("max"))) p.b = c.attrs.get<loom::Scalar>("max").to_double();
  return run_unary(c, UnaryOp::Clamp, Domain::NoBool, p);
}
std::vector<Tensor> bitwise_not_kernel(const KernelContext& c) {
  return run_unary(c, UnaryOp::BitwiseNot, Domain::Integral);
}

template <PredicateOp Op>
std::vector<Tensor> predicate_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  const Tensor& in = c.inputs[0];
  Geometry g = make_geometry(out.sizes(), {out, in});
  launch_predicate(Op, scalar_type(in.dtype()), g, out.data_ptr(), in.data_ptr(), stream_of(c));
  check_launch(c.op->name.c_str());
  return {out};
}

// ---- reductions and softmax ----

// A contiguous input seen as [outer, reduced, inner] for `dims` (normalized and sorted, as the ops store them):
// a consecutive block of dims needs no copy; otherwise the kept dims go first in a contiguous copy.
struct Layout {
  Tensor data;
  int64_t outer = 1, reduced = 1, inner = 1;
};
Layout reduction_layout(const Tensor& input, const std::vector<int64_t>& dims) {
  const loom::Shape& sizes = input.sizes();
  auto is_reduced = [&](int64_t i) { return std::find(dims.begin(), dims.end(), i) != dims.end(); };
  Layout l;
  const bool block = !dims.empty() && dims.back() - dims.front() + 1 == static_cast<int64_t>(dims.size());
  if (block) {
    l.data = input.is_contiguous() ? input : loom::contiguous(input);
    for (int64_t i = 0; i < input.dim(); ++i) (i < dims.front() ? l.outer : i > dims.back() ? l.inner : l.reduced) *= sizes[i];
    return l;
  }
  std::vector<int64_t> order;
  for (int64_t i = 0; i < input.dim(); ++i)
    if (!is_reduced(i)) order.push_back(i);
  order.insert(order.end(), dims.begin(), dims.end());
  l.data = loom::contiguous(loom::permute(input, order));
  for (int64_t i = 0; i < input.dim(); ++i) (is_reduced(i) ? l.reduced : l.outer) *= sizes[i];
  return l;
}

template <ReduceOp Op>
std::vector<Tensor> reduce_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  // Sums and products run in the output dtype (the op's infer has promoted it: int64 for integers and bool).
  const Tensor& in = c.inputs[0];
  Tensor x = (Op == ReduceOp::Sum || Op == ReduceOp::Prod) && in.dtype() != out.dtype() ? loom::to_dtype(in, out.dtype())
                                                                                       : in;
  Layout l = reduction_layout(x, c.attrs.get<std::vector<int64_t>>("dims"));
  if (out.numel() == 0) return {out};
  launch_reduce(Op, scalar_type(out.dtype()), l.data.data_ptr(), out.data_ptr(), l.outer, l.reduced, l.inner,
                stream_of(c));
  check_launch(c.op->name.c_str());
  return {out};
}

// all/any: amin/amax of the input as bool (uint8 inputs give uint8 results, as in PyTorch).
template <bool IsAll>
std::vector<Tensor> logical_reduce_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  Tensor x = loom::to_dtype(c.inputs[0], DType::Bool);
  if (out.dtype() != DType::Bool) x = loom::to_dtype(x, out.dtype());
  Layout l = reduction_layout(x, c.attrs.get<std::vector<int64_t>>("dims"));
  if (out.numel() == 0) return {out};
  if (l.reduced == 0) {  // the empty reduction: all() is true, any() is false
    fill_value(c, out, loom::Scalar(IsAll));
    return {out};
  }
  launch_reduce(IsAll ? ReduceOp::Min : ReduceOp::Max, scalar_type(out.dtype()), l.data.data_ptr(), out.data_ptr(),
                l.outer, l.reduced, l.inner, stream_of(c));
  check_launch(c.op->name.c_str());
  return {out};
}

template <bool Log>
std::vector<Tensor> softmax_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  type_check(loom::is_floating(out.dtype()), Log ? "log_softmax" : "softmax", out.dtype());
  const Tensor& in = c.inputs[0];
  Tensor x = in.dtype() == out.dtype() ? in : loom::to_dtype(in, out.dtype());
  x = x.is_contiguous() ? x : loom::contiguous(x);
  const int64_t dim = c.attrs.get<int64_t>("dim");
  int64_t outer = 1, reduced = 1, inner = 1;
  for (int64_t i = 0; i < x.dim(); ++i) (i < dim ? outer : i == dim ? reduced : inner) *= x.sizes()[i];
  launch_softmax(Log, scalar_type(out.dtype()), x.data_ptr(), out.data_ptr(), outer, reduced, inner, stream_of(c));
  check_launch(Log ? "log_softmax" : "softmax");
  return {out};
}

// ---- random ----

PhiloxState philox_of(const loom::Attrs& a) {
  return {static_cast<uint64_t>(a.get<int64_t>("seed")), static_cast<uint64_t>(a.get<int64_t>("offset"))};
}

std::vector<Tensor> uniform_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  type_check(loom::is_floating(out.dtype()), "uniform_", out.dtype());
  launch_uniform(scalar_type(out.dtype()), out.data_ptr(), out.numel(), philox_of(c.attrs), c.attrs.get<double>("low"),
                 c.attrs.get<double>("high"), stream_of(c));
  check_launch("uniform_");
  return {out};
}

std::vector<Tensor> normal_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  type_check(loom::is_floating(out.dtype()), "normal_", out.dtype());
  launch_normal(scalar_type(out.dtype()), out.data_ptr(), out.numel(), philox_of(c.attrs), c.attrs.get<double>("mean"),
                c.attrs.get<double>("std"), stream_of(c));
  check_launch("normal_");
  return {out};
}

std::vector<Tensor> randint_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  const int64_t low = c.attrs.get<int64_t>("low");
  const uint64_t range = static_cast<uint64_t>(c.attrs.get<int64_t>("high") - low);
  launch_randint(scalar_type(out.dtype()), out.data_ptr(), out.numel(), philox_of(c.attrs), low, range, stream_of(c));
  check_launch("randint");
  return {out};
}

// A sequential Fisher-Yates shuffle: generated by the CPU kernel (the same numbers by construction) and uploaded.
std::vector<Tensor> randperm_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  loom::Attrs attrs = c.attrs;
  attrs.set("device", loom::Device());
  Tensor host = loom::dispatch1(*c.op, {}, attrs);
  loom::copy_bytes(out.data_ptr(), out.device(), host.data_ptr(), host.device(), host.numel() * host.itemsize());
  return {out};
}

std::vector<Tensor> bernoulli_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  type_check(loom::is_floating(out.dtype()), "bernoulli", out.dtype());
  Tensor p = c.inputs[0].dtype() == out.dtype() ? c.inputs[0] : loom::to_dtype(c.inputs[0], out.dtype());
  p = p.is_contiguous() ? p : loom::contiguous(p);
  launch_bernoulli(scalar_type(out.dtype()), out.data_ptr(), p.data_ptr(), out.numel(), philox_of(c.attrs),
                   stream_of(c));
  check_launch("bernoulli");
  return {out};
}

}  // namespace

void register_kernels(loom::DeviceType type) {
  loom::Registry& r = loom::Registry::instance();
  // copy, fill, factories
  r.set_kernel("copy", type, copy_kernel);
  r.set_kernel("fill", type, fill_kernel);
  r.set_kernel("full", type, full_kernel);
  r.set_kernel("arange", type, arange_kernel);
  r.set_kernel("linspace", type, linspace_kernel);
  // binary arithmetic: these write into KernelContext::out when given (each element is read before it is written)
  constexpr bool kOut = true;
  r.set_kernel("add", type, binary_kernel<BinaryOp::Add, Domain::All>, kOut);
  r.set_kernel("sub", type, binary_kernel<BinaryOp::Sub, Domain::NoBool>, kOut);
  r.set_kernel("mul", type, binary_kernel<BinaryOp::Mul, Domain::All>, kOut);
  r.set_kernel("div", type, div_kernel, kOut);
  r.set_kernel("remainder", type, binary_kernel<BinaryOp::Remainder, Domain::NoBool>);
  r.set_kernel("pow", type, binary_kernel<BinaryOp::Pow, Domain::NoBool>);
  r.set_kernel("maximum", type, binary_kernel<BinaryOp::Maximum, Domain::All>);
  r.set_kernel("minimum", type, binary_kernel<BinaryOp::Minimum, Domain::All>);
  r.set_kernel("atan2", type, binary_kernel<BinaryOp::Atan2, Domain::Float>);
  r.set_kernel("gelu_backward", type, binary_kernel<BinaryOp::GeluBackward, Domain::Float>);
  r.set_kernel("relu_backward", type, binary_kernel<BinaryOp::ReluBackward, Domain::Float>);
  r.set_kernel("bitwise_and", type, binary_kernel<BinaryOp::BitAnd, Domain::Integral>);
  r.set_kernel("bitwise_or", type, binary_kernel<BinaryOp::BitOr, Domain::Integral>);
  r.set_kernel("bitwise_xor", type, binary_kernel<BinaryOp::BitXor, Domain::Integral>);
  r.set_kernel("eq", type, compare_kernel<CompareOp::Eq>);
  r.set_kernel("ne", type, compare_kernel<CompareOp::Ne>);
  r.set_kernel("lt", type, compare_kernel<CompareOp::Lt>);
  r.set_kernel("le", type, compare_kernel<CompareOp::Le>);
  r.set_kernel("gt", type, compare_kernel<CompareOp::Gt>);
  r.set_kernel("ge", type, compare_kernel<CompareOp::Ge>);
  r.set_kernel("logical_and", type, compare_kernel<CompareOp::LogicalAnd>);
  r.set_kernel("logical_or", type, compare_kernel<CompareOp::LogicalOr>);
  r.set_kernel("logical_xor", type, compare_kernel<CompareOp::LogicalXor>);
  r.set_kernel("where", type, where_kernel);
  // unary
  r.set_kernel("neg", type, unary_kernel<UnaryOp::Neg, Domain::NoBool>, kOut);
  r.set_kernel("abs", type, unary_kernel<UnaryOp::Abs, Domain::NoBool>, kOut);
  r.set_kernel("sign", type, rounding_kernel<UnaryOp::Sign>);
  r.set_kernel("floor", type, rounding_kernel<UnaryOp::Floor>);
  r.set_kernel("ceil", type, rounding_kernel<UnaryOp::Ceil>);
  r.set_kernel("round", type, rounding_kernel<UnaryOp::Round>);
  r.set_kernel("trunc", type, rounding_kernel<UnaryOp::Trunc>);
  r.set_kernel("exp", type, unary_kernel<UnaryOp::Exp, Domain::Float>, kOut);
  r.set_kernel("expm1", type, unary_kernel<UnaryOp::Expm1, Domain::Float>, kOut);
  r.set_kernel("log", type, unary_kernel<UnaryOp::Log, Domain::Float>, kOut);
  r.set_kernel("log1p", type, unary_kernel<UnaryOp::Log1p, Domain::Float>, kOut);
  r.set_kernel("log2", type, unary_kernel<UnaryOp::Log2, Domain::Float>, kOut);
  r.set_kernel("sqrt", type, unary_kernel<UnaryOp::Sqrt, Domain::Float>, kOut);
  r.set_kernel("rsqrt", type, unary_kernel<UnaryOp::Rsqrt, Domain::Float>, kOut);
  r.set_kernel("sin", type, unary_kernel<UnaryOp::Sin, Domain::Float>, kOut);
  r.set_kernel("cos", type, unary_kernel<UnaryOp::Cos, Domain::Float>, kOut);
  r.set_kernel("tanh", type, unary_kernel<UnaryOp::Tanh, Domain::Float>, kOut);
  r.set_kernel("sigmoid", type, unary_kernel<UnaryOp::Sigmoid, Domain::Float>, kOut);
  r.set_kernel("erf", type, unary_kernel<UnaryOp::Erf, Domain::Float>, kOut);
  r.set_kernel("reciprocal", type, unary_kernel<UnaryOp::Reciprocal, Domain::Float>, kOut);
  r.set_kernel("relu", type, unary_kernel<UnaryOp::Relu, Domain::NoBool>, kOut);
  r.set_kernel("leaky_relu", type, leaky_relu_kernel, kOut);
  r.set_kernel("gelu", type, gelu_kernel, kOut);
  r.set_kernel("silu", type, unary_kernel<UnaryOp::Silu, Domain::Float>, kOut);
  r.set_kernel("softplus", type, softplus_kernel, kOut);
  r.set_kernel("clamp", type, clamp_kernel, kOut);
  r.set_kernel("isnan", type, predicate_kernel<PredicateOp::IsNan>);
  r.set_kernel("isinf", type, predicate_kernel<PredicateOp::IsInf>);
  r.set_kernel("isfinite", type, predicate_kernel<PredicateOp::IsFinite>);
  r.set_kernel("logical_not", type, predicate_kernel<PredicateOp::LogicalNot>);
  r.set_kernel("bitwise_not", type, bitwise_not_kernel);
  // reductions, softmax
  r.set_kernel("sum", type, reduce_kernel<ReduceOp::Sum>);
  r.set_kernel("prod", type, reduce_kernel<ReduceOp::Prod>);
  r.set_kernel("amax", type, reduce_kernel<ReduceOp::Max>);
  r.set_kernel("amin", type, reduce_kernel<ReduceOp::Min>);
  r.set_kernel("all", type, logical_reduce_kernel<true>);
  r.set_kernel("any", type, logical_reduce_kernel<false>);
  r.set_kernel("softmax", type, softmax_kernel<false>);
  r.set_kernel("log_softmax", type, softmax_kernel<true>);
  // random numbers: loom's Philox stream
  r.set_kernel("uniform", type, uniform_kernel);
  r.set_kernel("normal", type, normal_kernel);
  r.set_kernel("randint", type, randint_kernel);
  r.set_kernel("randperm", type, randperm_kernel);
  r.set_kernel("bernoulli", type, bernoulli_kernel);
  register_matmul_kernels(type);
}

}  // namespace loom_cuda
