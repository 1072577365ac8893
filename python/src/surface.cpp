// PyTorch surface that scripts reach for beyond the op families: multinomial, and the keyword forms of the
// sized factories (zeros(size=(2, 3)), rand(size=...)) as extra overloads, so the positional forms stay as fast.
#include "convert.h"

namespace loom::python {

namespace {

Tensor finish(Tensor t, bool requires_grad) {
  if (requires_grad) t.set_requires_grad(true);
  return t;
}

// `name(*, size, dtype=None, device=None, requires_grad=False)`: the overload torch accepts for size by keyword.
template <class Make>
void def_size_keyword(nb::module_& m, const char* name, Make make) {
  m.def(name, [name, make](nb::handle size, std::optional<DType> dtype, std::optional<Device> device,
                           bool requires_grad) {
    return finish(make(Shape(int_list_arg(size, name, "size")), dtype.value_or(default_float_dtype()),
                       device.value_or(Device())), requires_grad);
  }, nb::kw_only(), nb::arg("size"), nb::arg("dtype").none() = nb::none(), nb::arg("device").none() = nb::none(),
     nb::arg("requires_grad") = false);
}

}  // namespace

void bind_surface(nb::module_& m, nb::class_<Tensor>& cls) {
  auto multinomial = [](const Tensor& input, int64_t num_samples, bool replacement, Generator* generator) {
    return loom::multinomial(input, num_samples, replacement, generator);
  };
  const char* doc =
      "multinomial(input, num_samples, replacement=False, *, generator=None): category indices drawn in proportion "
      "to the non-negative weights in each row of input (1-D or 2-D); int64.";
  m.def("multinomial", multinomial, nb::arg("input"), nb::arg("num_samples"), nb::arg("replacement") = false,
        nb::kw_only(), nb::arg("generator").none() = nb::none(), doc);
  cls.def("multinomial", multinomial, nb::arg("num_samples"), nb::arg("replacement") = false, nb::kw_only(),
          nb::arg("generator").none() = nb::none(), doc);

  def_size_keyword(m, "zeros", [](const Shape& s, DType d, Device dev) { return zeros(s, d, dev); });
  def_size_keyword(m, "ones", [](const Shape& s, DType d, Device dev) { return ones(s, d, dev); });
  def_size_keyword(m, "empty", [](const Shape& s, DType d, Device dev) { return empty(s, d, dev); });
  def_size_keyword(m, "rand", [](const Shape& s, DType d, Device dev) { return rand(s, d, nullptr, dev); });
  def_size_keyword(m, "randn", [](const Shape& s, DType d, Device dev) { return randn(s, d, nullptr, dev); });
}

}  // namespace loom::python
