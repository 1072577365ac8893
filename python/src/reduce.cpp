// Reductions: sum, mean, ... as functions and methods (dim may be an int, a list or None).
#include "convert.h"

namespace loom::python {

// dim=None -> all dims; dim=int -> [int]; dim=sequence -> list.
std::vector<int64_t> dims_arg(nb::handle dim) {
  if (dim.is_none()) return {};
  if (PyLong_Check(dim.ptr())) return {nb::cast<int64_t>(dim)};
  return nb::cast<std::vector<int64_t>>(dim);
}

void bind_reduce(nb::module_& m, nb::class_<Tensor>& cls) {
  auto sum_fn = [](const Tensor& t, nb::handle dim, bool keepdim, std::optional<DType> dtype) {
    return sum(t, dims_arg(dim), keepdim, dtype);
  };
  auto mean_fn = [](const Tensor& t, nb::handle dim, bool keepdim, std::optional<DType> dtype) {
    return mean(t, dims_arg(dim), keepdim, dtype);
  };
  m.def("sum", sum_fn, nb::arg("input"), nb::arg("dim").none() = nb::none(), nb::arg("keepdim") = false,
        nb::kw_only(), nb::arg("dtype").none() = nb::none());
  cls.def("sum", sum_fn, nb::arg("dim").none() = nb::none(), nb::arg("keepdim") = false, nb::kw_only(),
          nb::arg("dtype").none() = nb::none());
  m.def("mean", mean_fn, nb::arg("input"), nb::arg("dim").none() = nb::none(), nb::arg("keepdim") = false,
        nb::kw_only(), nb::arg("dtype").none() = nb::none());
  cls.def("mean", mean_fn, nb::arg("dim").none() = nb::none(), nb::arg("keepdim") = false, nb::kw_only(),
          nb::arg("dtype").none() = nb::none());
  m.def("sum_to_size", &sum_to, nb::arg("input"), nb::arg("size"));
  cls.def("sum_to_size", &sum_to, nb::arg("size"));
}

}  // namespace loom::python
