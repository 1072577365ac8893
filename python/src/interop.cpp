// Getting data in and out: loom.tensor(nested lists), NumPy (.numpy(), from_numpy) and DLPack, both zero-copy.
#include <nanobind/ndarray.h>

#include "convert.h"
#include "loom/core/checked.h"

namespace loom::python {

namespace {

// ---- nested Python sequences -> tensor ----

enum class Kind { Bool = 0, Int = 1, Float = 2 };

struct Flattened {
  Shape shape;
  std::vector<Scalar> values;
  Kind kind = Kind::Bool;
  bool shape_known = false;
};

void flatten(nb::handle obj, size_t depth, Flattened& out, Shape& current) {
  nb::object number;  // owns the Python number a 0-d tensor element becomes, for as long as `obj` points at it
  if (nb::isinstance<Tensor>(obj)) {
    const Tensor& t = nb::cast<const Tensor&>(obj);
    LOOM_CHECK(t.numel() == 1 && t.dim() == 0, Value, "tensor: only 0-d tensors can be elements of a nested list, got shape ",
               shape_str(t.sizes()));
    number = nb::cast(t.item());
    obj = number;
  }
  bool is_sequence = PySequence_Check(obj.ptr()) && !PyUnicode_Check(obj.ptr()) && !PyBytes_Check(obj.ptr());
  if (!is_sequence) {
    Scalar s;
    try {
      s = nb::cast<Scalar>(obj);
    } catch (const nb::cast_error&) {
      fail(ErrorKind::Type, "tensor: could not convert an element of type '", nb::inst_name(obj).c_str(), "' to a number");
    }
    if (!out.shape_known) {
      out.shape = current;
      out.shape_known = true;
    }
    LOOM_CHECK(current.size() == out.shape.size(), Value, "tensor: expected a sequence at depth ", depth,
               " (the nested lists have inconsistent depth)");
    Kind k = s.is_bool() ? Kind::Bool : s.is_int() ? Kind::Int : Kind::Float;
    if (static_cast<int>(k) > static_cast<int>(out.kind)) out.kind = k;
    out.values.push_back(s);
    return;
  }
  Py_ssize_t n = PySequence_Size(obj.ptr());
  LOOM_CHECK(n >= 0, Value, "tensor: could not take the length of a sequence");
  if (out.shape_known) {
    LOOM_CHECK(depth < out.shape.size() && out.shape[depth] == n, Value, "tensor: expected sequence of length ",
               depth < out.shape.size() ? out.shape[depth] : 0, " at dim ", depth, " (got ", n, ")");
  }
  current.push_back(n);
  check_rank(static_cast<int64_t>(current.size()), "tensor");
  if (n == 0 && !out.shape_known) {
    out.shape = current;
    out.shape_known = true;
  }
  for (Py_ssize_t i = 0; i < n; ++i) {
    nb::object item = nb::steal(PySequence_GetItem(obj.ptr(), i));
    if (!item.is_valid()) throw nb::python_error();
    flatten(item, depth + 1, out, current);
  }
  current.pop_back();
}

Tensor tensor_from_values(const Flattened& f, DType dtype) {
  Tensor out = empty(f.shape, dtype);
  Tensor staging;
  // Write as int64 or float64 first, then convert: one code path for every target dtype.
  if (f.kind == Kind::Float) {
    std::vector<double> buffer;
    buffer.reserve(f.values.size());
    bool check = dtype != DType::Bool && !is_floating(dtype);
    for (const Scalar& s : f.values) {
      if (check) check_value_fits(s, dtype, "tensor");
      buffer.push_back(s.to_double());
    }
    staging = from_blob_copy(buffer.data(), f.shape, DType::Float64);
  } else {
    std::vector<int64_t> buffer;
    buffer.reserve(f.values.size());
    // Integers that do not fit the target dtype raise, as torch.tensor and loom.full do (no silent wrapping).
    bool check = dtype != DType::Bool && !is_floating(dtype);
    for (const Scalar& s : f.values) {
      if (check) check_value_fits(s, dtype, "tensor");
      buffer.push_back(s.to_int());
    }
    staging = from_blob_copy(buffer.data(), f.shape, DType::Int64);
  }
  detail::copy_data(out, staging);
  return out;
}

// ---- NumPy / DLPack dtype mapping ----

nb::dlpack::dtype to_dlpack(DType d) {
  using nb::dlpack::dtype_code;
  switch (d) {
    case DType::Bool: return {static_cast<uint8_t>(dtype_code::Bool), 8, 1};
    case DType::UInt8: return {static_cast<uint8_t>(dtype_code::UInt), 8, 1};
    case DType::Int8: return {static_cast<uint8_t>(dtype_code::Int), 8, 1};
    case DType::Int16: return {static_cast<uint8_t>(dtype_code::Int), 16, 1};
    case DType::Int32: return {static_cast<uint8_t>(dtype_code::Int), 32, 1};
    case DType::Int64: return {static_cast<uint8_t>(dtype_code::Int), 64, 1};
    case DType::Float16: return {static_cast<uint8_t>(dtype_code::Float), 16, 1};
    case DType::BFloat16: return {static_cast<uint8_t>(dtype_code::Bfloat), 16, 1};
    case DType::Float32: return {static_cast<uint8_t>(dtype_code::Float), 32, 1};
    default: return {static_cast<uint8_t>(dtype_code::Float), 64, 1};
  }
}

DType from_dlpack_dtype(nb::dlpack::dtype d, const char* op) {
  using nb::dlpack::dtype_code;
  LOOM_CHECK(d.lanes == 1, Type, op, ": vector dtypes (lanes != 1) are not supported");
  auto code = static_cast<dtype_code>(d.code);
  if (code == dtype_code::Bool) return DType::Bool;
  if (code == dtype_code::UInt && d.bits == 8) return DType::UInt8;
  if (code == dtype_code::Int) {
    switch (d.bits) {
      case 8: return DType::Int8;
      case 16: return DType::Int16;
      case 32: return DType::Int32;
      case 64: return DType::Int64;
    }
  }
  if (code == dtype_code::Float) {
    switch (d.bits) {
      case 16: return DType::Float16;
      case 32: return DType::Float32;
      case 64: return DType::Float64;
    }
  }
  if (code == dtype_code::Bfloat && d.bits == 16) return DType::BFloat16;
  fail(ErrorKind::Type, op, ": unsupported dtype (code ", int(d.code), ", ", int(d.bits), " bits)");
}

// Views an external array as a loom tensor without copying; the array stays alive while the storage does.
template <class Array>
Tensor wrap_array(const Array& array, const char* op, Device device = Device()) {
  DType dtype = from_dlpack_dtype(array.dtype(), op);
  check_rank(static_cast<int64_t>(array.ndim()), op);
  Shape sizes, strides;
  int64_t extent = 1;
  bool empty = false;
  for (size_t i = 0; i < array.ndim(); ++i) {
    sizes.push_back(static_cast<int64_t>(array.shape(i)));
    strides.push_back(static_cast<int64_t>(array.stride(i)));
    LOOM_CHECK(strides.back() >= 0, Value, op, ": at least one stride in the given array is negative; loom tensors "
               "need non-negative strides (make a copy first, e.g. array.copy())");
    if (sizes.back() == 0) empty = true;
    if (sizes.back() > 0)
      extent = checked_add(extent, checked_mul(sizes.back() - 1, strides.back(), op, "the array's extent"), op,
                           "the array's extent");
  }
  if (empty) extent = 0;
  auto holder = std::make_shared<Array>(array);
  size_t nbytes = static_cast<size_t>(extent) * itemsize(dtype);
  auto storage = Storage::wrap(const_cast<void*>(static_cast<const void*>(array.data())), nbytes, device,
                               [holder]() mutable {
                                 nb::gil_scoped_acquire gil;
                                 holder.reset();
                               });
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->sizes = std::move(sizes);
  impl->strides = std::move(strides);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

// A tensor on a device is never viewed by host code: NumPy gets CPU tensors only (PyTorch's message). DLPack hands
// device memory to consumers of that device (dlpack_device below).
void check_host_export(const Tensor& t) {
  if (t.device().is_cpu()) return;
  fail(ErrorKind::Type, "can't convert ", t.device().str(), " device type tensor to numpy. Use Tensor.cpu() to copy "
       "the tensor to host memory first.");
}

// DLPack's device types: kDLCPU (1), kDLCUDA (2), and kDLExtDev (12) for a plugin's device type.
constexpr int32_t kDLExtDev = 12;
int32_t dlpack_device_type(Device d) {
  if (d.is_cpu()) return nb::device::cpu::value;
  return d.type == DeviceType::CUDA ? nb::device::cuda::value : kDLExtDev;
}

// The loom device of an imported DLPack array. kDLExtDev names no vendor, so it is read as the one plugin device type
// that is loaded, and refused when there are several.
Device device_of_dlpack(int32_t type, int32_t id) {
  if (type == nb::device::cpu::value) return Device();
  if (type == nb::device::cuda::value) {
    LOOM_CHECK(has_backend(DeviceType::CUDA), NotImplemented,
               "from_dlpack: the array is in CUDA memory but no CUDA backend is loaded");
    return resolve_device_index(Device(DeviceType::CUDA, id));
  }
  LOOM_CHECK(type == kDLExtDev, NotImplemented, "from_dlpack: arrays of DLPack device type ", type,
             " cannot be imported (supported: 1 kDLCPU, 2 kDLCUDA, 12 kDLExtDev for a loaded plugin device)");
  DeviceType plugin = DeviceType::Any;
  int plugins = 0;
  for (int slot = kFirstPluginSlot; slot < kFirstPluginSlot + kNumPluginSlots; ++slot)
    if (has_backend(static_cast<DeviceType>(slot))) {
      plugin = static_cast<DeviceType>(slot);
      ++plugins;
    }
  LOOM_CHECK(plugins == 1, NotImplemented, "from_dlpack: an array on DLPack device type 12 (kDLExtDev) needs exactly "
             "one loaded plugin device to belong to, found ", plugins);
  return resolve_device_index(Device(plugin, id));
}

// An nb::ndarray view of `t` that keeps t's storage alive.
template <class... Framework>
nb::ndarray<Framework...> export_view(const Tensor& t) {
  check_rank(t.dim(), "export");  // every tensor already has at most kMaxRank dims; NumPy aborts beyond 64
  auto* keep = new std::shared_ptr<Storage>(t.storage());
  nb::capsule owner(keep, [](void* p) noexcept { delete static_cast<std::shared_ptr<Storage>*>(p); });
  std::vector<size_t> shape(t.sizes().begin(), t.sizes().end());
  std::vector<int64_t> strides(t.strides().begin(), t.strides().end());
  return nb::ndarray<Framework...>(t.data_ptr(), shape.size(), shape.data(), owner, strides.data(), to_dlpack(t.dtype()),
                                dlpack_device_type(t.device()), t.device().is_cpu() ? 0 : t.device().index);
}

}  // namespace

void bind_interop(nb::module_& m, nb::class_<Tensor>& cls) {
  m.def("tensor", [](nb::handle data, std::optional<DType> dtype, std::optional<Device> device, bool requires_grad) {
    Tensor out;
    if (nb::isinstance<Tensor>(data)) {
      // Converts and moves the source once; a copy is made only when neither step made one.
      const Tensor src = nb::cast<const Tensor&>(data).detach();
      out = dtype ? to_dtype(src, *dtype) : src;
      if (device) out = to_device(out, *device);
      if (out.storage() == src.storage()) out = clone(out);
      out = out.detach();
      device.reset();
    } else if (nb::hasattr(data, "__array_interface__") || nb::hasattr(data, "__dlpack__")) {
      // A copy is made anyway, so arrays loom cannot view (negative strides) are made contiguous first.
      nb::object source = nb::borrow(data);
      if (nb::hasattr(data, "__array_interface__") && nb::hasattr(data, "ndim") && nb::cast<int64_t>(data.attr("ndim")) > 0)
        source = nb::module_::import_("numpy").attr("ascontiguousarray")(data);
      nb::ndarray<nb::ro> array;
      try {
        array = nb::cast<nb::ndarray<nb::ro>>(source);
      } catch (const nb::cast_error&) {
        fail(ErrorKind::Type, "tensor: unsupported array of type '", nb::inst_name(data).c_str(), "' (dtype ",
             nb::hasattr(data, "dtype") ? nb::str(data.attr("dtype")).c_str() : "?", ")");
      }
      Tensor view = wrap_array(array, "tensor");
      out = clone(view);
      if (dtype) out = to_dtype(out, *dtype);
    } else {
      Flattened f;
      Shape current;
      flatten(data, 0, f, current);
      // An empty list has no elements to infer from: the default float dtype, as torch.tensor([]).
      DType inferred = f.kind == Kind::Float || f.values.empty() ? default_float_dtype()
                       : f.kind == Kind::Int                     ? DType::Int64
                                                                 : DType::Bool;
      DType target = dtype.value_or(inferred);
      if (f.kind == Kind::Float && !is_floating(target)) {
        for (const Scalar& s : f.values)
          LOOM_CHECK(std::isfinite(s.to_double()), Value, "tensor: cannot convert a non-finite float to ", dtype_name(target));
      }
      out = tensor_from_values(f, target);
    }
    // Built on the host, then moved (PyTorch's torch.tensor(data, device=) does the same).
    if (device) out = to_device(out, *device).detach();
    if (requires_grad) out.set_requires_grad(true);
    return out;
  }, nb::arg("data"), nb::kw_only(), nb::arg("dtype").none() = nb::none(), nb::arg("device").none() = nb::none(),
     nb::arg("requires_grad") = false,
     "Creates a tensor by copying data (nested lists of numbers, a NumPy array, or a tensor).");

  m.def("from_numpy", [](nb::ndarray<nb::numpy, nb::device::cpu> array) { return wrap_array(array, "from_numpy"); },
        nb::arg("array"), "A tensor sharing memory with a NumPy array.");
  // Reached when the array above does not convert: explain why instead of nanobind's signature mismatch.
  m.def("from_numpy", [](nb::handle obj) -> Tensor {
    nb::object ndarray = nb::module_::import_("numpy").attr("ndarray");
    if (!nb::isinstance(obj, ndarray)) {
      // NumPy scalars (np.float32(1)) have __array_interface__ but are not arrays.
      fail(ErrorKind::Type, "from_numpy: expected a numpy.ndarray, got '", nb::inst_name(obj).c_str(), "'",
           nb::hasattr(obj, "__array_interface__") ? " (a NumPy scalar, not an array; use numpy.asarray(value))" : "");
    }
    if (!nb::cast<bool>(obj.attr("flags").attr("writeable")))
      fail(ErrorKind::Value, "from_numpy: the array is read-only and loom tensors are writable; pass a copy "
           "(array.copy())");
    fail(ErrorKind::Type, "from_numpy: unsupported NumPy dtype ", nb::str(obj.attr("dtype")).c_str(),
         " (supported: bool, uint8, int8, int16, int32, int64, float16, float32, float64)");
  }, nb::arg("array"));
  m.def("from_dlpack", [](nb::handle obj) {
    nb::ndarray<> array;
    try {
      array = nb::cast<nb::ndarray<>>(obj);
    } catch (const nb::cast_error&) {
      fail(ErrorKind::Type, "from_dlpack: object of type '", nb::inst_name(obj).c_str(), "' does not support DLPack");
    }
    return wrap_array(array, "from_dlpack", device_of_dlpack(array.device_type(), array.device_id()));
  }, nb::arg("ext_tensor"), "A tensor sharing memory with any object that implements the DLPack protocol.");

  cls.def("numpy", [](const Tensor& t, bool force) {
    Tensor source = t;
    if (force) source = t.detach();
    LOOM_CHECK(!source.requires_grad(), Runtime,
               "numpy: can't call numpy() on a tensor that requires grad; use tensor.detach().numpy() instead");
    LOOM_CHECK(source.dtype() != DType::BFloat16, Type, "numpy: NumPy has no bfloat16 dtype; convert with .float() first");
    if (force) source = source.to_host();  // numpy(force=True) copies a device tensor to the host, as in PyTorch
    check_host_export(source);
    return export_view<nb::numpy>(source);
  }, nb::kw_only(), nb::arg("force") = false,
     "A NumPy array sharing memory with this CPU tensor (force=True: detached, and copied from a device).");
  // np.asarray(tensor) / np.array(tensor): the numpy() view (a copy when a dtype is asked for), as in PyTorch.
  cls.def("__array__", [](nb::handle self, nb::handle dtype, nb::handle copy) {
    nb::object array = self.attr("numpy")();
    if (!dtype.is_none()) return array.attr("astype")(dtype, nb::arg("copy") = false);
    if (!copy.is_none() && nb::cast<bool>(copy)) return array.attr("copy")();
    return array;
  }, nb::arg("dtype").none() = nb::none(), nb::kw_only(), nb::arg("copy").none() = nb::none());
  // nanobind turns a framework-less ndarray into a (legacy, unversioned) DLPack capsule, which every
  // consumer accepts; max_version and the other keywords of newer consumers are accepted and ignored. A device tensor
  // is exported as device memory; its work queued so far is finished first unless the consumer passes stream=-1
  // (DLPack's "no synchronisation"), so any stream of the consumer's sees the data.
  cls.def("__dlpack__", [](const Tensor& t, nb::kwargs kwargs) {
    const bool no_sync = kwargs.contains("stream") && !kwargs["stream"].is_none() &&
                         nb::isinstance<nb::int_>(kwargs["stream"]) && nb::cast<int64_t>(kwargs["stream"]) == -1;
    if (!t.device().is_cpu() && !no_sync) {
      nb::gil_scoped_release release;
      synchronize(t.device());
    }
    return nb::cast(export_view<>(t.detach()));
  }, nb::arg("kwargs"));
  // Where the data lives, in DLPack's terms: kDLCPU, kDLCUDA, and kDLExtDev (12) for a plugin's device type.
  cls.def("__dlpack_device__", [](const Tensor& t) {
    const Device d = t.device();
    return nb::make_tuple(dlpack_device_type(d), d.is_cpu() ? 0 : d.index);
  });
}

}  // namespace loom::python
