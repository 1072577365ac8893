// CPU kernels of the index family: index_select/index_add/index_copy (on [outer, size, inner] blocks),
// gather/scatter/scatter_add (strided walks over the index), nonzero, and the index bounds check.
// Every index is validated before it is used: out-of-range values raise IndexError, never read out of bounds.
#include <cstring>

#include "loom/backends/cpu/dispatch_dtype.h"
#include "loom/backends/cpu/kernel_util.h"
#include "loom/core/parallel.h"

namespace loom::cpu {

namespace {

// The index as a contiguous int64 tensor.
Tensor long_index(const Tensor& index) { return contiguous(to_dtype(index, DType::Int64)); }

void check_range(const int64_t* idx, int64_t n, int64_t size, int64_t dim, const char* op) {
  for (int64_t j = 0; j < n; ++j)
    LOOM_CHECK(idx[j] >= 0 && idx[j] < size, Index, op, ": index ", idx[j], " is out of bounds for dimension ", dim,
               " with size ", size);
}

// A contiguous tensor seen as [outer, size, inner] around `dim` (a 0-d tensor is [1, 1, 1]).
struct Blocks {
  int64_t outer = 1, size = 1, inner = 1;
};
Blocks blocks_of(const Shape& shape, int64_t dim) {
  Blocks b;
  if (shape.empty()) return b;
  for (int64_t d = 0; d < dim; ++d) b.outer *= shape[d];
  b.size = shape[dim];
  for (size_t d = dim + 1; d < shape.size(); ++d) b.inner *= shape[d];
  return b;
}

template <class T>
inline T add_scaled(T a, T b, Scalar alpha) {
  if constexpr (std::is_same_v<T, bool>) return a || (b && alpha.to_bool());
  else if constexpr (std::is_integral_v<T>) return static_cast<T>(a + b * alpha.to_int());
  else {
    using M = opmath_t<T>;
    return T(static_cast<M>(static_cast<M>(a) + static_cast<M>(b) * static_cast<M>(alpha.to_double())));
  }
}

// ---- index_select / index_copy / index_add ----

std::vector<Tensor> index_select_kernel(const KernelContext& c) {
  Tensor self = contiguous(c.inputs[0]);
  Tensor index = long_index(c.inputs[1]);
  int64_t dim = c.attrs.get<int64_t>("dim");
  Blocks b = blocks_of(self.sizes(), dim);
  const int64_t* idx = index.data<int64_t>();
  int64_t k = index.numel();
  check_range(idx, k, b.size, dim, "index_select");
  Tensor out = c.alloc(0);
  if (out.numel() == 0) return {out};
  size_t row = b.inner * self.itemsize();
  const char* src = static_cast<const char*>(self.data_ptr());
  char* dst = static_cast<char*>(out.data_ptr());
  parallel_for(0, b.outer * k, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(b.inner, 1)),
               [&](int64_t begin, int64_t end) {
                 for (int64_t p = begin; p < end; ++p) {
                   int64_t o = p / k, j = p % k;
                   std::memcpy(dst + p * row, src + (o * b.size + idx[j]) * row, row);
                 }
               });
  return {out};
}

// The output of index_copy/index_add starts as a contiguous copy of self.
Tensor copy_of(const KernelContext& c) {
  Tensor out = c.alloc(0);
  detail::copy_data(out, c.inputs[0]);
  return out;
}

std::vector<Tensor> index_copy_kernel(const KernelContext& c) {
  Tensor index = long_index(c.inputs[1]);
  Tensor source = contiguous(c.inputs[2]);
  int64_t dim = c.attrs.get<int64_t>("dim");
  Blocks b = blocks_of(c.inputs[0].sizes(), dim);
  const int64_t* idx = index.data<int64_t>();
  int64_t k = index.numel();
  check_range(idx, k, b.size, dim, "index_copy");
  Tensor out = copy_of(c);
  if (out.numel() == 0) return {out};
  size_t row = b.inner * out.itemsize();
  const char* src = static_cast<const char*>(source.data_ptr());
  char* dst = static_cast<char*>(out.data_ptr());
  for (int64_t o = 0; o < b.outer; ++o)
    for (int64_t j = 0; j < k; ++j) std::memcpy(dst + (o * b.size + idx[j]) * row, src + (o * k + j) * row, row);
  return {out};
}

std::vector<Tensor> index_add_kernel(const KernelContext& c) {
  Tensor index = long_index(c.inputs[1]);
  Tensor source = contiguous(c.inputs[2]);
  int64_t dim = c.attrs.get<int64_t>("dim");
  Scalar alpha = c.attrs.get<Scalar>("alpha");
  Blocks b = blocks_of(c.inputs[0].sizes(), dim);
  const int64_t* idx = index.data<int64_t>();
  int64_t k = index.numel();
  check_range(idx, k, b.size, dim, "index_add");
  Tensor out = copy_of(c);
  if (out.numel() == 0) return {out};
  visit_dtype(out.dtype(), [&]<class T>() {
    T* dst = out.data<T>();
    const T* src = source.data<T>();
    // Rows of one outer block may repeat an index, so only outer blocks run in parallel.
    parallel_for(0, b.outer, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(k * b.inner, 1)),
                 [&](int64_t begin, int64_t end) {
                   for (int64_t o = begin; o < end; ++o)
                     for (int64_t j = 0; j < k; ++j) {
                       T* d = dst + (o * b.size + idx[j]) * b.inner;
                       const T* s = src + (o * k + j) * b.inner;
                       for (int64_t i = 0; i < b.inner; ++i) d[i] = add_scaled(d[i], s[i], alpha);
                     }
                 });
  });
  return {out};
}

// ---- gather / scatter ----

