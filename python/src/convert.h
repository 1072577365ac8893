// Conversions between Python objects and loom values shared by the binding files.
#pragma once
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "loom/loom.h"

namespace nb = nanobind;

// Python bool/int/float (and NumPy scalars) <-> loom::Scalar.
namespace nanobind::detail {
template <>
struct type_caster<loom::Scalar> {
  NB_TYPE_CASTER(loom::Scalar, const_name("float | int | bool"))

  bool from_python(handle src, uint8_t, cleanup_list*) noexcept {
    PyObject* o = src.ptr();
    if (PyBool_Check(o)) {
      value = loom::Scalar(o == Py_True);
      return true;
    }
    if (PyLong_Check(o)) {
      int overflow = 0;
      long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
      if (overflow || (v == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return false;
      }
      value = loom::Scalar(static_cast<int64_t>(v));
      return true;
    }
    if (PyFloat_Check(o)) {
      value = loom::Scalar(PyFloat_AsDouble(o));
      return true;
    }
    // NumPy scalars: integers expose __index__, floats __float__. Strings and tensors are not numbers.
    if (PyUnicode_Check(o) || PyBytes_Check(o) || PySequence_Check(o)) return false;
    PyTypeObject* type = Py_TYPE(o);
    if (type->tp_as_number && type->tp_as_number->nb_index) {
      long long v = PyLong_AsLongLong(o);
      if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return false;
      }
      value = loom::Scalar(static_cast<int64_t>(v));
      return true;
    }
    if (type->tp_as_number && type->tp_as_number->nb_float) {
      double v = PyFloat_AsDouble(o);
      if (v == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return false;
      }
      value = loom::Scalar(v);
      return true;
    }
    return false;
  }

  static handle from_cpp(const loom::Scalar& s, rv_policy, cleanup_list*) noexcept {
    if (s.is_bool()) return PyBool_FromLong(s.to_bool());
    if (s.is_int()) return PyLong_FromLongLong(s.to_int());
    return PyFloat_FromDouble(s.to_double());
  }
};
}  // namespace nanobind::detail

namespace loom::python {

// Accepts f(2, 3), f((2, 3)) and f([2, 3]) the way PyTorch's size arguments do.
Shape shape_from_args(const nb::args& args, const char* op);

// The one parser of integer arguments (dims, sizes, window geometry). An integer is a Python int, a NumPy
// integer or a 0-d integer tensor (PyTorch takes all three via __index__); bool and float are not. Returns
// nullopt for a non-integer; raises ValueError naming `op` and `name` when the value does not fit int64.
std::optional<int64_t> int_arg(nb::handle value, const char* op, const char* name);
// An integer, or a sequence of integers (a list, a tuple, a 1-d integer tensor); raises TypeError naming `op`
// and `name` for anything else.
std::vector<int64_t> int_list_arg(nb::handle value, const char* op, const char* name);

// nb::cast for a user-supplied argument: raises TypeError naming `op` and the argument (nb::cast would throw
// std::bad_cast, whose text says neither).
template <class T>
T cast_arg(nb::handle value, const char* op, const char* name) {
  T out{};
  if (!nb::try_cast<T>(value, out))
    fail(ErrorKind::Type, op, ": argument '", name, "' has an unsupported type '", nb::inst_name(value).c_str(), "'");
  return out;
}
// Turns a Python number into a 0-d tensor with "wrapped number" promotion priority.
Tensor as_tensor_arg(nb::handle value, const Tensor& like, const char* op);

void bind_dtype_device(nb::module_& m);
void bind_errors(nb::module_& m);
void bind_tensor(nb::module_& m, nb::class_<Tensor>& cls);
void bind_interop(nb::module_& m, nb::class_<Tensor>& cls);
void bind_creation(nb::module_& m);
void bind_indexing(nb::module_& m, nb::class_<Tensor>& cls);
void bind_elementwise(nb::module_& m, nb::class_<Tensor>& cls);
void bind_reduce(nb::module_& m, nb::class_<Tensor>& cls);
void bind_shape(nb::module_& m, nb::class_<Tensor>& cls);
void bind_linalg(nb::module_& m, nb::class_<Tensor>& cls);
void bind_index_ops(nb::module_& m, nb::class_<Tensor>& cls);
void bind_nn(nb::module_& m, nb::class_<Tensor>& cls);
void bind_sort(nb::module_& m, nb::class_<Tensor>& cls);
void bind_loss(nb::module_& m, nb::class_<Tensor>& cls);
void bind_random(nb::module_& m, nb::class_<Tensor>& cls);
void bind_autograd(nb::module_& m);
void bind_serialize(nb::module_& m);
void bind_optim(nb::module_& m);
void bind_data(nb::module_& m);
void bind_autocast(nb::module_& m);
void bind_backends(nb::module_& m);
void bind_distributed(nb::module_& m);
void bind_surface(nb::module_& m, nb::class_<Tensor>& cls);
void bind_rnn(nb::module_& m);

}  // namespace loom::python
