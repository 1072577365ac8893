// CPU kernels for sampling. Element i reads Philox block (offset + i / 2), lanes 2*(i%2) and 2*(i%2)+1,
// so every element has 64 random bits of its own and the result is independent of how work is split.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "loom/backends/cpu/dispatch_dtype.h"
#include "loom/core/generator.h"
#include "loom/core/parallel.h"
#include "loom/ops/registry.h"
#include "loom/ops/shape.h"

namespace loom::cpu {

namespace {

struct Stream {
  uint64_t seed, offset;
  // The 64 random bits of element i.
  uint64_t bits(int64_t i) const {
    uint64_t block = offset + static_cast<uint64_t>(i) / 2;
    auto out = philox4x32({static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0u, 0u}, seed);
    int lane = 2 * static_cast<int>(i % 2);
    return (static_cast<uint64_t>(out[lane]) << 32) | out[lane + 1];
  }
  // Uniform double in [0, 1) with 53 random bits.
  double uniform(int64_t i) const { return static_cast<double>(bits(i) >> 11) * 0x1.0p-53; }
};

Stream stream_of(const Attrs& a) {
  return {static_cast<uint64_t>(a.get<int64_t>("seed")), static_cast<uint64_t>(a.get<int64_t>("offset"))};
}

template <class F>
Tensor fill_floating(const KernelContext& c, const char* op, F value_of) {
  Tensor out = c.alloc(0);
  visit_floating(out.dtype(), op, [&]<class T>() {
    T* data = out.data<T>();
    parallel_for(0, out.numel(), 4096, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) data[i] = T(static_cast<opmath_t<T>>(value_of(i)));
    });
  });
  return out;
}

std::vector<Tensor> uniform_kernel(const KernelContext& c) {
  Stream s = stream_of(c.attrs);
  double low = c.attrs.get<double>("low"), high = c.attrs.get<double>("high");
  DType dtype = c.outputs[0].dtype;
  return {fill_floating(c, "uniform_", [&](int64_t i) {
    double v = low + (high - low) * s.uniform(i);
    // Rounding to a narrow dtype must not produce `high` itself: the interval is half-open.
    if (dtype != DType::Float64 && high > low) {
      float f = static_cast<float>(v);
      if (static_cast<double>(f) >= high) v = std::nextafter(static_cast<float>(high), static_cast<float>(low));
    }
    return v;
  })};
}

std::vector<Tensor> normal_kernel(const KernelContext& c) {
  Stream s = stream_of(c.attrs);
  double mean = c.attrs.get<double>("mean"), std = c.attrs.get<double>("std");
  return {fill_floating(c, "normal_", [&](int64_t i) {
    uint64_t bits = s.bits(i);
    // Box-Muller on the element's own two 32-bit halves: u1 in (0, 1], u2 in [0, 1).
    double u1 = (static_cast<double>(bits >> 32) + 1.0) * 0x1.0p-32;
    double u2 = static_cast<double>(bits & 0xffffffffu) * 0x1.0p-32;
    return mean + std * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  })};
}

std::vector<Tensor> randint_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  Stream s = stream_of(c.attrs);
  int64_t low = c.attrs.get<int64_t>("low");
  uint64_t range = static_cast<uint64_t>(c.attrs.get<int64_t>("high") - low);
  visit_dtype(out.dtype(), [&]<class T>() {
    T* data = out.data<T>();
    parallel_for(0, out.numel(), 4096, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        int64_t v = low + static_cast<int64_t>(s.bits(i) % range);
        if constexpr (std::is_integral_v<T>) data[i] = static_cast<T>(v);
        else data[i] = T(static_cast<opmath_t<T>>(v));
      }
    });
  });
  return {out};
}

std::vector<Tensor> randperm_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  Stream s = stream_of(c.attrs);
  int64_t n = out.numel();
  std::vector<int64_t> perm(n);
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  for (int64_t i = n - 1; i > 0; --i) std::swap(perm[i], perm[s.bits(i) % static_cast<uint64_t>(i + 1)]);
  visit_dtype(out.dtype(), [&]<class T>() {
    T* data = out.data<T>();
    for (int64_t i = 0; i < n; ++i) {
      if constexpr (std::is_integral_v<T>) data[i] = static_cast<T>(perm[i]);
      else data[i] = T(static_cast<opmath_t<T>>(perm[i]));
    }
  });
  return {out};
}

