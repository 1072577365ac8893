#include "loom/core/tensor.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "loom/core/backend.h"
#include "loom/core/error.h"

namespace loom {

Tensor Tensor::empty(const Shape& sizes, DType dtype, Device device) {
  check_rank(static_cast<int64_t>(sizes.size()), "empty");
  int64_t n = checked_numel(sizes, "empty");
  // Byte offsets into a storage are int64 (data() computes offset * itemsize), so its size must fit int64 too.
  int64_t nbytes = 0;
  LOOM_CHECK(!__builtin_mul_overflow(n, static_cast<int64_t>(loom::itemsize(dtype)), &nbytes), Value,
             "empty: shape ", shape_str(sizes), " is too large (", dtype_name(dtype), " elements)");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::allocate(static_cast<size_t>(nbytes), device);
  impl->sizes = sizes;
  impl->strides = contiguous_strides(sizes);
  impl->dtype = dtype;
  // A bool byte other than 0 or 1 is an invalid value (undefined behaviour when loaded as bool): uninitialised
  // bool tensors start as all False.
  if (dtype == DType::Bool && nbytes > 0) {
    if (device.type == DeviceType::CPU) {
      std::memset(impl->storage->data(), 0, nbytes);
    } else {
      const Device where = impl->storage->device();
      backend_for(where.type).memset(impl->storage->data(), 0, nbytes, current_stream(where));
    }
  }
  return Tensor(std::move(impl));
}

Tensor Tensor::to_host() const {
  if (device().type == DeviceType::CPU) return *this;
  // One copy of the storage span the tensor reaches, whatever its strides; the host tensor keeps the same strides.
  int64_t lo = offset(), hi = offset();
  bool empty = numel() == 0;
  for (size_t i = 0; i < sizes().size() && !empty; ++i) {
    const int64_t span = (sizes()[i] - 1) * strides()[i];
    (span < 0 ? lo : hi) += span;
  }
  const size_t item = itemsize();
  const size_t nbytes = empty ? 0 : static_cast<size_t>(hi - lo + 1) * item;
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::allocate(nbytes, Device());
  copy_bytes(impl->storage->data(), Device(), static_cast<const char*>(storage()->data()) + lo * item, device(), nbytes);
  impl->offset = empty ? 0 : offset() - lo;
  impl->sizes = sizes();
  impl->strides = strides();
  impl->dtype = dtype();
  impl->wrapped_number = impl_->wrapped_number;
  return Tensor(std::move(impl));
}

Tensor Tensor::make_view(const Tensor& base, Shape sizes, Shape strides, int64_t offset) {
  check_rank(static_cast<int64_t>(sizes.size()), "as_strided");
  LOOM_CHECK(sizes.size() == strides.size(), Value, "as_strided: size ", shape_str(sizes), " and stride ",
             shape_str(strides), " must have the same length");
  // Bounds: the lowest and highest element the view can touch must lie inside the storage. Checked
  // arithmetic: a wrapped span would pass the test and give a view that reads and writes outside the storage.
  bool empty = false;
  for (int64_t s : sizes) {
    LOOM_CHECK(s >= 0, Value, "as_strided: negative size in ", shape_str(sizes));
    empty |= s == 0;
  }
  int64_t lo = offset, hi = offset;
  for (size_t i = 0; i < sizes.size() && !empty; ++i) {
    int64_t span = 0;
    bool overflow = __builtin_mul_overflow(sizes[i] - 1, strides[i], &span);
    overflow = overflow || __builtin_add_overflow(span < 0 ? lo : hi, span, span < 0 ? &lo : &hi);
    LOOM_CHECK(!overflow, Value, "as_strided: the extent of a view with size ", shape_str(sizes), ", stride ",
               shape_str(strides), " and offset ", offset, " overflows int64");
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
  impl->view_version = base.version();
  return Tensor(std::move(impl));
}

// normalize_dim lets dims 0 and -1 name a 0-d tensor (for reductions); there is no size to return, though.
int64_t Tensor::size(int64_t d) const {
  LOOM_CHECK(dim() > 0, Index, "size: dimension specified as ", d, " but the tensor has no dimensions");
  return impl_->sizes[normalize_dim(d, dim(), "size")];
}
int64_t Tensor::stride(int64_t d) const {
  LOOM_CHECK(dim() > 0, Index, "stride: dimension specified as ", d, " but the tensor has no dimensions");
  return impl_->strides[normalize_dim(d, dim(), "stride")];
}

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

// PyTorch's print options: 4 digits of precision, 80 columns, tensors over 1000 elements summarised with
// 3 items at each end of every dimension.
constexpr int kPrecision = 4;
constexpr int kLineWidth = 80;
constexpr int64_t kThreshold = 1000;
constexpr int64_t kEdgeItems = 3;

// The element positions that will be printed, in order (skipping the summarised middle of long dims).
void printed_offsets(const Tensor& t, size_t dim, int64_t offset, bool summarize, std::vector<int64_t>& out) {
  if (dim == t.sizes().size()) {
    out.push_back(offset);
    return;
  }
  int64_t n = t.sizes()[dim];
  for (int64_t i = 0; i < n; ++i) {
    if (summarize && n > 2 * kEdgeItems && i == kEdgeItems) i = n - kEdgeItems;
    printed_offsets(t, dim + 1, offset + i * t.strides()[dim], summarize, out);
  }
}

Scalar element_at(const Tensor& t, int64_t offset) {
  return read_element(t.dtype(), static_cast<const char*>(t.storage()->data()) + offset * static_cast<int64_t>(t.itemsize()));
}

std::string printf_str(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, kPrecision, v);
  return buf;
}

// torch._tensor_str._Formatter: one number format (and width) for every printed element.
class Formatter {
 public:
  Formatter(const Tensor& t, const std::vector<int64_t>& offsets) : dtype_(t.dtype()) {
    if (is_floating(dtype_)) {
      // As torch: the mode and the width come from the nonzero finite values only (nan, inf, 0 may stick out).
      std::vector<double> values;
      double lo = INFINITY, hi = 0;
      bool any = false;
      for (int64_t off : offsets) {
        double v = element_at(t, off).to_double();
        if (!std::isfinite(v) || v == 0) continue;
        any = true;
        lo = std::min(lo, std::fabs(v));
        hi = std::max(hi, std::fabs(v));
        if (v != std::ceil(v)) int_mode_ = false;
        values.push_back(v);
      }
      if (any) {
        if (int_mode_) sci_mode_ = hi / lo > 1000.0 || hi > 1e8;
        else sci_mode_ = hi / lo > 1000.0 || hi > 1e8 || lo < 1e-4;
      }
      for (double v : values) width_ = std::max(width_, raw(Scalar(v)).size());
    } else {
      for (int64_t off : offsets) width_ = std::max(width_, raw(element_at(t, off)).size());
    }
  }
  size_t width() const { return width_; }
  std::string format(const Scalar& s) const {
    std::string r = raw(s);
    return std::string(width_ > r.size() ? width_ - r.size() : 0, ' ') + r;
  }

