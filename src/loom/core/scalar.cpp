#include "loom/core/scalar.h"

#include <sstream>

namespace loom {

DType Scalar::dtype() const {
  switch (kind_) {
    case Kind::Bool: return DType::Bool;
    case Kind::Int: return DType::Int64;
    default: return default_float_dtype();
  }
}

std::string Scalar::str() const {
  if (kind_ == Kind::Bool) return i_ ? "True" : "False";
  if (kind_ == Kind::Int) return std::to_string(i_);
  std::ostringstream out;
  out << d_;
  return out.str();
}

}  // namespace loom
