// CPU reduction kernels. Every reduction is brought to the form [outer, R, inner] (R reduced):
// directly when the reduced dims form one block of a contiguous input, else by a permuted copy.
#include "loom/backends/cpu/reduce.h"

#include <algorithm>

#include "loom/backends/cpu/dispatch_dtype.h"
#include "loom/ops/reduce.h"
#include "loom/ops/shape.h"

namespace loom::cpu {

ReductionLayout reduction_layout(const Tensor& input, const Dims& dims) {
  const Shape& sizes = input.sizes();
  int64_t nd = input.dim();
  bool block = !dims.empty() && dims.back() - dims.front() + 1 == static_cast<int64_t>(dims.size());
  if (input.is_contiguous() && block) {
    ReductionLayout l{input, 1, 1, 1};
    for (int64_t i = 0; i < nd; ++i) {
      if (i < dims.front()) l.outer *= sizes[i];
      else if (i <= dims.back()) l.reduced *= sizes[i];
      else l.inner *= sizes[i];
    }
    return l;
  }
  std::vector<int64_t> order;
  ReductionLayout l{Tensor(), 1, 1, 1};
  for (int64_t i = 0; i < nd; ++i)
    if (std::find(dims.begin(), dims.end(), i) == dims.end()) {
      order.push_back(i);
      l.outer *= sizes[i];
    }
  for (int64_t d : dims) {
    order.push_back(d);
    l.reduced *= sizes[d];
  }
  l.data = contiguous(permute(input, order));
  return l;
}

namespace {

std::vector<Tensor> sum_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  // Accumulate in the output dtype's wide type: double for floats, int64 for integers.
  Tensor in = c.inputs[0].dtype() == out.dtype() ? c.inputs[0] : to_dtype(c.inputs[0], out.dtype());
  ReductionLayout l = reduction_layout(in, c.attrs.get<Dims>("dims"));
  visit_dtype(out.dtype(), [&]<class T>() {
    using Acc = std::conditional_t<std::is_floating_point_v<opmath_t<T>>, double,
                                   std::conditional_t<std::is_same_v<T, bool>, bool, int64_t>>;
    reduce_layout<T, T, Acc>(
        l, out.data<T>(), Acc(0), [](Acc acc, T x) { return static_cast<Acc>(acc + static_cast<Acc>(opmath_t<T>(x))); },
        [](Acc acc, int64_t) { return T(static_cast<opmath_t<T>>(acc)); });
  });
  return {out};
}

}  // namespace

void register_reduce_kernels(Registry& r) { r.set_kernel("sum", DeviceType::CPU, sum_kernel); }

}  // namespace loom::cpu
