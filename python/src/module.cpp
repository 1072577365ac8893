// The loom._C extension module: binds the C++ API. Bindings hold no logic; each binding file binds one family.
#include "convert.h"

namespace loom::python {

std::optional<int64_t> int_arg(nb::handle value, const char* op, const char* name) {
  PyObject* o = value.ptr();
  if (PyBool_Check(o) || PyFloat_Check(o)) return std::nullopt;
  if (nb::isinstance<Tensor>(value)) {
    const Tensor& t = nb::cast<const Tensor&>(value);
    if (t.dim() != 0) return std::nullopt;  // a 1-d tensor is a sequence of integers
    LOOM_CHECK(!is_floating(t.dtype()) && t.dtype() != DType::Bool, Type, op, ": ", name,
               " must be an int, got a 0-d tensor of dtype ", dtype_name(t.dtype()));
    return t.item().to_int();
  }
  PyNumberMethods* number = Py_TYPE(o)->tp_as_number;
  if (!PyLong_Check(o) && (PySequence_Check(o) || !number || !number->nb_index)) return std::nullopt;
  nb::object index = nb::steal(PyNumber_Index(o));
  if (!index.is_valid()) {
    PyErr_Clear();
    return std::nullopt;
  }
  int overflow = 0;
  long long v = PyLong_AsLongLongAndOverflow(index.ptr(), &overflow);
  if (overflow || (v == -1 && PyErr_Occurred())) {
    PyErr_Clear();
    fail(ErrorKind::Value, op, ": ", name, " ", nb::str(index).c_str(), " is out of range (it must fit in int64)");
  }
  return static_cast<int64_t>(v);
}

std::vector<int64_t> int_list_arg(nb::handle value, const char* op, const char* name) {
  if (std::optional<int64_t> v = int_arg(value, op, name)) return {*v};
  PyObject* o = value.ptr();
  bool is_0d_tensor = nb::isinstance<Tensor>(value) && nb::cast<const Tensor&>(value).dim() == 0;
  if (!PySequence_Check(o) || PyUnicode_Check(o) || PyBytes_Check(o) || is_0d_tensor)
    fail(ErrorKind::Type, op, ": ", name, " must be an int or a sequence of ints, got '", nb::inst_name(value).c_str(),
         "'");
  Py_ssize_t n = PySequence_Size(o);
  if (n < 0) throw nb::python_error();
  std::vector<int64_t> out;
  for (Py_ssize_t i = 0; i < n; ++i) {
    nb::object item = nb::steal(PySequence_GetItem(o, i));
    if (!item.is_valid()) throw nb::python_error();
    std::optional<int64_t> v = int_arg(item, op, name);
    if (!v)
      fail(ErrorKind::Type, op, ": ", name, " must be an int or a sequence of ints, got an element of type '",
           nb::inst_name(item).c_str(), "'");
    out.push_back(*v);
  }
  return out;
}

Shape shape_from_args(const nb::args& args, const char* op) {
  if (args.size() == 1) return int_list_arg(args[0], op, "size");
  Shape shape;
  for (nb::handle h : args) {
    std::optional<int64_t> v = int_arg(h, op, "size");
    LOOM_CHECK(v.has_value(), Type, op, ": size arguments must be ints, got ", nb::inst_name(h).c_str());
    shape.push_back(*v);
  }
  return shape;
}

}  // namespace loom::python

NB_MODULE(_C, m) {
  using namespace loom::python;
  m.doc() = "loom's C++ core";
  bind_errors(m);
  bind_dtype_device(m);
  auto cls = nb::class_<loom::Tensor>(m, "Tensor", "A multi-dimensional array with autograd, like torch.Tensor.");
  bind_tensor(m, cls);
  bind_interop(m, cls);
  bind_creation(m);
  bind_shape(m, cls);
  bind_indexing(m, cls);
  bind_elementwise(m, cls);
  bind_reduce(m, cls);
  bind_linalg(m, cls);
  bind_index_ops(m, cls);
  bind_sort(m, cls);
  bind_nn(m, cls);
  bind_loss(m, cls);
  bind_random(m, cls);
  bind_autograd(m);
  bind_serialize(m);
  bind_optim(m);
  bind_data(m);
  bind_autocast(m);
  bind_backends(m);
  bind_distributed(m);
  bind_surface(m, cls);
  bind_rnn(m);
}
