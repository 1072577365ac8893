// CPU kernels of the sort family: sort/topk (one kernel, partial sort for k < size) and the index
// scatter/gather along a dim that their backward uses.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "loom/backends/cpu/dispatch_dtype.h"
#include "loom/backends/cpu/reduce.h"

namespace loom::cpu {

namespace {

template <class M>
bool nan_value(M x) {
  if constexpr (std::is_floating_point_v<M>) return std::isnan(x);
  else return false;
}

// sort_topk: values and indices of the first k elements of each line in sorted order. NaN counts as the
// largest value; equal values keep their input order (ties broken by index), so the result is stable.
std::vector<Tensor> sort_topk_kernel(const KernelContext& c) {
  Tensor values = c.alloc(0), indices = c.alloc(1);
  const int64_t k = c.attrs.get<int64_t>("k");
  const bool largest = c.attrs.get<bool>("largest");
  DimLayout l = dim_layout(c.inputs[0], c.attrs.get<int64_t>("dim"));
  if (k == 0 || l.outer * l.inner == 0) return {values, indices};
  visit_dtype(values.dtype(), [&]<class T>() {
    using M = opmath_t<T>;
    const T* x = l.data.data<T>();
    T* v = values.data<T>();
    int64_t* idx = indices.data<int64_t>();
    for_each_line(l, [&](int64_t line, int64_t first, int64_t stride) {
      std::vector<int64_t> order(l.reduced);
      std::iota(order.begin(), order.end(), int64_t(0));
      auto before = [&](int64_t a, int64_t b) {
        M va = M(x[first + a * stride]), vb = M(x[first + b * stride]);
        bool na = nan_value(va), nb = nan_value(vb);
        if (na || nb) {
          if (na && nb) return a < b;
          return largest ? na : nb;  // NaN first when descending, last when ascending
        }
        if (va != vb) return largest ? va > vb : va < vb;
        return a < b;
      };
      if (k < l.reduced) std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
      else std::sort(order.begin(), order.end(), before);
      int64_t o = line / l.inner, i = line % l.inner;
      int64_t out_first = o * k * l.inner + i;
      for (int64_t j = 0; j < k; ++j) {
        v[out_first + j * l.inner] = x[first + order[j] * stride];
        idx[out_first + j * l.inner] = order[j];
      }
    });
  });
  return {values, indices};
}

}  // namespace

void register_sort_kernels(Registry& r) {
  r.set_kernel("sort_topk", DeviceType::CPU, sort_topk_kernel);
}

}  // namespace loom::cpu
