#include "loom/ops/promotion.h"

#include <optional>

namespace loom {

namespace {

std::optional<DType> promote(std::optional<DType> a, DType b) { return a ? promote_types(*a, b) : b; }

// c10's combine_categories: a lower-priority class only matters when it is of a higher category.
std::optional<DType> combine(std::optional<DType> higher, std::optional<DType> lower) {
  if (!higher) return lower;
  if (!lower) return higher;
  if (is_floating(*higher)) return higher;
  if (*higher == DType::Bool || is_floating(*lower)) return promote_types(*higher, *lower);
  return higher;
}

}  // namespace

DType result_type(const std::vector<Tensor>& inputs) {
  std::optional<DType> dimensioned, zero_dim, wrapped;
  for (const Tensor& t : inputs) {
    if (!t.defined()) continue;
    if (t.impl()->wrapped_number) {
      DType d = is_floating(t.dtype()) ? default_float_dtype() : t.dtype();
      wrapped = promote(wrapped, d);
    } else if (t.dim() == 0) {
      zero_dim = promote(zero_dim, t.dtype());
    } else {
      dimensioned = promote(dimensioned, t.dtype());
    }
  }
  std::optional<DType> out = combine(dimensioned, combine(zero_dim, wrapped));
  return out.value_or(default_float_dtype());
}

}  // namespace loom
