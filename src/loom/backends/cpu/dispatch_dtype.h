// visit_dtype: calls fn.template operator()<T>() with the C++ type of a runtime DType.
#pragma once
#include "loom/core/dtype.h"
#include "loom/core/error.h"

namespace loom::cpu {

template <class F>
decltype(auto) visit_dtype(DType dtype, F&& fn) {
  switch (dtype) {
    case DType::Bool: return fn.template operator()<bool>();
    case DType::UInt8: return fn.template operator()<uint8_t>();
    case DType::Int8: return fn.template operator()<int8_t>();
    case DType::Int16: return fn.template operator()<int16_t>();
    case DType::Int32: return fn.template operator()<int32_t>();
    case DType::Int64: return fn.template operator()<int64_t>();
    case DType::Float16: return fn.template operator()<Half>();
    case DType::BFloat16: return fn.template operator()<BFloat16>();
    case DType::Float32: return fn.template operator()<float>();
    default: return fn.template operator()<double>();
  }
}

// Only the floating types; anything else raises TypeError naming `op`.
template <class F>
decltype(auto) visit_floating(DType dtype, const char* op, F&& fn) {
  switch (dtype) {
    case DType::Float16: return fn.template operator()<Half>();
    case DType::BFloat16: return fn.template operator()<BFloat16>();
    case DType::Float32: return fn.template operator()<float>();
    case DType::Float64: return fn.template operator()<double>();
    default: fail(ErrorKind::Type, op, ": not implemented for dtype ", dtype_name(dtype));
  }
}

// Every dtype except bool (arithmetic that PyTorch rejects on bool).
template <class F>
decltype(auto) visit_numeric(DType dtype, const char* op, F&& fn) {
  LOOM_CHECK(dtype != DType::Bool, Type, op, ": not implemented for dtype bool");
  return visit_dtype(dtype, std::forward<F>(fn));
}

}  // namespace loom::cpu
