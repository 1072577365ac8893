// CPU reduction kernels. Every reduction is brought to the form [outer, R, inner] (R reduced):
// directly when the reduced dims form one block of a contiguous input, else by a permuted copy.
#include "loom/backends/cpu/reduce.h"

#include <algorithm>
#include <cmath>
#include <limits>

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

DimLayout dim_layout(const Tensor& input, int64_t dim) {
  DimLayout l{contiguous(input)};
  for (int64_t i = 0; i < input.dim(); ++i) {
    if (i < dim) l.outer *= input.sizes()[i];
    else if (i == dim) l.reduced = input.sizes()[i];
    else l.inner *= input.sizes()[i];
  }
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

// The wide accumulator of a sum/product in dtype T: double for floats, int64 for integers, bool for bool.
template <class T>
using wide_t = std::conditional_t<std::is_floating_point_v<opmath_t<T>>, double,
                                  std::conditional_t<std::is_same_v<T, bool>, bool, int64_t>>;

std::vector<Tensor> prod_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  Tensor in = c.inputs[0].dtype() == out.dtype() ? c.inputs[0] : to_dtype(c.inputs[0], out.dtype());
  ReductionLayout l = reduction_layout(in, c.attrs.get<Dims>("dims"));
  visit_dtype(out.dtype(), [&]<class T>() {
    using Acc = wide_t<T>;
    reduce_layout<T, T, Acc>(
        l, out.data<T>(), Acc(1), [](Acc acc, T x) { return static_cast<Acc>(acc * static_cast<Acc>(opmath_t<T>(x))); },
        [](Acc acc, int64_t) { return T(static_cast<opmath_t<T>>(acc)); });
  });
  return {out};
}

template <class M>
bool is_nan(M x) {
  if constexpr (std::is_floating_point_v<M>) return std::isnan(x);
  else return false;
}

// x beats the current extreme: NaN beats everything (and stays), then strictly greater (max) or smaller (min).
template <bool IsMax, class M>
bool beats(M x, M current) {
  if (is_nan(current)) return false;
  if (is_nan(x)) return true;
  if constexpr (IsMax) return x > current;
  else return x < current;
}

template <bool IsMax>
std::vector<Tensor> extreme_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  ReductionLayout l = reduction_layout(c.inputs[0], c.attrs.get<Dims>("dims"));
  visit_dtype(out.dtype(), [&]<class T>() {
    using M = opmath_t<T>;
    M init = IsMax ? std::numeric_limits<M>::lowest() : std::numeric_limits<M>::max();
    if constexpr (std::is_floating_point_v<M>) init = IsMax ? -std::numeric_limits<M>::infinity() : std::numeric_limits<M>::infinity();
    reduce_layout<T, T, M>(
        l, out.data<T>(), init, [](M acc, T x) { return beats<IsMax>(M(x), acc) ? M(x) : acc; },
        [](M acc, int64_t) { return T(acc); });
  });
  return {out};
}

template <bool IsAll>
std::vector<Tensor> logical_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  ReductionLayout l = reduction_layout(c.inputs[0], c.attrs.get<Dims>("dims"));
  visit_dtype(c.inputs[0].dtype(), [&]<class T>() {
    auto fold = [](bool acc, T x) { return IsAll ? (acc && static_cast<bool>(x)) : (acc || static_cast<bool>(x)); };
    if (out.dtype() == DType::UInt8)
      reduce_layout<T, uint8_t, bool>(l, out.data<uint8_t>(), IsAll, fold, [](bool acc, int64_t) { return uint8_t(acc); });
    else
      reduce_layout<T, bool, bool>(l, out.data<bool>(), IsAll, fold, [](bool acc, int64_t) { return acc; });
  });
  return {out};
}

template <bool IsMax>
std::vector<Tensor> arg_extreme_kernel(const KernelContext& c) {
  Tensor values = c.alloc(0), indices = c.alloc(1);
  DimLayout l = dim_layout(c.inputs[0], c.attrs.get<int64_t>("dim"));
  visit_dtype(values.dtype(), [&]<class T>() {
    using M = opmath_t<T>;
    const T* x = l.data.data<T>();
    T* v = values.data<T>();
    int64_t* idx = indices.data<int64_t>();
    for_each_line(l, [&](int64_t line, int64_t first, int64_t stride) {
      M best = M(x[first]);
      int64_t best_index = 0;
      for (int64_t r = 1; r < l.reduced; ++r) {
        M value = M(x[first + r * stride]);
        if (beats<IsMax>(value, best)) {
          best = value;
          best_index = r;
        }
      }
      v[line] = T(best);
      idx[line] = best_index;
    });
  });
  return {values, indices};
}

