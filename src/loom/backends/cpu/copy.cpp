// CPU kernels for copy (with dtype conversion), fill, full, arange and linspace.
// Same-dtype contiguous copies are one memmove; float32 <-> bfloat16 conversions of contiguous rows are
// vectorised with AVX2 or AVX-512 (simd/elementwise.h; rounding to nearest even with NaN kept quiet,
// bit-identical to BFloat16's constructor), float32 <-> float16 with F16C; a broadcast scalar source (fill_,
// zero_) is a fill.
#include <cstring>

#include "loom/backends/cpu/dispatch_dtype.h"
#include "loom/backends/cpu/kernel_util.h"
#include "loom/backends/cpu/loops.h"
#include "loom/backends/cpu/simd/cpu_features.h"
#include "loom/backends/cpu/simd/elementwise.h"
#include "loom/backends/cpu/simd/vec_avx2.h"

namespace loom::cpu {

namespace {

template <class To, class From>
inline To convert(From v) {
  if constexpr (std::is_same_v<To, bool>) return static_cast<double>(v) != 0.0;
  else if constexpr (std::is_same_v<To, Half> || std::is_same_v<To, BFloat16>) return To(static_cast<float>(v));
  else if constexpr (std::is_same_v<From, Half> || std::is_same_v<From, BFloat16>) return static_cast<To>(static_cast<float>(v));
  else return static_cast<To>(v);
}


#if defined(__x86_64__)
bool have_f16c() { return cpu_features().f16c; }

__attribute__((target("avx2,fma,f16c"))) void float_to_half_row(uint16_t* out, const float* in, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  for (; i < n; ++i) out[i] = Half(in[i]).bits;
}

__attribute__((target("avx2,fma,f16c"))) void half_to_float_row(float* out, const uint16_t* in, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
  for (; i < n; ++i) {
    Half h;
    h.bits = in[i];
    out[i] = static_cast<float>(h);
  }
}

// The vectorised row converter for To <- From, or nullptr.
template <class To, class From>
void (*vector_converter())(char*, const char*, int64_t) {
  if (!use_avx2()) return nullptr;
  if constexpr (std::is_same_v<To, BFloat16> && std::is_same_v<From, float>)
    return [](char* o, const char* i, int64_t n) { simd::elementwise_kernels()->float_to_bf16(o, i, n); };
  else if constexpr (std::is_same_v<To, float> && std::is_same_v<From, BFloat16>)
    return [](char* o, const char* i, int64_t n) { simd::elementwise_kernels()->bf16_to_float(o, i, n); };
  else if constexpr (std::is_same_v<To, Half> && std::is_same_v<From, float>) {
    if (!have_f16c()) return nullptr;
    return [](char* o, const char* i, int64_t n) {
      float_to_half_row(reinterpret_cast<uint16_t*>(o), reinterpret_cast<const float*>(i), n);
    };
  } else if constexpr (std::is_same_v<To, float> && std::is_same_v<From, Half>) {
    if (!have_f16c()) return nullptr;
    return [](char* o, const char* i, int64_t n) {
      half_to_float_row(reinterpret_cast<float*>(o), reinterpret_cast<const uint16_t*>(i), n);
    };
  }
  return nullptr;
}
#else
template <class To, class From>
void (*vector_converter())(char*, const char*, int64_t) {
  return nullptr;
}
#endif

// Every element of `t` is the same one element (a broadcast scalar: fill_, zero_, x[...] = c).
bool is_broadcast_scalar(const Tensor& t) {
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.sizes()[d] > 1 && t.strides()[d] != 0) return false;
  return true;
}

std::vector<Tensor> copy_kernel(const KernelContext& c) {
  const Tensor& dst = c.inputs[0];
  Tensor src = c.inputs[1].sizes() == dst.sizes() ? c.inputs[1] : expand(c.inputs[1], dst.sizes());
  if (dst.dtype() == src.dtype() && dst.is_contiguous() && src.is_contiguous()) {
    if (dst.numel() > 0 && dst.data_ptr() != src.data_ptr())
      std::memmove(dst.data_ptr(), src.data_ptr(), dst.numel() * dst.itemsize());
    return {dst};
  }
  if (dst.numel() > 1 && is_broadcast_scalar(src) && src.storage() != dst.storage()) {
    // One value everywhere: convert it once and fill.
    visit_dtype(dst.dtype(), [&]<class To>() {
      To v{};
      visit_dtype(src.dtype(), [&]<class From>() { v = convert<To>(*static_cast<const From*>(src.data_ptr())); });
      for_each_element({&dst}, [v](char** p, const int64_t* s, int64_t n) {
        if (s[0] == sizeof(To)) {
          To* out = reinterpret_cast<To*>(p[0]);
          for (int64_t i = 0; i < n; ++i) out[i] = v;
        } else {
          for (int64_t i = 0; i < n; ++i) *reinterpret_cast<To*>(p[0] + i * s[0]) = v;
        }
      });
    });
    return {dst};
  }
  visit_dtype(dst.dtype(), [&]<class To>() {
    visit_dtype(src.dtype(), [&]<class From>() {
      if (auto vec = vector_converter<To, From>()) {
        for_each_element({&dst, &src}, [vec](char** p, const int64_t* s, int64_t n) {
          if (s[0] == sizeof(To) && s[1] == sizeof(From)) {
            vec(p[0], p[1], n);
          } else {
            for (int64_t i = 0; i < n; ++i)
              *reinterpret_cast<To*>(p[0] + i * s[0]) = convert<To>(*reinterpret_cast<const From*>(p[1] + i * s[1]));
          }
        });
        return;
      }
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
      // start + i * step lies in [start, end), but i * step alone may not fit int64: compute modulo 2^64.
      uint64_t s = static_cast<uint64_t>(start.to_int()), st = static_cast<uint64_t>(step.to_int());
      for (int64_t i = 0; i < n; ++i) data[i] = static_cast<T>(static_cast<int64_t>(s + static_cast<uint64_t>(i) * st));
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
