// CPU kernels of the fused optimizer ops: one parallel_for over fixed-size chunks of every tensor in the lists.
// Each chunk runs an AVX2+FMA loop when the CPU has them (chosen at run time; the build stays generic x86-64)
// and a scalar loop otherwise and for the tail. The AVX2 loop uses fused multiply-adds exactly where PyTorch's
// vectorised CPU kernels do (add with alpha, lerp), so float32 results match torch's foreach path closely.
#include <algorithm>
#include <cmath>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "loom/backends/cpu/simd/cpu_features.h"
#include "loom/core/parallel.h"
#include "loom/ops/registry.h"
#include "loom/ops/shape.h"

namespace loom::cpu {

namespace {

constexpr int64_t kChunk = 1 << 15;  // elements per work item: big enough to amortise, small enough to balance

// A contiguous tensor to work on: `t` itself, or a contiguous copy that is written back to `t` afterwards.
struct Work {
  Tensor original;
  Tensor data;
  bool copy_back = false;
};

Work writable(const Tensor& t) {
  if (t.is_contiguous()) return {t, t, false};
  return {t, contiguous(t), true};
}

void finish(const Work& w) {
  if (w.copy_back) detail::copy_data(w.original, w.data);
  w.original.bump_version();
}

Tensor readable(const Tensor& t) { return t.is_contiguous() ? t : contiguous(t); }

#if defined(__x86_64__)
// fp-contract=off: GCC would otherwise fuse a separate multiply and add into an FMA where torch rounds twice.
#define LOOM_AVX2_FUNCTION __attribute__((target("avx2,fma"), optimize("fp-contract=off")))
#define LOOM_AVX2 __attribute__((target("avx2,fma"), optimize("fp-contract=off"), always_inline)) inline

bool has_avx2_fma() { return use_avx2(); }

// 256-bit vector operations per element type, for the AVX2 loops below.
template <class T>
struct Avx;
template <>
struct Avx<float> {
  using V = __m256;
  static constexpr int64_t N = 8;
  static LOOM_AVX2 V load(const float* p) { return _mm256_loadu_ps(p); }
  static LOOM_AVX2 void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static LOOM_AVX2 V set1(float x) { return _mm256_set1_ps(x); }
  static LOOM_AVX2 V add(V a, V b) { return _mm256_add_ps(a, b); }
  static LOOM_AVX2 V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static LOOM_AVX2 V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static LOOM_AVX2 V div(V a, V b) { return _mm256_div_ps(a, b); }
  static LOOM_AVX2 V sqrt(V a) { return _mm256_sqrt_ps(a); }
  static LOOM_AVX2 V max(V a, V b) { return _mm256_max_ps(a, b); }
  static LOOM_AVX2 V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }  // a * b + c, one rounding
};
template <>
struct Avx<double> {
  using V = __m256d;
  static constexpr int64_t N = 4;
  static LOOM_AVX2 V load(const double* p) { return _mm256_loadu_pd(p); }
  static LOOM_AVX2 void store(double* p, V v) { _mm256_storeu_pd(p, v); }
  static LOOM_AVX2 V set1(double x) { return _mm256_set1_pd(x); }
  static LOOM_AVX2 V add(V a, V b) { return _mm256_add_pd(a, b); }
  static LOOM_AVX2 V sub(V a, V b) { return _mm256_sub_pd(a, b); }
  static LOOM_AVX2 V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static LOOM_AVX2 V div(V a, V b) { return _mm256_div_pd(a, b); }
  static LOOM_AVX2 V sqrt(V a) { return _mm256_sqrt_pd(a); }
  static LOOM_AVX2 V max(V a, V b) { return _mm256_max_pd(a, b); }
  static LOOM_AVX2 V fmadd(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
};
#endif

struct Item {
  int64_t tensor, begin, end;
};

std::vector<Item> make_items(const std::vector<Work>& params) {
  std::vector<Item> items;
  for (size_t i = 0; i < params.size(); ++i) {
    int64_t n = params[i].data.numel();
    for (int64_t b = 0; b < n; b += kChunk) items.push_back({static_cast<int64_t>(i), b, std::min(n, b + kChunk)});
  }
  return items;
}

void run_items(const std::vector<Item>& items, const std::function<void(const Item&)>& fn) {
  parallel_for(0, static_cast<int64_t>(items.size()), 1, [&](int64_t lo, int64_t hi) {
    for (int64_t k = lo; k < hi; ++k) fn(items[k]);
  });
}

// ---- SGD ----

struct SGDScalars {
  double lr, momentum, dampening, weight_decay;
  bool nesterov, maximize;
};

// torch.optim.SGD's foreach math, in the parameter's dtype.
template <class T>
void sgd_range(T* p, const T* grad, T* buf, bool first, int64_t begin, int64_t end, const SGDScalars& s) {
  const T wd = static_cast<T>(s.weight_decay);
  const T momentum = static_cast<T>(s.momentum);
  const T one_minus_dampening = static_cast<T>(1.0 - s.dampening);
  const T neg_lr = static_cast<T>(-s.lr);
  const bool decay = s.weight_decay != 0.0;
  for (int64_t k = begin; k < end; ++k) {
    T g = s.maximize ? -grad[k] : grad[k];
    if (decay) g = g + wd * p[k];
    if (buf) {
      T b = first ? g : buf[k] * momentum + one_minus_dampening * g;
      buf[k] = b;
      g = s.nesterov ? g + momentum * b : b;
    }
    p[k] = p[k] + neg_lr * g;
  }
}

#if defined(__x86_64__)
// The same update, 8 (float) or 4 (double) elements at a time; returns where the scalar tail starts.
template <class T>
LOOM_AVX2_FUNCTION int64_t sgd_avx2(T* p, const T* grad, T* buf, bool first, int64_t begin, int64_t end,
                                    const SGDScalars& s) {
  using A = Avx<T>;
  const auto sign = A::set1(s.maximize ? T(-1) : T(1));
  const auto wd = A::set1(static_cast<T>(s.weight_decay));
  const auto momentum = A::set1(static_cast<T>(s.momentum));
  const auto one_minus_dampening = A::set1(static_cast<T>(1.0 - s.dampening));
  const auto neg_lr = A::set1(static_cast<T>(-s.lr));
  const bool decay = s.weight_decay != 0.0;
  int64_t k = begin;
  for (; k + A::N <= end; k += A::N) {
    auto param = A::load(p + k);
    auto g = A::mul(A::load(grad + k), sign);
    if (decay) g = A::fmadd(param, wd, g);
    if (buf) {
      auto b = first ? g : A::fmadd(g, one_minus_dampening, A::mul(A::load(buf + k), momentum));
      A::store(buf + k, b);
      g = s.nesterov ? A::fmadd(b, momentum, g) : b;
    }
    A::store(p + k, A::fmadd(g, neg_lr, param));
  }
  return k;
}
#endif

template <class T>
void sgd_chunk(T* p, const T* grad, T* buf, bool first, int64_t begin, int64_t end, const SGDScalars& s) {
#if defined(__x86_64__)
  if (has_avx2_fma()) begin = sgd_avx2<T>(p, grad, buf, first, begin, end, s);
#endif
  sgd_range<T>(p, grad, buf, first, begin, end, s);
}

std::vector<Tensor> fused_sgd_kernel(const KernelContext& ctx) {
  const Attrs& a = ctx.attrs;
  int64_t n = a.get<int64_t>("num_tensors");
  SGDScalars s{a.get<double>("lr"),           a.get<double>("momentum"), a.get<double>("dampening"),
               a.get<double>("weight_decay"), a.get<bool>("nesterov"),   a.get<bool>("maximize")};
  bool with_momentum = s.momentum != 0.0;
  std::vector<int64_t> first = with_momentum ? a.get<std::vector<int64_t>>("first_step") : std::vector<int64_t>();
  std::vector<Work> params, bufs;
  std::vector<Tensor> grads;
  for (int64_t i = 0; i < n; ++i) {
    params.push_back(writable(ctx.inputs[i]));
    grads.push_back(readable(ctx.inputs[n + i]));
    if (with_momentum) bufs.push_back(writable(ctx.inputs[2 * n + i]));
  }
  run_items(make_items(params), [&](const Item& it) {
    int64_t i = it.tensor;
    bool is_first = with_momentum && first[i] != 0;
    if (params[i].data.dtype() == DType::Float32)
      sgd_chunk<float>(params[i].data.data<float>(), grads[i].data<float>(),
                       with_momentum ? bufs[i].data.data<float>() : nullptr, is_first, it.begin, it.end, s);
    else
      sgd_chunk<double>(params[i].data.data<double>(), grads[i].data<double>(),
                        with_momentum ? bufs[i].data.data<double>() : nullptr, is_first, it.begin, it.end, s);
  });
  for (const Work& w : params) finish(w);
  for (const Work& w : bufs) finish(w);
  return {};
}

// ---- Adam / AdamW ----

struct AdamScalars {
  double lr, beta1, beta2, eps, weight_decay;
  bool amsgrad, maximize, decoupled;
};

// Per-tensor scalars derived from the step, computed in double like torch's Python code.
struct AdamStep {
  double step_size;         // -lr / (1 - beta1^step)
  double bias_correction2;  // sqrt(1 - beta2^step)
};

// torch.optim.Adam/AdamW's foreach math (non-capturable), in the parameter's dtype.
template <class T>
void adam_range(T* p, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, int64_t begin, int64_t end,
                const AdamScalars& s, const AdamStep& st) {
  const T weight = static_cast<T>(1.0 - s.beta1);  // lerp weight
  const T weight_minus_one = weight - T(1);
  const bool weight_small = std::abs(weight) < T(0.5);
  const T beta2 = static_cast<T>(s.beta2);
  const T one_minus_beta2 = static_cast<T>(1.0 - s.beta2);
  const T decay = static_cast<T>(1.0 - s.lr * s.weight_decay);
  const T wd = static_cast<T>(s.weight_decay);
  const T step_size = static_cast<T>(st.step_size);
  const T bias_correction2 = static_cast<T>(st.bias_correction2);
  const T eps = static_cast<T>(s.eps);
  const bool coupled_decay = s.weight_decay != 0.0 && !s.decoupled;
  const bool decoupled_decay = s.weight_decay != 0.0 && s.decoupled;
  for (int64_t k = begin; k < end; ++k) {
    T g = s.maximize ? -grad[k] : grad[k];
    T param = p[k];
    if (decoupled_decay) param = param * decay;
    if (coupled_decay) g = g + wd * param;
    T m = exp_avg[k];
    m = weight_small ? m + weight * (g - m) : g + weight_minus_one * (g - m);
    exp_avg[k] = m;
    T v = exp_avg_sq[k] * beta2;
    v = v + one_minus_beta2 * g * g;
    exp_avg_sq[k] = v;
    if (max_exp_avg_sq) {
      v = std::max(max_exp_avg_sq[k], v);
      max_exp_avg_sq[k] = v;
    }
    T denom = std::sqrt(v) / bias_correction2 + eps;
    p[k] = param + step_size * m / denom;
  }
}

#if defined(__x86_64__)
template <class T, bool Amsgrad>
LOOM_AVX2_FUNCTION int64_t adam_avx2(T* p, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq,
                                     int64_t begin, int64_t end, const AdamScalars& s, const AdamStep& st) {
  using A = Avx<T>;
  const T weight_scalar = static_cast<T>(1.0 - s.beta1);
  const bool weight_small = std::abs(weight_scalar) < T(0.5);
  const auto weight = A::set1(weight_scalar);
  const auto weight_minus_one = A::set1(weight_scalar - T(1));
  const auto sign = A::set1(s.maximize ? T(-1) : T(1));
  const auto beta2 = A::set1(static_cast<T>(s.beta2));
  const auto one_minus_beta2 = A::set1(static_cast<T>(1.0 - s.beta2));
  const auto decay = A::set1(static_cast<T>(1.0 - s.lr * s.weight_decay));
  const auto wd = A::set1(static_cast<T>(s.weight_decay));
  const auto step_size = A::set1(static_cast<T>(st.step_size));
  const auto bias_correction2 = A::set1(static_cast<T>(st.bias_correction2));
  const auto eps = A::set1(static_cast<T>(s.eps));
  const bool coupled_decay = s.weight_decay != 0.0 && !s.decoupled;
  const bool decoupled_decay = s.weight_decay != 0.0 && s.decoupled;
  int64_t k = begin;
  for (; k + A::N <= end; k += A::N) {
    auto g = A::mul(A::load(grad + k), sign);
    auto param = A::load(p + k);
    if (decoupled_decay) param = A::mul(param, decay);
    if (coupled_decay) g = A::fmadd(param, wd, g);
    auto m = A::load(exp_avg + k);
    auto diff = A::sub(g, m);
    m = weight_small ? A::fmadd(weight, diff, m) : A::fmadd(weight_minus_one, diff, g);
    A::store(exp_avg + k, m);
    auto v = A::mul(A::load(exp_avg_sq + k), beta2);
    v = A::fmadd(A::mul(one_minus_beta2, g), g, v);  // torch's addcmul kernel is contracted to an FMA too
    A::store(exp_avg_sq + k, v);
    if (Amsgrad) {
      v = A::max(A::load(max_exp_avg_sq + k), v);
      A::store(max_exp_avg_sq + k, v);
    }
    auto denom = A::add(A::div(A::sqrt(v), bias_correction2), eps);
    A::store(p + k, A::add(param, A::div(A::mul(step_size, m), denom)));
  }
  return k;
}
#endif

template <class T>
void adam_chunk(T* p, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, int64_t begin, int64_t end,
                const AdamScalars& s, const AdamStep& st) {
#if defined(__x86_64__)
  if (has_avx2_fma())
    begin = max_exp_avg_sq ? adam_avx2<T, true>(p, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, begin, end, s, st)
                           : adam_avx2<T, false>(p, grad, exp_avg, exp_avg_sq, nullptr, begin, end, s, st);
#endif
  adam_range<T>(p, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, begin, end, s, st);
}

template <bool Decoupled>
std::vector<Tensor> fused_adam_kernel(const KernelContext& ctx) {
  const Attrs& a = ctx.attrs;
  int64_t n = a.get<int64_t>("num_tensors");
  AdamScalars s{a.get<double>("lr"),  a.get<double>("beta1"),        a.get<double>("beta2"),
                a.get<double>("eps"), a.get<double>("weight_decay"), a.get<bool>("amsgrad"),
                a.get<bool>("maximize"), Decoupled};
  int64_t lists = s.amsgrad ? 5 : 4;
  std::vector<Work> params, exp_avgs, exp_avg_sqs, max_exp_avg_sqs;
  std::vector<Tensor> grads;
  std::vector<AdamStep> steps;
  for (int64_t i = 0; i < n; ++i) {
    params.push_back(writable(ctx.inputs[i]));
    grads.push_back(readable(ctx.inputs[n + i]));
    exp_avgs.push_back(writable(ctx.inputs[2 * n + i]));
    exp_avg_sqs.push_back(writable(ctx.inputs[3 * n + i]));
    if (s.amsgrad) max_exp_avg_sqs.push_back(writable(ctx.inputs[4 * n + i]));
    // step += 1 in the step tensor's own dtype, then the bias corrections in double.
    const Tensor& step_tensor = ctx.inputs[lists * n + i];
    double step;
    if (step_tensor.dtype() == DType::Float32) {
      float* ptr = step_tensor.data<float>();
      *ptr = *ptr + 1.0f;
      step = *ptr;
    } else if (step_tensor.dtype() == DType::Float64) {
      double* ptr = step_tensor.data<double>();
      *ptr = *ptr + 1.0;
      step = *ptr;
    } else {
      fail(ErrorKind::Type, Decoupled ? "_fused_adamw_" : "_fused_adam_", ": state_steps[", i, "] has dtype ",
           dtype_name(step_tensor.dtype()), "; expected float32 or float64");
    }
    step_tensor.bump_version();
    double bias_correction1 = 1.0 - std::pow(s.beta1, step);
    double bias_correction2 = 1.0 - std::pow(s.beta2, step);
    steps.push_back({(s.lr / bias_correction1) * -1.0, std::pow(bias_correction2, 0.5)});
  }
  run_items(make_items(params), [&](const Item& it) {
    int64_t i = it.tensor;
    if (params[i].data.dtype() == DType::Float32)
      adam_chunk<float>(params[i].data.data<float>(), grads[i].data<float>(), exp_avgs[i].data.data<float>(),
                        exp_avg_sqs[i].data.data<float>(),
                        s.amsgrad ? max_exp_avg_sqs[i].data.data<float>() : nullptr, it.begin, it.end, s, steps[i]);
    else
      adam_chunk<double>(params[i].data.data<double>(), grads[i].data<double>(), exp_avgs[i].data.data<double>(),
                         exp_avg_sqs[i].data.data<double>(),
                         s.amsgrad ? max_exp_avg_sqs[i].data.data<double>() : nullptr, it.begin, it.end, s,
                         steps[i]);
  });
  for (const auto* list : {&params, &exp_avgs, &exp_avg_sqs, &max_exp_avg_sqs})
    for (const Work& w : *list) finish(w);
  return {};
}

}  // namespace

void register_optim_kernels(Registry& r) {
  r.set_kernel("_fused_sgd_", DeviceType::CPU, fused_sgd_kernel);
  r.set_kernel("_fused_adam_", DeviceType::CPU, fused_adam_kernel<false>);
  r.set_kernel("_fused_adamw_", DeviceType::CPU, fused_adam_kernel<true>);
}

}  // namespace loom::cpu
