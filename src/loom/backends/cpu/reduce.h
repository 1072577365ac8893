// The shared CPU reduction driver: a reduction seen as [outer, R, inner], reduced over R.
#pragma once
#include <algorithm>
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

// A contiguous tensor seen as [outer, R, inner] around one dim (a 0-d tensor is [1, 1, 1]): scans, softmax,
// sort and arg-reductions work line by line along that dim.
struct DimLayout {
  Tensor data;
  int64_t outer = 1, reduced = 1, inner = 1;
};
DimLayout dim_layout(const Tensor& input, int64_t dim);

// Calls fn(line, first, stride) for every line along the dim, in parallel: element r of the line is at
// first + r * stride of the [outer, R, inner] data, and `line` (= o * inner + i) indexes an [outer, inner] output.
template <class Fn>
void for_each_line(const DimLayout& l, Fn fn) {
  int64_t lines = l.outer * l.inner;
  parallel_for(0, lines, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(l.reduced, 1)), [&](int64_t b, int64_t e) {
    for (int64_t line = b; line < e; ++line) {
      int64_t o = line / l.inner, i = line % l.inner;
      fn(line, o * l.reduced * l.inner + i, l.inner);
    }
  });
}

}  // namespace loom::cpu
