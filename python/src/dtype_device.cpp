// loom.dtype (loom.float32, ...) and loom.device.
#include <nanobind/operators.h>

#include "convert.h"

namespace loom::python {

void bind_dtype_device(nb::module_& m) {
  auto dtype = nb::enum_<DType>(m, "dtype", "The element type of a tensor (loom.float32, loom.int64, ...).");
  for (int i = 0; i < kNumDTypes; ++i) {
    DType d = static_cast<DType>(i);
    dtype.value(dtype_name(d), d);
  }
  dtype.def("__repr__", [](DType d) { return std::string("loom.") + dtype_name(d); })
      .def("__str__", [](DType d) { return std::string("loom.") + dtype_name(d); })
      .def_prop_ro("is_floating_point", [](DType d) { return is_floating(d); })
      .def_prop_ro("itemsize", [](DType d) { return itemsize(d); });
  for (int i = 0; i < kNumDTypes; ++i) {
    DType d = static_cast<DType>(i);
    m.attr(dtype_name(d)) = d;
  }
  m.def("promote_types", &promote_types, nb::arg("type1"), nb::arg("type2"),
        "The smallest dtype both convert to, as torch.promote_types.");
  m.def("result_type", [](nb::handle a, nb::handle b) {
    auto arg = [](nb::handle h) -> Tensor {
      if (nb::isinstance<Tensor>(h)) return nb::cast<Tensor>(h);
      Scalar s;
      if (!nb::try_cast<Scalar>(h, s))
        fail(ErrorKind::Type, "result_type: expected a tensor or a number, got '", nb::inst_name(h).c_str(), "'");
      return wrapped_scalar(s);
    };
    return result_type({arg(a), arg(b)});
  }, nb::arg("tensor1"), nb::arg("tensor2"), "The dtype an arithmetic op on the two arguments returns, as torch.result_type.");
  m.def("get_default_dtype", &default_float_dtype);
  m.def("set_default_dtype", &set_default_float_dtype, nb::arg("dtype"));
  m.def("dtype_from_name", &dtype_from_name, nb::arg("name"));

  nb::class_<Device>(m, "device", "Where a tensor lives: loom.device('cpu'), loom.device('cuda:0').")
      .def(nb::init<const std::string&>(), nb::arg("spec"))
      .def("__init__", [](Device* self, const std::string& type, int index) {
        LOOM_CHECK(index >= 0, Value, "device: index must be non-negative, got ", index);
        new (self) Device(Device(type).type, index);
      }, nb::arg("type"), nb::arg("index"))
      .def_prop_ro("type", [](const Device& d) { return std::string(device_type_name(d.type)); })
      .def_prop_ro("index", [](const Device& d) -> std::optional<int> {
        if (d.type == DeviceType::CPU || d.index == Device::kCurrentIndex) return std::nullopt;
        return d.index;
      })
      .def("__repr__", [](const Device& d) {
        if (d.type == DeviceType::CPU || d.index == Device::kCurrentIndex)
          return "device(type='" + std::string(device_type_name(d.type)) + "')";
        return "device(type='" + std::string(device_type_name(d.type)) + "', index=" + std::to_string(d.index) + ")";
      })
      .def("__str__", &Device::str)
      .def("__eq__", [](const Device& a, const Device& b) { return a == b; })
      .def("__eq__", [](const Device& a, const std::string& b) { return a == Device(b); })
      .def("__hash__", [](const Device& d) { return static_cast<int>(d.type) * 1000 + d.index; });
  nb::implicitly_convertible<std::string, Device>();
}

}  // namespace loom::python
