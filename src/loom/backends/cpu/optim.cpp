// CPU kernels of the fused optimizer ops: one parallel_for over fixed-size chunks of every tensor in the lists.
#include <algorithm>
#include <cmath>

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
      sgd_range<float>(params[i].data.data<float>(), grads[i].data<float>(),
                       with_momentum ? bufs[i].data.data<float>() : nullptr, is_first, it.begin, it.end, s);
    else
      sgd_range<double>(params[i].data.data<double>(), grads[i].data<double>(),
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
      adam_range<float>(params[i].data.data<float>(), grads[i].data<float>(), exp_avgs[i].data.data<float>(),
                        exp_avg_sqs[i].data.data<float>(),
                        s.amsgrad ? max_exp_avg_sqs[i].data.data<float>() : nullptr, it.begin, it.end, s, steps[i]);
    else
      adam_range<double>(params[i].data.data<double>(), grads[i].data<double>(), exp_avgs[i].data.data<double>(),
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