 private:
  std::string raw(const Scalar& s) const {
    if (dtype_ == DType::Bool) return s.to_bool() ? "True" : "False";
    if (!is_floating(dtype_)) return std::to_string(s.to_int());
    double v = s.to_double();
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    if (sci_mode_) return printf_str("%.*e", v);
    if (int_mode_) {
      char buf[400];
      std::snprintf(buf, sizeof buf, "%.0f.", v);
      return buf;
    }
    return printf_str("%.*f", v);
  }

  DType dtype_;
  bool int_mode_ = true;
  bool sci_mode_ = false;
  size_t width_ = 1;
};

// torch._tensor_str._tensor_str_with_formatter: nested brackets, vectors wrapped at 80 columns.
void format_dims(std::string& out, const Tensor& t, size_t dim, int64_t offset, size_t indent, bool summarize,
                 const Formatter& f) {
  size_t nd = t.sizes().size();
  int64_t n = t.sizes()[dim];
  auto skip = [&](int64_t i) { return summarize && n > 2 * kEdgeItems && i == kEdgeItems; };
  out += "[";
  if (dim + 1 == nd) {
    size_t per_line = std::max<size_t>(1, (kLineWidth - std::min<size_t>(indent, kLineWidth)) / (f.width() + 2));
    size_t on_line = 0;
    for (int64_t i = 0; i < n; ++i) {
      std::string item;
      if (skip(i)) {
        item = " ...";
        i = n - kEdgeItems - 1;
      } else {
        item = f.format(element_at(t, offset + i * t.strides()[dim]));
      }
      if (on_line == per_line) {
        out += ",\n" + std::string(indent + 1, ' ');
        on_line = 0;
      } else if (on_line > 0) {
        out += ", ";
      }
      out += item;
      ++on_line;
    }
  } else {
    std::string sep = "," + std::string(nd - dim - 1, '\n') + std::string(indent + 1, ' ');
    for (int64_t i = 0; i < n; ++i) {
      if (i) out += sep;
      if (skip(i)) {
        out += "...";
        i = n - kEdgeItems - 1;
        continue;
      }
      format_dims(out, t, dim + 1, offset + i * t.strides()[dim], indent + 1, summarize, f);
    }
  }
  out += "]";
}
}  // namespace

