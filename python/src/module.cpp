// The loom._C extension module: binds the C++ API. Bindings hold no logic; each binding file binds one family.
#include "convert.h"

namespace loom::python {

Shape shape_from_args(const nb::args& args, const char* op) {
  if (args.size() == 1 && !PyLong_Check(args[0].ptr())) {
    try {
      return nb::cast<Shape>(args[0]);
    } catch (const nb::cast_error&) {
      fail(ErrorKind::Type, op, ": expected a sequence of ints for the size, got ", nb::inst_name(args[0]).c_str());
    }
  }
  Shape shape;
  for (nb::handle h : args) {
    LOOM_CHECK(PyLong_Check(h.ptr()) || (Py_TYPE(h.ptr())->tp_as_number && Py_TYPE(h.ptr())->tp_as_number->nb_index &&
                                         !PyFloat_Check(h.ptr())),
               Type, op, ": size arguments must be ints, got ", nb::inst_name(h).c_str());
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(h.ptr(), &overflow);
    if (overflow || (v == -1 && PyErr_Occurred())) {
      PyErr_Clear();
      fail(ErrorKind::Value, op, ": size argument is out of range");
    }
    shape.push_back(v);
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
}
