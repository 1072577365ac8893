// Tensor.__getitem__ / __setitem__: converts Python index objects (ints, slices, None, Ellipsis, bools,
// tensors, lists and NumPy arrays) into loom::TensorIndex and calls loom::index / loom::index_put_.
#include "convert.h"
#include "loom/ops/indexing.h"

namespace loom::python {

namespace {

bool is_sequence(nb::handle h) {
  return PySequence_Check(h.ptr()) && !PyUnicode_Check(h.ptr()) && !PyBytes_Check(h.ptr()) &&
         !nb::isinstance<Tensor>(h);
}

// An integer-like Python object (int, NumPy integer), excluding bool, floats and tensors.
bool is_integer(nb::handle h) {
  if (PyBool_Check(h.ptr()) || PyFloat_Check(h.ptr()) || nb::isinstance<Tensor>(h)) return false;
  if (PyLong_Check(h.ptr())) return true;
  PyTypeObject* type = Py_TYPE(h.ptr());
  return type->tp_as_number && type->tp_as_number->nb_index && !is_sequence(h);
}

bool is_numpy_array(nb::handle h) {
  return PyObject_HasAttrString(h.ptr(), "__array_interface__") && PyObject_HasAttrString(h.ptr(), "dtype") &&
         PyObject_HasAttrString(h.ptr(), "ndim") && !nb::isinstance<Tensor>(h);
}

// A list or NumPy array used as an index becomes a tensor (bool data -> mask, otherwise int64).
Tensor tensor_from_data(nb::handle h) {
  if (PyList_Check(h.ptr()) && PyList_Size(h.ptr()) == 0) return empty({0}, DType::Int64);
  nb::object tensor_fn = nb::module_::import_("loom._C").attr("tensor");
  Tensor t = nb::cast<Tensor>(tensor_fn(h));
  if (t.dtype() == DType::Bool || t.dtype() == DType::UInt8) return t;
  LOOM_CHECK(is_integral(t.dtype()), Index,
             "index: tensors used as indices must be long, int, byte or bool tensors, got ", dtype_name(t.dtype()));
  return t.dtype() == DType::Int64 ? t : to_dtype(t, DType::Int64);
}

TensorIndex convert_one(nb::handle h) {
  PyObject* o = h.ptr();
  if (o == Py_None) return TensorIndex::make_none();
  if (o == Py_Ellipsis) return TensorIndex::make_ellipsis();
  if (PyBool_Check(o)) return TensorIndex::make_boolean(o == Py_True);
  if (PySlice_Check(o)) {
    Py_ssize_t start, stop, step;
    if (PySlice_Unpack(o, &start, &stop, &step) < 0) throw nb::python_error();
    PySliceObject* s = reinterpret_cast<PySliceObject*>(o);
    std::optional<int64_t> begin, end;
    if (s->start != Py_None) begin = start;
    if (s->stop != Py_None) end = stop;
    return TensorIndex::make_slice(begin, end, step);
  }
  if (nb::isinstance<Tensor>(h)) return TensorIndex::make_tensor(nb::cast<Tensor>(h));
  if (is_integer(h)) {
    long long v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred()) throw nb::python_error();
    return TensorIndex::make_integer(v);
  }
  if (PyList_Check(o) || PyTuple_Check(o) || is_numpy_array(h)) return TensorIndex::make_tensor(tensor_from_data(h));
  if (PyFloat_Check(o) || (Py_TYPE(o)->tp_as_number && Py_TYPE(o)->tp_as_number->nb_float && !is_sequence(h)))
    fail(ErrorKind::Index, "index: only integers, slices (`:`), ellipsis (`...`), None and long or byte tensors are "
                           "valid indices (got ", nb::inst_name(h).c_str(), ")");
  fail(ErrorKind::Type, "index: only integers, slices (`:`), ellipsis (`...`), None, bools, tensors, lists and "
                        "NumPy arrays are valid indices (got ", nb::inst_name(h).c_str(), ")");
}

// PyTorch treats a short list holding slices, None, Ellipsis, sequences or tensors as a tuple of indices.
bool list_as_tuple(nb::handle h) {
  if (!PyList_Check(h.ptr())) return false;
  Py_ssize_t n = PyList_Size(h.ptr());
  if (n >= 32) return false;
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* item = PyList_GetItem(h.ptr(), i);
    if (item == Py_None || item == Py_Ellipsis || PySlice_Check(item) || nb::isinstance<Tensor>(nb::handle(item)) ||
        is_sequence(nb::handle(item)))
      return true;
  }
  return false;
}

