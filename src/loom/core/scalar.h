// Scalar: a Python-like number (bool, integer or float) passed to ops next to tensors.
#pragma once
#include <cstdint>
#include <string>

#include "loom/core/dtype.h"

namespace loom {

class Scalar {
 public:
  enum class Kind : uint8_t { Bool, Int, Float };

  Scalar() : kind_(Kind::Int), i_(0) {}
  Scalar(bool v) : kind_(Kind::Bool), i_(v) {}  // NOLINT: numbers convert implicitly, as in Python
  Scalar(int v) : kind_(Kind::Int), i_(v) {}  // NOLINT
  Scalar(int64_t v) : kind_(Kind::Int), i_(v) {}  // NOLINT
  Scalar(double v) : kind_(Kind::Float), d_(v) {}  // NOLINT
  Scalar(float v) : kind_(Kind::Float), d_(v) {}  // NOLINT

  Kind kind() const { return kind_; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_int() const { return kind_ == Kind::Int; }
  bool is_float() const { return kind_ == Kind::Float; }

  double to_double() const { return kind_ == Kind::Float ? d_ : static_cast<double>(i_); }
  // Floats truncate toward zero; NaN and out-of-range values saturate (a plain cast would be undefined).
  int64_t to_int() const {
    if (kind_ != Kind::Float) return i_;
    if (d_ >= -9223372036854775808.0 && d_ < 9223372036854775808.0) return static_cast<int64_t>(d_);
    return d_ > 0 ? INT64_MAX : INT64_MIN;
  }
  bool to_bool() const { return kind_ == Kind::Float ? d_ != 0.0 : i_ != 0; }

  template <class T>
  T to() const {
    if constexpr (std::is_same_v<T, bool>) return to_bool();
    else if constexpr (std::is_integral_v<T>) return static_cast<T>(to_int());
    else return static_cast<T>(to_double());
  }

  // The dtype this number takes when it is promoted alone: bool, int64 or the default float.
  DType dtype() const;
  std::string str() const;

 private:
  Kind kind_;
  union {
    int64_t i_;
    double d_;
  };
};

}  // namespace loom
