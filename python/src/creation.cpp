// Creation functions: zeros/ones/full/empty(_like), arange, linspace, eye.
#include "convert.h"

namespace loom::python {

namespace {

Tensor finish(Tensor t, bool requires_grad) {
  if (requires_grad) t.set_requires_grad(true);
  return t;
}

template <Tensor (*Make)(const Shape&, DType, Device)>
void def_sized(nb::module_& m, const char* name, const char* doc) {
  m.def(name, [name](nb::args args, std::optional<DType> dtype, std::optional<Device> device, bool requires_grad) {
    return finish(Make(shape_from_args(args, name), dtype.value_or(default_float_dtype()), device.value_or(Device())),
                  requires_grad);
  }, nb::arg("size"), nb::kw_only(), nb::arg("dtype").none() = nb::none(), nb::arg("device").none() = nb::none(),
     nb::arg("requires_grad") = false, doc);
}

}  // namespace

void bind_creation(nb::module_& m) {
  def_sized<&loom::zeros>(m, "zeros", "A tensor filled with 0.");
  def_sized<&loom::ones>(m, "ones", "A tensor filled with 1.");
  def_sized<&loom::empty>(m, "empty", "A tensor with uninitialised contents.");
  m.def("full", [](const Shape& size, Scalar value, std::optional<DType> dtype, std::optional<Device> device,
                   bool requires_grad) {
    DType d = dtype.value_or(value.dtype());
    return finish(full(size, value, d, device.value_or(Device())), requires_grad);
  }, nb::arg("size"), nb::arg("fill_value"), nb::kw_only(), nb::arg("dtype").none() = nb::none(),
     nb::arg("device").none() = nb::none(), nb::arg("requires_grad") = false);
  // The *_like functions keep the input's shape, dtype and device unless dtype= / device= say otherwise.
  m.def("zeros_like", [](const Tensor& t, std::optional<DType> dtype, std::optional<Device> device, bool requires_grad) {
    return finish(zeros(t.sizes(), dtype.value_or(t.dtype()), device.value_or(t.device())), requires_grad);
  }, nb::arg("input"), nb::kw_only(), nb::arg("dtype").none() = nb::none(), nb::arg("device").none() = nb::none(),
     nb::arg("requires_grad") = false);
  m.def("ones_like", [](const Tensor& t, std::optional<DType> dtype, std::optional<Device> device, bool requires_grad) {
    return finish(ones(t.sizes(), dtype.value_or(t.dtype()), device.value_or(t.device())), requires_grad);
  }, nb::arg("input"), nb::kw_only(), nb::arg("dtype").none() = nb::none(), nb::arg("device").none() = nb::none(),
     nb::arg("requires_grad") = false);
  m.def("empty_like", [](const Tensor& t, std::optional<DType> dtype, std::optional<Device> device, bool requires_grad) {
    return finish(empty(t.sizes(), dtype.value_or(t.dtype()), device.value_or(t.device())), requires_grad);
  }, nb::arg("input"), nb::kw_only(), nb::arg("dtype").none() = nb::none(), nb::arg("device").none() = nb::none(),
     nb::arg("requires_grad") = false);
  m.def("full_like", [](const Tensor& t, Scalar value, std::optional<DType> dtype, std::optional<Device> device,
                        bool requires_grad) {
    return finish(full(t.sizes(), value, dtype.value_or(t.dtype()), device.value_or(t.device())), requires_grad);
  }, nb::arg("input"), nb::arg("fill_value"), nb::kw_only(), nb::arg("dtype").none() = nb::none(),
     nb::arg("device").none() = nb::none(), nb::arg("requires_grad") = false);
  m.def("arange", [](Scalar a, std::optional<Scalar> b, Scalar step, std::optional<DType> dtype,
                     std::optional<Device> device, bool requires_grad) {
    Scalar start = b ? a : Scalar(int64_t(0));
    Scalar end = b ? *b : a;
    return finish(arange(start, end, step, dtype, device.value_or(Device())), requires_grad);
  }, nb::arg("start"), nb::arg("end").none() = nb::none(), nb::arg("step") = Scalar(int64_t(1)), nb::kw_only(),
     nb::arg("dtype").none() = nb::none(), nb::arg("device").none() = nb::none(), nb::arg("requires_grad") = false,
     "Values from start to end (exclusive) in steps; arange(n) counts 0..n-1.");
  m.def("linspace", [](double start, double end, int64_t steps, std::optional<DType> dtype,
                       std::optional<Device> device, bool requires_grad) {
    return finish(linspace(start, end, steps, dtype.value_or(default_float_dtype()), device.value_or(Device())),
                  requires_grad);
  }, nb::arg("start"), nb::arg("end"), nb::arg("steps"), nb::kw_only(), nb::arg("dtype").none() = nb::none(),
     nb::arg("device").none() = nb::none(), nb::arg("requires_grad") = false);
  m.def("eye", [](int64_t n, std::optional<int64_t> mcols, std::optional<DType> dtype, std::optional<Device> device,
                  bool requires_grad) {
    return finish(eye(n, mcols, dtype.value_or(default_float_dtype()), device.value_or(Device())), requires_grad);
  }, nb::arg("n"), nb::arg("m").none() = nb::none(), nb::kw_only(), nb::arg("dtype").none() = nb::none(),
     nb::arg("device").none() = nb::none(), nb::arg("requires_grad") = false);
  m.def("scalar_tensor", [](Scalar v, std::optional<DType> dtype, std::optional<Device> device) {
    return scalar_tensor(v, dtype, device.value_or(Device()));
  }, nb::arg("s"), nb::kw_only(), nb::arg("dtype").none() = nb::none(), nb::arg("device").none() = nb::none());
}

}  // namespace loom::python