// Calls fn(position, coords) for every coordinate of `shape` in row-major order.
template <class F>
void for_each_coord(const Shape& shape, F&& fn) {
  int64_t n = numel(shape);
  int nd = static_cast<int>(shape.size());
  std::vector<int64_t> coord(nd, 0);
  for (int64_t p = 0; p < n; ++p) {
    fn(p, coord.data());
    for (int d = nd - 1; d >= 0; --d) {
      if (++coord[d] < shape[d]) break;
      coord[d] = 0;
    }
  }
}

// Element offset (in elements) of coord in t, with `dim` replaced by `at`.
inline int64_t offset_with(const Tensor& t, const int64_t* coord, int64_t dim, int64_t at) {
  int64_t off = 0;
  for (int64_t d = 0; d < t.dim(); ++d) off += (d == dim ? at : coord[d]) * t.strides()[d];
  return off;
}

// A 0-d index walks like a 1-element 1-D one (it may pair with 1-D tensors).
Shape coord_shape(const Tensor& index) { return index.dim() == 0 ? Shape{1} : index.sizes(); }

inline int64_t dim_size(const Tensor& t, int64_t dim) { return t.dim() == 0 ? 1 : t.sizes()[dim]; }

std::vector<Tensor> gather_kernel(const KernelContext& c) {
  const Tensor& self = c.inputs[0];
  Tensor index = long_index(c.inputs[1]);
  int64_t dim = c.attrs.get<int64_t>("dim");
  const int64_t* idx = index.data<int64_t>();
  check_range(idx, index.numel(), dim_size(self, dim), dim, "gather");
  Tensor out = c.alloc(0);
  size_t item = self.itemsize();
  const char* src = static_cast<const char*>(self.data_ptr());
  char* dst = static_cast<char*>(out.data_ptr());
  for_each_coord(coord_shape(index), [&](int64_t p, const int64_t* coord) {
    std::memcpy(dst + p * item, src + offset_with(self, coord, dim, idx[p]) * item, item);
  });
  return {out};
}

template <bool Add>
std::vector<Tensor> scatter_kernel(const KernelContext& c) {
  const char* op = Add ? "scatter_add" : "scatter";
  Tensor index = long_index(c.inputs[1]);
  const Tensor& src = c.inputs[2];
  int64_t dim = c.attrs.get<int64_t>("dim");
  const int64_t* idx = index.data<int64_t>();
  check_range(idx, index.numel(), dim_size(c.inputs[0], dim), dim, op);
  Tensor out = copy_of(c);
  if (index.numel() == 0) return {out};
  visit_dtype(out.dtype(), [&]<class T>() {
    T* dst = out.data<T>();
    const T* s = src.data<T>();
    for_each_coord(coord_shape(index), [&](int64_t p, const int64_t* coord) {
      T value = s[offset_with(src, coord, -1, 0)];
      T& slot = dst[offset_with(out, coord, dim, idx[p])];
      if constexpr (Add) slot = add_scaled(slot, value, Scalar(int64_t(1)));
      else slot = value;
    });
  });
  return {out};
}

// ---- nonzero ----

template <class T>
inline bool is_nonzero(T v) {
  if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) return static_cast<float>(v) != 0.0f;
  else return v != T(0);
}

std::vector<Tensor> nonzero_kernel(const KernelContext& c) {
  Tensor self = contiguous(c.inputs[0]);
  int64_t nd = self.dim();
  std::vector<int64_t> hits;
  visit_dtype(self.dtype(), [&]<class T>() {
    const T* data = self.data<T>();
    for (int64_t i = 0, n = self.numel(); i < n; ++i)
      if (is_nonzero(data[i])) hits.push_back(i);
  });
  int64_t count = static_cast<int64_t>(hits.size());
  Tensor out = Tensor::empty({count, nd}, DType::Int64, c.device);
  int64_t* dst = out.data<int64_t>();
  for (int64_t r = 0; r < count; ++r) {
    int64_t rem = hits[r];
    for (int64_t d = nd - 1; d >= 0; --d) {
      dst[r * nd + d] = rem % self.sizes()[d];
      rem /= self.sizes()[d];
    }
  }
  return {out};
}

// ---- wrap_index ----

std::vector<Tensor> wrap_index_kernel(const KernelContext& c) {
  Tensor index = long_index(c.inputs[0]);
  int64_t size = c.attrs.get<int64_t>("size"), dim = c.attrs.get<int64_t>("dim");
  const std::string& op = c.attrs.get<std::string>("op");
  Tensor out = c.alloc(0);
  const int64_t* src = index.data<int64_t>();
  int64_t* dst = out.data<int64_t>();
  for (int64_t i = 0, n = index.numel(); i < n; ++i) {
    int64_t v = src[i];
    LOOM_CHECK(v >= -size && v < size, Index, op, ": index ", v, " is out of bounds for dimension ", dim, " with size ",
               size);
    dst[i] = v < 0 ? v + size : v;
  }
  return {out};
}

}  // namespace

void register_index_kernels(Registry& r) {
  r.set_kernel("index_select", DeviceType::CPU, index_select_kernel);
  r.set_kernel("index_copy", DeviceType::CPU, index_copy_kernel);
  r.set_kernel("index_add", DeviceType::CPU, index_add_kernel);
  r.set_kernel("gather", DeviceType::CPU, gather_kernel);
  r.set_kernel("scatter", DeviceType::CPU, scatter_kernel<false>);
  r.set_kernel("scatter_add", DeviceType::CPU, scatter_kernel<true>);
  r.set_kernel("nonzero", DeviceType::CPU, nonzero_kernel);
  r.set_kernel("wrap_index", DeviceType::CPU, wrap_index_kernel);
}

}  // namespace loom::cpu