template <bool IsSum>
std::vector<Tensor> scan_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  DimLayout l = dim_layout(c.inputs[0], c.attrs.get<int64_t>("dim"));
  visit_dtype(out.dtype(), [&]<class T>() {
    using Acc = wide_t<T>;
    const T* x = l.data.data<T>();
    T* y = out.data<T>();
    for_each_line(l, [&](int64_t, int64_t first, int64_t stride) {
      Acc acc = IsSum ? Acc(0) : Acc(1);
      for (int64_t r = 0; r < l.reduced; ++r) {
        int64_t at = first + r * stride;
        Acc value = static_cast<Acc>(opmath_t<T>(x[at]));
        if constexpr (IsSum) acc = static_cast<Acc>(acc + value);
        else acc = static_cast<Acc>(acc * value);
        y[at] = T(static_cast<opmath_t<T>>(acc));
      }
    });
  });
  return {out};
}

// Running log(sum(exp)) along the line (from its end when `reverse`), accumulated in double.
std::vector<Tensor> logcumsumexp_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  const bool reverse = c.attrs.get<bool>("reverse");
  DimLayout l = dim_layout(c.inputs[0], c.attrs.get<int64_t>("dim"));
  visit_floating(out.dtype(), "logcumsumexp", [&]<class T>() {
    const T* x = l.data.data<T>();
    T* y = out.data<T>();
    for_each_line(l, [&](int64_t, int64_t first, int64_t stride) {
      double acc = -std::numeric_limits<double>::infinity();
      for (int64_t step = 0; step < l.reduced; ++step) {
        int64_t at = first + (reverse ? l.reduced - 1 - step : step) * stride;
        double value = static_cast<double>(opmath_t<T>(x[at]));
        double high = std::max(acc, value), low = std::min(acc, value);
        if (std::isnan(value) || std::isnan(acc)) acc = std::numeric_limits<double>::quiet_NaN();
        else if (low == -std::numeric_limits<double>::infinity() || high == std::numeric_limits<double>::infinity()) acc = high;
        else acc = high + std::log1p(std::exp(low - high));
        y[at] = T(static_cast<opmath_t<T>>(acc));
      }
    });
  });
  return {out};
}

// Running extreme with the index where it was reached: ties and NaNs take the latest index (PyTorch's rule).
template <bool IsMax>
std::vector<Tensor> cumulative_extreme_kernel(const KernelContext& c) {
  Tensor values = c.alloc(0), indices = c.alloc(1);
  DimLayout l = dim_layout(c.inputs[0], c.attrs.get<int64_t>("dim"));
  visit_dtype(values.dtype(), [&]<class T>() {
    using M = opmath_t<T>;
    const T* x = l.data.data<T>();
    T* v = values.data<T>();
    int64_t* idx = indices.data<int64_t>();
    for_each_line(l, [&](int64_t, int64_t first, int64_t stride) {
      M best{};
      int64_t best_index = 0;
      for (int64_t r = 0; r < l.reduced; ++r) {
        int64_t at = first + r * stride;
        M value = M(x[at]);
        bool take = r == 0 || is_nan(value) || (!is_nan(best) && (IsMax ? value >= best : value <= best));
        if (take) {
          best = value;
          best_index = r;
        }
        v[at] = T(best);
        idx[at] = best_index;
      }
    });
  });
  return {values, indices};
}

// y = exp(x - max) / sum(exp(x - max)), or its log: x - max - log(sum(exp(x - max))).
// Works on `n` neighbouring lines at once ([outer, R, inner] with i0..i0+n-1 in the inner dim), so a softmax over
// a non-last dim reads contiguous rows; n is 1 for the last dim.
// One contiguous line (softmax over the last dim).
template <bool IsLog, class T>
void softmax_line(const T* x, T* y, int64_t R) {
  using M = opmath_t<T>;
  M max_value = -std::numeric_limits<M>::infinity();
  bool has_nan = false;
  for (int64_t r = 0; r < R; ++r) {
    M value = M(x[r]);
    has_nan |= value != value;
    max_value = value > max_value ? value : max_value;
  }
  if (has_nan || std::isinf(max_value)) max_value = has_nan ? std::numeric_limits<M>::quiet_NaN() : M(0);
  double total = 0;
  for (int64_t r = 0; r < R; ++r) {
    M e = std::exp(M(x[r]) - max_value);
    total += e;
    if constexpr (!IsLog) y[r] = T(e);
  }
  if constexpr (IsLog) {
    M log_total = static_cast<M>(std::log(total));
    for (int64_t r = 0; r < R; ++r) y[r] = T(M(x[r]) - max_value - log_total);
  } else {
    M scale = static_cast<M>(1.0 / total);
    for (int64_t r = 0; r < R; ++r) y[r] = T(M(y[r]) * scale);
  }
}