std::vector<TensorIndex> convert(nb::handle index) {
  std::vector<TensorIndex> out;
  if (PyTuple_Check(index.ptr()) || list_as_tuple(index)) {
    nb::object seq = nb::steal(PySequence_Fast(index.ptr(), "index"));
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq.ptr());
    for (Py_ssize_t i = 0; i < n; ++i) out.push_back(convert_one(PySequence_Fast_GET_ITEM(seq.ptr(), i)));
    return out;
  }
  out.push_back(convert_one(index));
  return out;
}

// A tuple/list of index tensors (None entries index every position of their dim).
std::vector<Tensor> index_tensors(nb::handle indices) {
  LOOM_CHECK(PyTuple_Check(indices.ptr()) || PyList_Check(indices.ptr()), Type,
             "index_put: indices must be a tuple or list of tensors, got '", nb::inst_name(indices).c_str(), "'");
  std::vector<Tensor> out;
  for (nb::handle h : indices) {
    if (h.is_none()) out.emplace_back();
    else if (nb::isinstance<Tensor>(h)) out.push_back(nb::cast<Tensor>(h));
    else fail(ErrorKind::Type, "index_put: indices must be tensors, got '", nb::inst_name(h).c_str(), "'");
  }
  return out;
}

}  // namespace

void bind_indexing(nb::module_& m, nb::class_<Tensor>& cls) {
  cls.def("__getitem__", [](const Tensor& t, nb::handle index) { return loom::index(t, convert(index)); },
          nb::arg("index").none());
  cls.def("__setitem__", [](Tensor& t, nb::handle index, nb::handle value) {
    std::vector<TensorIndex> indices = convert(index);
    if (nb::isinstance<Tensor>(value)) {
      index_put_(t, indices, nb::cast<const Tensor&>(value));
      return;
    }
    Scalar s;
    if (nb::try_cast<Scalar>(value, s)) {
      index_put_(t, indices, s);
      return;
    }
    LOOM_CHECK(is_sequence(value) || is_numpy_array(value), Type,
               "__setitem__: value must be a tensor, a number, a sequence or a NumPy array, got '",
               nb::inst_name(value).c_str(), "'");
    Tensor v = nb::cast<Tensor>(nb::module_::import_("loom._C").attr("tensor")(value));
    index_put_(t, indices, v);
  }, nb::arg("index").none(), nb::arg("value").none());

  auto put = [](const Tensor& t, nb::handle indices, const Tensor& values, bool accumulate) {
    return index_put(t, index_tensors(indices), values, accumulate);
  };
  m.def("index_put", put, nb::arg("input"), nb::arg("indices"), nb::arg("values"), nb::arg("accumulate") = false);
  cls.def("index_put", put, nb::arg("indices"), nb::arg("values"), nb::arg("accumulate") = false);
  cls.def("index_put_", [](Tensor& t, nb::handle indices, const Tensor& values, bool accumulate) -> Tensor& {
    return index_put_(t, index_tensors(indices), values, accumulate);
  }, nb::arg("indices"), nb::arg("values"), nb::arg("accumulate") = false, nb::rv_policy::reference);
  m.def("take", &take, nb::arg("input"), nb::arg("index"));
  cls.def("take", &take, nb::arg("index"));
  m.def("take_along_dim", &take_along_dim, nb::arg("input"), nb::arg("indices"), nb::arg("dim").none() = nb::none());
  cls.def("take_along_dim", &take_along_dim, nb::arg("indices"), nb::arg("dim").none() = nb::none());
}

}  // namespace loom::python
