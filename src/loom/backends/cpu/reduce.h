// The shared CPU reduction driver: a reduction seen as [outer, R, inner], reduced over R.
#pragma once
#include <vector>

#include "loom/core/parallel.h"
#include "loom/ops/registry.h"

namespace loom::cpu {

struct ReductionLayout {
  Tensor data;  // contiguous, viewed as [outer, reduced, inner]
  int64_t outer, reduced, inner;
};

// `dims` must be normalized and sorted (as the reduction ops store them).
ReductionLayout reduction_layout(const Tensor& input, const std::vector<int64_t>& dims);

// out[o * inner + i] = finish(fold(init, x[o, 0, i], x[o, 1, i], ...), R). `out` is contiguous [outer * inner].
template <class T, class Out, class Acc, class Fold, class Finish>
void reduce_layout(const ReductionLayout& l, Out* out, Acc init, Fold fold, Finish finish) {
  const T* x = l.data.template data<T>();
  const int64_t R = l.reduced, inner = l.inner;
  if (inner == 1) {
    parallel_for(0, l.outer, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(R, 1)), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        Acc acc = init;
        const T* row = x + o * R;
        for (int64_t r = 0; r < R; ++r) acc = fold(acc, row[r]);
        out[o] = finish(acc, R);
      }
    });
    return;
  }
  parallel_for(0, l.outer * inner, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(R, 1)), [&](int64_t b, int64_t e) {
    // Walk rows of `inner` contiguous elements so the inner loop vectorises.
    std::vector<Acc> acc;
    for (int64_t pos = b; pos < e;) {
      int64_t o = pos / inner, i0 = pos % inner;
      int64_t n = std::min(inner - i0, e - pos);
      acc.assign(n, init);
      const T* base = x + o * R * inner + i0;
      for (int64_t r = 0; r < R; ++r) {
        const T* row = base + r * inner;
        for (int64_t i = 0; i < n; ++i) acc[i] = fold(acc[i], row[i]);
      }
      for (int64_t i = 0; i < n; ++i) out[o * inner + i0 + i] = finish(acc[i], R);
      pos += n;
    }
  });
}

}  // namespace loom::cpu
