// View and layout functions/methods: view, reshape, permute, transpose, expand, split, ...
#include "convert.h"

namespace loom::python {

namespace {

std::vector<Tensor> split_any(const Tensor& t, nb::handle split, int64_t dim) {
  if (std::optional<int64_t> size = int_arg(split, "split", "split_size_or_sections")) return loom::split(t, *size, dim);
  return split_with_sizes(t, int_list_arg(split, "split", "split_size_or_sections"), dim);
}

Tensor squeeze_any(const Tensor& t, nb::handle dim) {
  if (dim.is_none()) return squeeze(t);
  if (std::optional<int64_t> d = int_arg(dim, "squeeze", "dim")) return squeeze(t, {*d});
  std::vector<int64_t> dims = int_list_arg(dim, "squeeze", "dim");
  return dims.empty() ? view(t, t.sizes()) : squeeze(t, dims);
}

}  // namespace

void bind_shape(nb::module_& m, nb::class_<Tensor>& cls) {
  cls.def("view", [](const Tensor& t, nb::args shape) {
    if (shape.size() == 1 && nb::isinstance<DType>(shape[0]))
      fail(ErrorKind::NotImplemented, "view: reinterpreting a tensor as another dtype is not supported");
    return view(t, shape_from_args(shape, "view"));
  }, nb::arg("shape"));
  cls.def("reshape", [](const Tensor& t, nb::args shape) { return reshape(t, shape_from_args(shape, "reshape")); },
          nb::arg("shape"));
  m.def("reshape", [](const Tensor& t, const Shape& shape) { return reshape(t, shape); }, nb::arg("input"), nb::arg("shape"));
  cls.def("view_as", [](const Tensor& t, const Tensor& other) { return view(t, other.sizes()); });
  cls.def("reshape_as", [](const Tensor& t, const Tensor& other) { return reshape(t, other.sizes()); });
  cls.def("permute", [](const Tensor& t, nb::args dims) { return permute(t, shape_from_args(dims, "permute")); },
          nb::arg("dims"));
  m.def("permute", [](const Tensor& t, const std::vector<int64_t>& dims) { return permute(t, dims); }, nb::arg("input"),
        nb::arg("dims"));
  cls.def("transpose", &transpose, nb::arg("dim0"), nb::arg("dim1"));
  m.def("transpose", &transpose, nb::arg("input"), nb::arg("dim0"), nb::arg("dim1"));
  cls.def("movedim", &movedim, nb::arg("source"), nb::arg("destination"));
  m.def("movedim", &movedim, nb::arg("input"), nb::arg("source"), nb::arg("destination"));
  cls.def("t", &loom::t);
  m.def("t", &loom::t, nb::arg("input"));
  cls.def_prop_ro("T", [](const Tensor& x) {
    std::vector<int64_t> dims;
    for (int64_t i = x.dim() - 1; i >= 0; --i) dims.push_back(i);
    return permute(x, dims);
  });
  cls.def_prop_ro("mT", [](const Tensor& x) { return transpose(x, -2, -1); });
  cls.def("expand", [](const Tensor& t, nb::args sizes) { return expand(t, shape_from_args(sizes, "expand")); },
          nb::arg("sizes"));
  cls.def("expand_as", [](const Tensor& t, const Tensor& other) { return expand(t, other.sizes()); });
  m.def("broadcast_to", &broadcast_to, nb::arg("input"), nb::arg("size"));
  cls.def("broadcast_to", &broadcast_to, nb::arg("size"));
  m.def("broadcast_tensors", [](nb::args tensors) {
    std::vector<Tensor> in;
    for (nb::handle h : tensors) in.push_back(cast_arg<Tensor>(h, "broadcast_tensors", "tensors"));
    return broadcast_tensors(in);
  });
  m.def("broadcast_shapes", [](nb::args shapes) {
    Shape out;
    for (nb::handle h : shapes) out = broadcast_shapes(out, int_list_arg(h, "broadcast_shapes", "shapes"), "broadcast_shapes");
    return out;
  });
  cls.def("narrow", &narrow, nb::arg("dim"), nb::arg("start"), nb::arg("length"));
  m.def("narrow", &narrow, nb::arg("input"), nb::arg("dim"), nb::arg("start"), nb::arg("length"));
  cls.def("select", &select, nb::arg("dim"), nb::arg("index"));
  m.def("select", &select, nb::arg("input"), nb::arg("dim"), nb::arg("index"));
  cls.def("squeeze", &squeeze_any, nb::arg("dim").none() = nb::none());
  m.def("squeeze", &squeeze_any, nb::arg("input"), nb::arg("dim").none() = nb::none());
  cls.def("unsqueeze", &unsqueeze, nb::arg("dim"));
  m.def("unsqueeze", &unsqueeze, nb::arg("input"), nb::arg("dim"));
  cls.def("flatten", &flatten, nb::arg("start_dim") = 0, nb::arg("end_dim") = -1);
  m.def("flatten", &flatten, nb::arg("input"), nb::arg("start_dim") = 0, nb::arg("end_dim") = -1);
  cls.def("unflatten", &unflatten, nb::arg("dim"), nb::arg("sizes"));
  m.def("unflatten", &unflatten, nb::arg("input"), nb::arg("dim"), nb::arg("sizes"));
  cls.def("split", &split_any, nb::arg("split_size_or_sections"), nb::arg("dim") = 0);
  m.def("split", &split_any, nb::arg("tensor"), nb::arg("split_size_or_sections"), nb::arg("dim") = 0);
  cls.def("chunk", &chunk, nb::arg("chunks"), nb::arg("dim") = 0);
  m.def("chunk", &chunk, nb::arg("input"), nb::arg("chunks"), nb::arg("dim") = 0);
  cls.def("unbind", &unbind, nb::arg("dim") = 0);
  m.def("unbind", &unbind, nb::arg("input"), nb::arg("dim") = 0);
  cls.def("as_strided", &as_strided, nb::arg("size"), nb::arg("stride"), nb::arg("storage_offset").none() = nb::none());
  m.def("as_strided", &as_strided, nb::arg("input"), nb::arg("size"), nb::arg("stride"),
        nb::arg("storage_offset").none() = nb::none());
  m.def("clone", &clone, nb::arg("input"));
}

}  // namespace loom::python