template <bool IsLog, class T>
void softmax_lines(const T* x, T* y, int64_t R, int64_t inner, int64_t n, std::vector<opmath_t<T>>& max_value,
                   std::vector<double>& total) {
  using M = opmath_t<T>;
  max_value.assign(n, -std::numeric_limits<M>::infinity());
  total.assign(n, 0.0);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t i = 0; i < n; ++i) {
      M value = M(x[r * inner + i]);
      if (beats<true>(value, max_value[i])) max_value[i] = value;
    }
  for (int64_t i = 0; i < n; ++i)
    if (std::isinf(max_value[i])) max_value[i] = 0;  // all -inf (or +inf): the arithmetic gives NaN like torch
  for (int64_t r = 0; r < R; ++r)
    for (int64_t i = 0; i < n; ++i) {
      M e = std::exp(M(x[r * inner + i]) - max_value[i]);
      total[i] += e;
      if constexpr (!IsLog) y[r * inner + i] = T(e);
    }
  if constexpr (IsLog) {
    for (int64_t i = 0; i < n; ++i) total[i] = std::log(total[i]);
    for (int64_t r = 0; r < R; ++r)
      for (int64_t i = 0; i < n; ++i) y[r * inner + i] = T(M(x[r * inner + i]) - max_value[i] - static_cast<M>(total[i]));
  } else {
    for (int64_t i = 0; i < n; ++i) total[i] = 1.0 / total[i];
    for (int64_t r = 0; r < R; ++r)
      for (int64_t i = 0; i < n; ++i) y[r * inner + i] = T(M(y[r * inner + i]) * static_cast<M>(total[i]));
  }
}

template <bool IsLog>
std::vector<Tensor> softmax_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  DimLayout l = dim_layout(c.inputs[0], c.attrs.get<int64_t>("dim"));
  visit_floating(out.dtype(), IsLog ? "log_softmax" : "softmax", [&]<class T>() {
    const T* x = l.data.data<T>();
    T* y = out.data<T>();
    const int64_t R = l.reduced, inner = l.inner;
    if (inner == 1) {
      parallel_for(0, l.outer, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(R, 1)), [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; ++o) softmax_line<IsLog, T>(x + o * R, y + o * R, R);
      });
      return;
    }
    parallel_for(0, l.outer * inner, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(R, 1)),
                 [&](int64_t b, int64_t e) {
      std::vector<opmath_t<T>> max_value;
      std::vector<double> total;
      for (int64_t pos = b; pos < e;) {
        int64_t o = pos / inner, i0 = pos % inner;
        int64_t n = std::min(inner - i0, e - pos);
        int64_t offset = o * R * inner + i0;
        softmax_lines<IsLog, T>(x + offset, y + offset, R, inner, n, max_value, total);
        pos += n;
      }
    });
  });
  return {out};
}

}  // namespace

void register_reduce_kernels(Registry& r) {
  constexpr DeviceType cpu = DeviceType::CPU;
  r.set_kernel("sum", cpu, sum_kernel);
  r.set_kernel("prod", cpu, prod_kernel);
  r.set_kernel("amax", cpu, extreme_kernel<true>);
  r.set_kernel("amin", cpu, extreme_kernel<false>);
  r.set_kernel("max_dim", cpu, arg_extreme_kernel<true>);
  r.set_kernel("min_dim", cpu, arg_extreme_kernel<false>);
  r.set_kernel("all", cpu, logical_kernel<true>);
  r.set_kernel("any", cpu, logical_kernel<false>);
  r.set_kernel("cumsum", cpu, scan_kernel<true>);
  r.set_kernel("cumprod", cpu, scan_kernel<false>);
  r.set_kernel("logcumsumexp", cpu, logcumsumexp_kernel);
  r.set_kernel("cummax", cpu, cumulative_extreme_kernel<true>);
  r.set_kernel("cummin", cpu, cumulative_extreme_kernel<false>);
  r.set_kernel("softmax", cpu, softmax_kernel<false>);
  r.set_kernel("log_softmax", cpu, softmax_kernel<true>);
}

}  // namespace loom::cpu
