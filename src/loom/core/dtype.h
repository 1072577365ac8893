// DType: the element types a tensor can hold, their sizes and names, and PyTorch's promotion rules.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "loom/core/half.h"

namespace loom {

enum class DType : uint8_t { Bool, UInt8, Int8, Int16, Int32, Int64, Float16, BFloat16, Float32, Float64 };
inline constexpr int kNumDTypes = 10;

size_t itemsize(DType dtype);
// The name PyTorch uses without the "torch." prefix: "float32", "int64", "bool", ...
const char* dtype_name(DType dtype);
// Parses a name produced by dtype_name (and the aliases "float", "double", "half", "long", "int").
DType dtype_from_name(const std::string& name);

inline bool is_floating(DType d) { return d >= DType::Float16; }
inline bool is_integral(DType d, bool include_bool = false) {
  return (d > DType::Bool && d <= DType::Int64) || (include_bool && d == DType::Bool);
}

// torch.promote_types: the smallest type both convert to without losing range or category.
DType promote_types(DType a, DType b);

// The dtype a Python float or a float result of an integer op takes (torch.get_default_dtype()).
DType default_float_dtype();
void set_default_float_dtype(DType dtype);

// Maps a C++ element type to its DType (CppToDType<float>::value == DType::Float32).
template <class T> struct CppToDType;
template <> struct CppToDType<bool> { static constexpr DType value = DType::Bool; };
template <> struct CppToDType<uint8_t> { static constexpr DType value = DType::UInt8; };
template <> struct CppToDType<int8_t> { static constexpr DType value = DType::Int8; };
template <> struct CppToDType<int16_t> { static constexpr DType value = DType::Int16; };
template <> struct CppToDType<int32_t> { static constexpr DType value = DType::Int32; };
template <> struct CppToDType<int64_t> { static constexpr DType value = DType::Int64; };
template <> struct CppToDType<Half> { static constexpr DType value = DType::Float16; };
template <> struct CppToDType<BFloat16> { static constexpr DType value = DType::BFloat16; };
template <> struct CppToDType<float> { static constexpr DType value = DType::Float32; };
template <> struct CppToDType<double> { static constexpr DType value = DType::Float64; };

// The type arithmetic on T is carried out in: float for the 16-bit floats, T otherwise.
template <class T> struct OpMath { using type = T; };
template <> struct OpMath<Half> { using type = float; };
template <> struct OpMath<BFloat16> { using type = float; };
template <class T> using opmath_t = typename OpMath<T>::type;

}  // namespace loom