std::vector<Tensor> bernoulli_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  Stream s = stream_of(c.attrs);
  Tensor p = c.inputs[0].is_contiguous() ? c.inputs[0] : contiguous(c.inputs[0]);
  visit_floating(out.dtype(), "bernoulli", [&]<class T>() {
    const T* probs = p.data<T>();
    T* data = out.data<T>();
    int64_t n = out.numel();
    for (int64_t i = 0; i < n; ++i) {
      double q = static_cast<double>(static_cast<opmath_t<T>>(probs[i]));
      LOOM_CHECK(q >= 0.0 && q <= 1.0, Value, "bernoulli: probabilities must be in [0, 1], got ", q);
    }
    parallel_for(0, n, 4096, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i)
        data[i] = T(static_cast<opmath_t<T>>(s.uniform(i) < static_cast<double>(static_cast<opmath_t<T>>(probs[i]))));
    });
  });
  return {out};
}

// Checks every row of weights before any sampling (errors must not be raised inside parallel_for) and returns
// each row's total weight.
template <class T>
std::vector<double> multinomial_row_totals(const T* probs, int64_t rows, int64_t categories) {
  std::vector<double> totals(rows);
  for (int64_t r = 0; r < rows; ++r) {
    double total = 0.0;
    for (int64_t k = 0; k < categories; ++k) {
      double q = static_cast<double>(static_cast<opmath_t<T>>(probs[r * categories + k]));
      LOOM_CHECK(std::isfinite(q) && q >= 0.0, Value,
                 "multinomial: probability tensor contains either inf, nan or element < 0 (row ", r, ")");
      total += q;
    }
    LOOM_CHECK(total > 0.0, Value, "multinomial: invalid multinomial distribution (row ", r, " sums to 0)");
    totals[r] = total;
  }
  return totals;
}

std::vector<Tensor> multinomial_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  Stream s = stream_of(c.attrs);
  const Tensor p = c.inputs[0].is_contiguous() ? c.inputs[0] : contiguous(c.inputs[0]);
  int64_t n = c.attrs.get<int64_t>("num_samples");
  bool replacement = c.attrs.get<bool>("replacement");
  int64_t categories = p.sizes().back(), rows = p.dim() == 2 ? p.sizes()[0] : 1;
  int64_t* data = out.data<int64_t>();
  visit_floating(p.dtype(), "multinomial", [&]<class T>() {
    const T* probs = p.data<T>();
    std::vector<double> totals = multinomial_row_totals(probs, rows, categories);
    parallel_for(0, rows, 1, [&](int64_t b, int64_t e) {
      std::vector<double> work(categories);
      std::vector<int64_t> order(categories);
      for (int64_t r = b; r < e; ++r) {
        const T* row = probs + r * categories;
        if (replacement) {
          // Inverse CDF: the first category whose running sum exceeds u * total (skips zero weights).
          double sum = 0.0;
          for (int64_t k = 0; k < categories; ++k) work[k] = sum += static_cast<double>(static_cast<opmath_t<T>>(row[k]));
          for (int64_t j = 0; j < n; ++j) {
            double u = s.uniform(r * n + j) * totals[r];
            int64_t k = std::upper_bound(work.begin(), work.end(), u) - work.begin();
            data[r * n + j] = std::min(k, categories - 1);
          }
          continue;
        }
        // Exponential race: category k arrives at E_k / w_k; the first n arrivals, in order, are a draw without
        // replacement in proportion to the weights. Zero weights never arrive; as in torch, they fill any
        // remaining places in index order.
        for (int64_t k = 0; k < categories; ++k) {
          double w = static_cast<double>(static_cast<opmath_t<T>>(row[k]));
          work[k] = w > 0.0 ? -std::log1p(-s.uniform(r * categories + k)) / w : std::numeric_limits<double>::infinity();
          order[k] = k;
        }
        std::partial_sort(order.begin(), order.begin() + n, order.end(),
                          [&](int64_t x, int64_t y) { return work[x] < work[y] || (work[x] == work[y] && x < y); });
        std::copy(order.begin(), order.begin() + n, data + r * n);
      }
    });
  });
  return {out};
}

}  // namespace

void register_random_kernels(Registry& r) {
  r.set_kernel("uniform", DeviceType::CPU, uniform_kernel);
  r.set_kernel("normal", DeviceType::CPU, normal_kernel);
  r.set_kernel("randint", DeviceType::CPU, randint_kernel);
  r.set_kernel("randperm", DeviceType::CPU, randperm_kernel);
  r.set_kernel("bernoulli", DeviceType::CPU, bernoulli_kernel);
  r.set_kernel("multinomial", DeviceType::CPU, multinomial_kernel);
}

}  // namespace loom::cpu
