// Creation ops: definitions and public functions. Kernels live in backends/<device>/creation.cpp.
#include "loom/ops/creation.h"

#include <cmath>
#include <cstring>

#include "loom/core/backend.h"
#include "loom/ops/registry.h"
#include "loom/ops/shape.h"

namespace loom {

namespace {

std::vector<TensorMeta> infer_full(const std::vector<Tensor>&, const Attrs& a) {
  const Shape& sizes = a.get<Shape>("sizes");
  checked_numel(sizes, "full");
  return {TensorMeta{sizes, a.get<DType>("dtype"), a.get<Device>("device")}};
}

std::vector<TensorMeta> infer_arange(const std::vector<Tensor>&, const Attrs& a) {
  return {TensorMeta{{a.get<int64_t>("count")}, a.get<DType>("dtype"), a.get<Device>("device")}};
}

std::vector<TensorMeta> infer_fill(const std::vector<Tensor>& in, const Attrs&) {
  return {TensorMeta{in[0].sizes(), in[0].dtype(), in[0].device()}};
}

}  // namespace

// PyTorch's rule (c10::overflows): a value must fit the dtype's range; a float going to an integer dtype is
// truncated; bool takes anything; float16/bfloat16 overflow to inf; unsigned types also take -max..-1 (wrapping).
void check_value_fits(Scalar value, DType dtype, const char* op) {
  if (dtype == DType::Bool || dtype == DType::Float64 || dtype == DType::Float16 || dtype == DType::BFloat16) return;
  double v = value.to_double();
  bool ok = true;
  if (dtype == DType::Float32) {
    ok = !std::isfinite(v) || std::fabs(v) <= 3.4028234663852886e38;
  } else {
    double lo = 0, hi = 0;
    switch (dtype) {
      case DType::UInt8: lo = -255, hi = 255; break;
      case DType::Int8: lo = -128, hi = 127; break;
      case DType::Int16: lo = -32768, hi = 32767; break;
      case DType::Int32: lo = -2147483648.0, hi = 2147483647.0; break;
      default: lo = -9223372036854775808.0, hi = 9223372036854775807.0; break;
    }
    if (value.is_float()) {
      double tv = std::trunc(v);
      ok = std::isfinite(v) && tv >= lo && (dtype == DType::Int64 ? tv < hi : tv <= hi);
    } else if (!value.is_bool()) {
      int64_t iv = value.to_int();
      ok = dtype == DType::Int64 || (iv >= static_cast<int64_t>(lo) && iv <= static_cast<int64_t>(hi));
    }
  }
  LOOM_CHECK(ok, Value, op, ": value ", value.str(), " cannot be converted to dtype ", dtype_name(dtype),
             " without overflow");
}

void define_creation_ops(Registry& r) {
  // full: attrs sizes, value, dtype, device.
  r.define({.name = "full", .infer = infer_full});
  // arange: element i = start + i * step, attrs start, step (Scalars), count, dtype, device.
  r.define({.name = "arange", .infer = infer_arange});
  // linspace: attrs start, end (double), count, dtype, device.
  r.define({.name = "linspace", .infer = infer_arange});
  // fill: writes attr value into input 0 in place and returns it.
  r.define({.name = "fill", .infer = infer_fill, .mutates_inputs = true});
}

Tensor empty(const Shape& sizes, DType dtype, Device device) { return Tensor::empty(sizes, dtype, device); }

Tensor full(const Shape& sizes, Scalar value, DType dtype, Device device) {
  check_value_fits(value, dtype, "full");
  return dispatch1(LOOM_OP("full"), {},
                   Attrs().set("sizes", sizes).set("value", value).set("dtype", dtype).set("device", device));
}
Tensor full(const Shape& sizes, Scalar value, Device device) { return full(sizes, value, value.dtype(), device); }
Tensor zeros(const Shape& sizes, DType dtype, Device device) { return full(sizes, Scalar(int64_t(0)), dtype, device); }
Tensor ones(const Shape& sizes, DType dtype, Device device) { return full(sizes, Scalar(int64_t(1)), dtype, device); }

Tensor empty_like(const Tensor& t, std::optional<DType> dtype) { return empty(t.sizes(), dtype.value_or(t.dtype()), t.device()); }
Tensor zeros_like(const Tensor& t, std::optional<DType> dtype) { return zeros(t.sizes(), dtype.value_or(t.dtype()), t.device()); }
Tensor ones_like(const Tensor& t, std::optional<DType> dtype) { return ones(t.sizes(), dtype.value_or(t.dtype()), t.device()); }
Tensor full_like(const Tensor& t, Scalar value, std::optional<DType> dtype) {
  return full(t.sizes(), value, dtype.value_or(t.dtype()), t.device());
}

Tensor scalar_tensor(Scalar value, std::optional<DType> dtype, Device device) {
  return full({}, value, dtype.value_or(value.dtype()), device);
}

Tensor wrapped_scalar(Scalar value, Device device) {
  DType dtype = value.is_bool() ? DType::Bool : value.is_int() ? DType::Int64 : DType::Float64;
  Tensor t = full({}, value, dtype, device);
  t.impl()->wrapped_number = true;
  return t;
}

namespace {
// ceil((end - start) / step) exactly, for any int64 bounds: the distance and the step are taken as magnitudes in
// uint64 (the sign check above makes them point the same way), where they cannot overflow.
int64_t integer_arange_count(int64_t start, int64_t end, int64_t step) {
  auto magnitude = [](int64_t a, int64_t b) { return a >= b ? uint64_t(a) - uint64_t(b) : uint64_t(b) - uint64_t(a); };
  uint64_t distance = magnitude(end, start), stride = magnitude(step, 0);
  uint64_t count = distance / stride + (distance % stride != 0);
  LOOM_CHECK(count <= uint64_t(INT64_MAX), Value, "arange: too many elements (", count, ")");
  return static_cast<int64_t>(count);
}
}  // namespace

Tensor arange(Scalar start, Scalar end, Scalar step, std::optional<DType> dtype, Device device) {
  bool all_int = !start.is_float() && !end.is_float() && !step.is_float();
  DType dt = dtype.value_or(all_int ? DType::Int64 : default_float_dtype());
  double s = start.to_double(), e = end.to_double(), st = step.to_double();
  LOOM_CHECK(std::isfinite(s) && std::isfinite(e), Value, "arange: start and end must be finite, got ", start.str(),
             " and ", end.str());
  LOOM_CHECK(st != 0, Value, "arange: step must be nonzero");
  LOOM_CHECK((st > 0 && e >= s) || (st < 0 && e <= s), Value, "arange: upper bound and larger bound inconsistent with step sign (start ",
             start.str(), ", end ", end.str(), ", step ", step.str(), ")");
  double count_d = std::ceil((e - s) / st);
  LOOM_CHECK(count_d < 1e15, Value, "arange: too many elements (", count_d, ")");
  int64_t count = all_int ? integer_arange_count(start.to_int(), end.to_int(), step.to_int())
                          : static_cast<int64_t>(count_d);
  return dispatch1(LOOM_OP("arange"), {},
                   Attrs().set("start", start).set("step", step).set("count", std::max<int64_t>(count, 0))
                       .set("dtype", dt).set("device", device));
}

Tensor linspace(double start, double end, int64_t steps, DType dtype, Device device) {
  LOOM_CHECK(steps >= 0, Value, "linspace: number of steps must be non-negative, got ", steps);
  if (steps == 1) end = start;  // a single point is `start`, as in PyTorch
  return dispatch1(LOOM_OP("linspace"), {},
                   Attrs().set("start", start).set("end", end).set("count", steps).set("dtype", dtype).set("device", device));
}

Tensor eye(int64_t n, std::optional<int64_t> m, DType dtype, Device device) {
  int64_t cols = m.value_or(n);
  LOOM_CHECK(n >= 0 && cols >= 0, Value, "eye: n and m must be non-negative, got ", n, " and ", cols);
  Tensor out = zeros({n, cols}, dtype, device);
  if (n == 0 || cols == 0) return out;
  Tensor diagonal = as_strided(out, {std::min(n, cols)}, {cols + 1}, 0);
  fill_(diagonal, Scalar(int64_t(1)));
  return out;
}

Tensor& fill_(Tensor& t, Scalar value) {
  check_value_fits(value, t.dtype(), "fill_");
  if (grad_mode_enabled() && t.requires_grad())
    return detail::commit_inplace(t, expand(scalar_tensor(value, t.dtype(), t.device()), t.sizes()), "fill_");
  dispatch(LOOM_OP("fill"), {t}, Attrs().set("value", value));
  t.bump_version();
  return t;
}

Tensor& zero_(Tensor& t) { return fill_(t, Scalar(int64_t(0))); }

Tensor from_blob_copy(const void* data, const Shape& sizes, DType dtype, Device device) {
  Tensor out = empty(sizes, dtype, device);
  // Host memory of the caller's: a synchronous copy (the caller may free it as soon as we return).
  if (out.numel() > 0) copy_bytes(out.data_ptr(), out.device(), data, Device(), out.numel() * out.itemsize());
  return out;
}

}  // namespace loom