Scalar Tensor::item() const {
  LOOM_CHECK(numel() == 1, Value, "item: a tensor with ", numel(), " elements cannot be converted to a scalar");
  if (device().type != DeviceType::CPU) {
    // One element comes back to the host: a synchronising copy, as in PyTorch.
    alignas(16) unsigned char element[16];
    copy_bytes(element, Device(), data_ptr(), device(), itemsize());
    return read_element(dtype(), element);
  }
  return read_element(dtype(), data_ptr());
}

std::string Tensor::str() const { return str({}); }

std::string Tensor::str(const std::vector<std::string>& extra_suffixes) const {
  if (!defined()) return "tensor(undefined)";
  const Tensor host = to_host();  // values are formatted on the host
  std::string out = "tensor(";
  std::vector<std::string> suffixes;
  // PyTorch's order: device, size, dtype, then the caller's (grad_fn=...).
  if (device().type != DeviceType::CPU) suffixes.push_back("device='" + device().str() + "'");
  if (numel() == 0) {
    out += "[]";
    if (dim() != 1) suffixes.push_back("size=" + shape_str(sizes()));
  } else {
    bool summarize = numel() > kThreshold;
    std::vector<int64_t> offsets;
    printed_offsets(host, 0, host.offset(), summarize, offsets);
    Formatter f(host, offsets);
    if (dim() == 0) out += f.format(element_at(host, host.offset()));
    else format_dims(out, host, 0, host.offset(), 7, summarize, f);
  }
  if (dtype() != default_float_dtype() && dtype() != DType::Int64 && dtype() != DType::Bool)
    suffixes.push_back(std::string("dtype=loom.") + dtype_name(dtype()));
  suffixes.insert(suffixes.end(), extra_suffixes.begin(), extra_suffixes.end());
  // torch._tensor_str._add_suffixes: a suffix that would pass 80 columns goes on its own line.
  size_t newline = out.rfind('\n');
  size_t last_line = newline == std::string::npos ? out.size() + 2 : out.size() - newline + 1;
  for (const std::string& suffix : suffixes) {
    if (last_line + suffix.size() + 2 > static_cast<size_t>(kLineWidth)) {
      out += ",\n       " + suffix;
      last_line = 7 + suffix.size();
    } else {
      out += ", " + suffix;
      last_line += suffix.size() + 2;
    }
  }
  return out + ")";
}

}  // namespace loom
