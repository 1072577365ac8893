// Matrix products: matmul (and @), mm, bmm, addmm, linear, outer, dot.
#include "convert.h"

namespace loom::python {

void bind_linalg(nb::module_& m, nb::class_<Tensor>& cls) {
  m.def("matmul", &matmul, nb::arg("input"), nb::arg("other"));
  cls.def("matmul", &matmul, nb::arg("other"));
  cls.def("__matmul__", &matmul, nb::is_operator());
  cls.def("__rmatmul__", [](const Tensor& a, const Tensor& b) { return matmul(b, a); }, nb::is_operator());
  m.def("mm", &mm, nb::arg("input"), nb::arg("mat2"));
  cls.def("mm", &mm, nb::arg("mat2"));
  m.def("bmm", &bmm, nb::arg("input"), nb::arg("mat2"));
  cls.def("bmm", &bmm, nb::arg("mat2"));
  m.def("addmm", &addmm, nb::arg("input"), nb::arg("mat1"), nb::arg("mat2"), nb::kw_only(),
        nb::arg("beta") = Scalar(int64_t(1)), nb::arg("alpha") = Scalar(int64_t(1)));
  cls.def("addmm", &addmm, nb::arg("mat1"), nb::arg("mat2"), nb::kw_only(), nb::arg("beta") = Scalar(int64_t(1)),
          nb::arg("alpha") = Scalar(int64_t(1)));
  m.def("linear", [](const Tensor& x, const Tensor& w, std::optional<Tensor> b) { return linear(x, w, b.value_or(Tensor())); },
        nb::arg("input"), nb::arg("weight"), nb::arg("bias").none() = nb::none());
  m.def("outer", &outer, nb::arg("input"), nb::arg("vec2"));
  cls.def("outer", &outer, nb::arg("vec2"));
  m.def("einsum", [](const std::string& equation, nb::args operands) {
    std::vector<Tensor> tensors;
    if (operands.size() == 1 && !nb::isinstance<Tensor>(operands[0]))
      tensors = cast_arg<std::vector<Tensor>>(operands[0], "einsum", "operands");
    else
      for (nb::handle h : operands) tensors.push_back(cast_arg<Tensor>(h, "einsum", "operands"));
    return einsum(equation, tensors);
  }, nb::arg("equation"), nb::arg("operands"));
  m.def("dot", &dot, nb::arg("input"), nb::arg("tensor"));
  cls.def("dot", &dot, nb::arg("tensor"));
}

}  // namespace loom::python
