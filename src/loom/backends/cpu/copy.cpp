// CPU kernels for copy (with dtype conversion), fill, full, arange and linspace.
#include <cstring>

#include "loom/backends/cpu/dispatch_dtype.h"
#include "loom/backends/cpu/kernel_util.h"
#include "loom/backends/cpu/loops.h"

namespace loom::cpu {

namespace {

template <class To, class From>
inline To convert(From v) {
  if constexpr (std::is_same_v<To, bool>) return static_cast<double>(v) != 0.0;
  else if constexpr (std::is_same_v<To, Half> || std::is_same_v<To, BFloat16>) return To(static_cast<float>(v));
  else if constexpr (std::is_same_v<From, Half> || std::is_same_v<From, BFloat16>) return static_cast<To>(static_cast<float>(v));
  else return static_cast<To>(v);
}

std::vector<Tensor> copy_kernel(const KernelContext& c) {
  const Tensor& dst = c.inputs[0];
  Tensor src = c.inputs[1].sizes() == dst.sizes() ? c.inputs[1] : expand(c.inputs[1], dst.sizes());
  if (dst.dtype() == src.dtype() && dst.is_contiguous() && src.is_contiguous()) {
    if (dst.numel() > 0 && dst.data_ptr() != src.data_ptr())
      std::memmove(dst.data_ptr(), src.data_ptr(), dst.numel() * dst.itemsize());
    return {dst};
  }
  visit_dtype(dst.dtype(), [&]<class To>() {
    visit_dtype(src.dtype(), [&]<class From>() {
      for_each_element({&dst, &src}, [](char** p, const int64_t* s, int64_t n) {
        for (int64_t i = 0; i < n; ++i)
          *reinterpret_cast<To*>(p[0] + i * s[0]) = convert<To>(*reinterpret_cast<const From*>(p[1] + i * s[1]));
      });
    });
  });
  return {dst};
}

void fill_value(const Tensor& t, Scalar value) {
  visit_dtype(t.dtype(), [&]<class T>() {
    T v;
    if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) v = T(static_cast<float>(value.to_double()));
    else v = value.to<T>();
    for_each_element({&t}, [v](char** p, const int64_t* s, int64_t n) {
      if (s[0] == sizeof(T)) {
        T* out = reinterpret_cast<T*>(p[0]);
        for (int64_t i = 0; i < n; ++i) out[i] = v;
      } else {
        for (int64_t i = 0; i < n; ++i) *reinterpret_cast<T*>(p[0] + i * s[0]) = v;
      }
    });
  });
}

std::vector<Tensor> fill_kernel(const KernelContext& c) {
  fill_value(c.inputs[0], c.attrs.get<Scalar>("value"));
  return {c.inputs[0]};
}

std::vector<Tensor> full_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  fill_value(out, c.attrs.get<Scalar>("value"));
  return {out};
}

std::vector<Tensor> arange_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  Scalar start = c.attrs.get<Scalar>("start"), step = c.attrs.get<Scalar>("step");
  visit_numeric(out.dtype(), "arange", [&]<class T>() {
    T* data = out.data<T>();
    int64_t n = out.numel();
    if constexpr (std::is_integral_v<T>) {
      int64_t s = start.to_int(), st = step.to_int();
      for (int64_t i = 0; i < n; ++i) data[i] = static_cast<T>(s + i * st);
    } else {
      double s = start.to_double(), st = step.to_double();
      for (int64_t i = 0; i < n; ++i) data[i] = T(static_cast<opmath_t<T>>(s + static_cast<double>(i) * st));
    }
  });
  return {out};
}

std::vector<Tensor> linspace_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  double start = c.attrs.get<double>("start"), end = c.attrs.get<double>("end");
  int64_t n = out.numel();
  double step = n > 1 ? (end - start) / static_cast<double>(n - 1) : 0.0;
  visit_numeric(out.dtype(), "linspace", [&]<class T>() {
    T* data = out.data<T>();
    // Fill from both ends, as PyTorch does, so the last element is exactly `end`.
    int64_t half = n / 2;
    for (int64_t i = 0; i < n; ++i) {
      double v = i < half ? start + step * static_cast<double>(i) : end - step * static_cast<double>(n - 1 - i);
      if constexpr (std::is_integral_v<T>) data[i] = static_cast<T>(v);
      else data[i] = T(static_cast<opmath_t<T>>(v));
    }
  });
  return {out};
}

}  // namespace

void register_copy_kernels(Registry& r) {
  r.set_kernel("copy", DeviceType::CPU, copy_kernel);
  r.set_kernel("fill", DeviceType::CPU, fill_kernel);
  r.set_kernel("full", DeviceType::CPU, full_kernel);
  r.set_kernel("arange", DeviceType::CPU, arange_kernel);
  r.set_kernel("linspace", DeviceType::CPU, linspace_kernel);
}

}  // namespace loom::cpu
