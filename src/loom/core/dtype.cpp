#include "loom/core/dtype.h"

#include "loom/core/error.h"

namespace loom {

namespace {
DType g_default_float = DType::Float32;
}

size_t itemsize(DType dtype) {
  static constexpr size_t sizes[kNumDTypes] = {1, 1, 1, 2, 4, 8, 2, 2, 4, 8};
  return sizes[static_cast<int>(dtype)];
}

const char* dtype_name(DType dtype) {
  static constexpr const char* names[kNumDTypes] = {"bool",    "uint8",   "int8",     "int16",   "int32",
                                                    "int64",   "float16", "bfloat16", "float32", "float64"};
  return names[static_cast<int>(dtype)];
}

DType dtype_from_name(const std::string& name) {
  for (int i = 0; i < kNumDTypes; ++i)
    if (name == dtype_name(static_cast<DType>(i))) return static_cast<DType>(i);
  if (name == "float") return DType::Float32;
  if (name == "double") return DType::Float64;
  if (name == "half") return DType::Float16;
  if (name == "long") return DType::Int64;
  if (name == "int") return DType::Int32;
  if (name == "short") return DType::Int16;
  fail(ErrorKind::Type, "dtype: unknown dtype name '", name, "'");
}

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  // Table from torch/csrc (c10/core/ScalarType.cpp), restricted to loom's dtypes.
  using D = DType;
  constexpr D b1 = D::Bool, u1 = D::UInt8, i1 = D::Int8, i2 = D::Int16, i4 = D::Int32, i8 = D::Int64,
              f2 = D::Float16, bf = D::BFloat16, f4 = D::Float32, f8 = D::Float64;
  static constexpr D table[kNumDTypes][kNumDTypes] = {
      /*        b1  u1  i1  i2  i4  i8  f2  bf  f4  f8 */
      /* b1 */ {b1, u1, i1, i2, i4, i8, f2, bf, f4, f8},
      /* u1 */ {u1, u1, i2, i2, i4, i8, f2, bf, f4, f8},
      /* i1 */ {i1, i2, i1, i2, i4, i8, f2, bf, f4, f8},
      /* i2 */ {i2, i2, i2, i2, i4, i8, f2, bf, f4, f8},
      /* i4 */ {i4, i4, i4, i4, i4, i8, f2, bf, f4, f8},
      /* i8 */ {i8, i8, i8, i8, i8, i8, f2, bf, f4, f8},
      /* f2 */ {f2, f2, f2, f2, f2, f2, f2, f4, f4, f8},
      /* bf */ {bf, bf, bf, bf, bf, bf, f4, bf, f4, f8},
      /* f4 */ {f4, f4, f4, f4, f4, f4, f4, f4, f4, f8},
      /* f8 */ {f8, f8, f8, f8, f8, f8, f8, f8, f8, f8},
  };
  return table[static_cast<int>(a)][static_cast<int>(b)];
}

DType default_float_dtype() { return g_default_float; }

void set_default_float_dtype(DType dtype) {
  LOOM_CHECK(dtype == DType::Float32 || dtype == DType::Float64, Type,
             "set_default_dtype: only float32 and float64 are supported, got ", dtype_name(dtype));
  g_default_float = dtype;
}

}  // namespace loom
