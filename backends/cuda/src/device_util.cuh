// Device-side helpers shared by the kernels: element types, conversions in PyTorch's manner, the strided offset
// calculator for up to kMaxDims dims, and the dtype switch that turns a ScalarType into a template argument.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "launch.h"

namespace loom_cuda {

using half = __half;
using bfloat16 = __nv_bfloat16;

// The type arithmetic on T runs in: float for the 16-bit floats, T otherwise (loom's opmath_t).
template <class T> struct OpMath { using type = T; };
template <> struct OpMath<half> { using type = float; };
template <> struct OpMath<bfloat16> { using type = float; };
template <class T> using opmath_t = typename OpMath<T>::type;

template <class T>
inline constexpr bool kIsFloat = std::is_floating_point_v<opmath_t<T>>;

// Conversions as loom's CPU copy kernel does them: to bool by != 0; to and from the 16-bit floats through float
// (round to nearest even); otherwise a C++ cast.
template <class To, class From>
__device__ __forceinline__ To convert(From v) {
  if constexpr (std::is_same_v<From, half> || std::is_same_v<From, bfloat16>) {
    return convert<To>(static_cast<float>(v));
  } else if constexpr (std::is_same_v<To, bool>) {
    return static_cast<double>(v) != 0.0;
  } else if constexpr (std::is_same_v<To, half>) {
    return __float2half_rn(static_cast<float>(v));
  } else if constexpr (std::is_same_v<To, bfloat16>) {
    return __float2bfloat16_rn(static_cast<float>(v));
  } else if constexpr (std::is_integral_v<To> && std::is_floating_point_v<From>) {
    // A float out of the integer's range is undefined in C++; saturate through int64 like the host does.
    if (!(v == v)) return To(0);
    if (v >= From(9.2233720368547758e18)) return static_cast<To>(INT64_MAX);
    if (v < From(-9.2233720368547758e18)) return static_cast<To>(INT64_MIN);
    return static_cast<To>(static_cast<int64_t>(v));
  } else {
    return static_cast<To>(v);
  }
}

// A host number as T (integers from the exact int64 spelling).
template <class T>
__host__ __device__ __forceinline__ T scalar_as(HostScalar s) {
  if constexpr (std::is_same_v<T, bool>) return s.i != 0 || s.f != 0.0;
  else if constexpr (std::is_integral_v<T>) return static_cast<T>(s.i);
  else if constexpr (std::is_same_v<T, half>) return __float2half_rn(static_cast<float>(s.f));
  else if constexpr (std::is_same_v<T, bfloat16>) return __float2bfloat16_rn(static_cast<float>(s.f));
  else return static_cast<T>(s.f);
}

// Byte offsets of element `linear` (row-major over g.sizes) in each of N operands.
template <int N>
struct OffsetCalculator {
  int ndim;
  int64_t sizes[kMaxDims];
  int64_t strides[N][kMaxDims];
  explicit OffsetCalculator(const Geometry& g) : ndim(g.ndim) {
    for (int d = 0; d < kMaxDims; ++d) {
      sizes[d] = g.sizes[d];
      for (int k = 0; k < N; ++k) strides[k][d] = g.strides[k][d];
    }
  }
  __device__ __forceinline__ void get(int64_t linear, int64_t* offsets) const {
#pragma unroll
    for (int k = 0; k < N; ++k) offsets[k] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t index = linear % sizes[d];
      linear /= sizes[d];
#pragma unroll
      for (int k = 0; k < N; ++k) offsets[k] += index * strides[k][d];
    }
  }
};

inline constexpr int kBlock = 256;

// Blocks for a grid-stride loop over n elements (capped: each thread then takes several elements).
inline unsigned grid_for(int64_t n) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  return static_cast<unsigned>(blocks < 65535 * 8 ? (blocks > 0 ? blocks : 1) : 65535 * 8);
}

inline cudaStream_t as_stream(StreamHandle s) { return static_cast<cudaStream_t>(s); }

// Calls fn.template operator()<T>() with the C++ type of `type`.
template <class F>
void visit_type(ScalarType type, F&& fn) {
  switch (type) {
    case ScalarType::Bool: fn.template operator()<bool>(); break;
    case ScalarType::UInt8: fn.template operator()<uint8_t>(); break;
    case ScalarType::Int8: fn.template operator()<int8_t>(); break;
    case ScalarType::Int16: fn.template operator()<int16_t>(); break;
    case ScalarType::Int32: fn.template operator()<int32_t>(); break;
    case ScalarType::Int64: fn.template operator()<int64_t>(); break;
    case ScalarType::Float16: fn.template operator()<half>(); break;
    case ScalarType::BFloat16: fn.template operator()<bfloat16>(); break;
    case ScalarType::Float32: fn.template operator()<float>(); break;
    case ScalarType::Float64: fn.template operator()<double>(); break;
  }
}

// Only the floating types (the caller has checked the dtype).
template <class F>
void visit_floating(ScalarType type, F&& fn) {
  switch (type) {
    case ScalarType::Float16: fn.template operator()<half>(); break;
    case ScalarType::BFloat16: fn.template operator()<bfloat16>(); break;
    case ScalarType::Float64: fn.template operator()<double>(); break;
    default: fn.template operator()<float>(); break;
  }
}

}  // namespace loom_cuda
