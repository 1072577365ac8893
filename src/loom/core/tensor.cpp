#include "loom/core/tensor.h"

#include <cmath>
#include <sstream>

#include "loom/core/error.h"

namespace loom {

Tensor Tensor::empty(const Shape& sizes, DType dtype, Device device) {
  int64_t n = checked_numel(sizes, "empty");
  size_t nbytes = 0;
  LOOM_CHECK(!__builtin_mul_overflow(static_cast<size_t>(n), loom::itemsize(dtype), &nbytes), Value,
             "empty: shape ", shape_str(sizes), " is too large");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::allocate(nbytes, device);
  impl->sizes = sizes;
  impl->strides = contiguous_strides(sizes);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::make_view(const Tensor& base, Shape sizes, Shape strides, int64_t offset) {
  // Bounds: the lowest and highest element the view can touch must lie inside the storage.
  int64_t lo = offset, hi = offset;
  bool empty = false;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] == 0) empty = true;
    int64_t span = (sizes[i] - 1) * strides[i];
    (span < 0 ? lo : hi) += span;
  }
  int64_t capacity = static_cast<int64_t>(base.storage()->nbytes() / base.itemsize());
  LOOM_CHECK(empty || (lo >= 0 && hi < capacity), Value, "as_strided: view with size ", shape_str(sizes),
             ", stride ", shape_str(strides), " and offset ", offset, " is out of bounds for a storage of ",
             capacity, " elements");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->offset = offset;
  impl->sizes = std::move(sizes);
  impl->strides = std::move(strides);
  impl->dtype = base.dtype();
  impl->view_base = base.is_view() ? base.impl()->view_base : base.impl();
  return Tensor(std::move(impl));
}

int64_t Tensor::size(int64_t d) const { return impl_->sizes[normalize_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return impl_->strides[normalize_dim(d, dim(), "stride")]; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (size_t i = impl_->sizes.size(); i-- > 0;) {
    if (impl_->sizes[i] == 1) continue;
    if (impl_->sizes[i] == 0) return true;
    if (impl_->strides[i] != expected) return false;
    expected *= impl_->sizes[i];
  }
  return true;
}

void* Tensor::data_ptr() const {
  return static_cast<char*>(impl_->storage->data()) + impl_->offset * static_cast<int64_t>(itemsize());
}

namespace {
// Integers and bool; the floating types are read in read_element.
template <class T>
Scalar read_scalar(const void* p) {
  T v = *static_cast<const T*>(p);
  if constexpr (std::is_same_v<T, bool>) return Scalar(v);
  else return Scalar(static_cast<int64_t>(v));
}

Scalar read_element(DType dtype, const void* p) {
  switch (dtype) {
    case DType::Bool: return read_scalar<bool>(p);
    case DType::UInt8: return read_scalar<uint8_t>(p);
    case DType::Int8: return read_scalar<int8_t>(p);
    case DType::Int16: return read_scalar<int16_t>(p);
    case DType::Int32: return read_scalar<int32_t>(p);
    case DType::Int64: return read_scalar<int64_t>(p);
    case DType::Float16: return Scalar(static_cast<double>(static_cast<float>(*static_cast<const Half*>(p))));
    case DType::BFloat16: return Scalar(static_cast<double>(static_cast<float>(*static_cast<const BFloat16*>(p))));
    case DType::Float32: return Scalar(static_cast<double>(*static_cast<const float*>(p)));
    default: return Scalar(*static_cast<const double*>(p));
  }
}

void format_element(std::ostringstream& out, const Scalar& s) {
  if (s.is_bool()) out << (s.to_bool() ? "True" : "False");
  else if (s.is_int()) out << s.to_int();
  else {
    double v = s.to_double();
    if (std::isnan(v)) out << "nan";
    else if (std::isinf(v)) out << (v > 0 ? "inf" : "-inf");
    else if (v == std::floor(v) && std::fabs(v) < 1e16) out << static_cast<int64_t>(v) << ".";
    else out << v;
  }
}

void format_dims(std::ostringstream& out, const Tensor& t, size_t dim, int64_t offset) {
  if (dim == t.sizes().size()) {
    format_element(out, read_element(t.dtype(), static_cast<const char*>(t.storage()->data()) +
                                                    offset * static_cast<int64_t>(t.itemsize())));
    return;
  }
  out << "[";
  int64_t n = t.sizes()[dim];
  for (int64_t i = 0; i < n; ++i) {
    if (n > 1000 && i == 3) {  // summarise long dims as PyTorch does
      out << "..., ";
      i = n - 3;
    }
    if (i) out << ", ";
    format_dims(out, t, dim + 1, offset + i * t.strides()[dim]);
  }
  out << "]";
}
}  // namespace

Scalar Tensor::item() const {
  LOOM_CHECK(numel() == 1, Value, "item: a tensor with ", numel(), " elements cannot be converted to a scalar");
  LOOM_CHECK(device().type == DeviceType::CPU, NotImplemented, "item: copy the tensor to the CPU first (device ",
             device().str(), ")");
  return read_element(dtype(), data_ptr());
}

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::ostringstream out;
  out << "tensor(";
  if (device().type == DeviceType::CPU) format_dims(out, *this, 0, offset());
  else out << "...";
  if (numel() == 0) out << ", size=" << shape_str(sizes());
  if (dtype() != DType::Float32 && dtype() != DType::Int64 && dtype() != DType::Bool)
    out << ", dtype=loom." << dtype_name(dtype());
  if (device().type != DeviceType::CPU) out << ", device='" << device().str() << "'";
  out << ")";
  return out.str();
}

}  // namespace loom
