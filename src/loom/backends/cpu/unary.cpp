// CPU kernels for the unary elementwise ops (math, activations, rounding, predicates, clamp).
// float32 and bfloat16 have AVX2 and AVX-512 paths (simd/elementwise.h) for exp, log, tanh, sigmoid, erf, relu,
// gelu (exact and tanh), silu, neg, abs, sqrt, rsqrt and reciprocal.
#include <cmath>
#include <limits>
#include <numbers>

#include "loom/backends/cpu/dispatch_dtype.h"
#include "loom/backends/cpu/kernel_util.h"
#include "loom/backends/cpu/loops.h"
#include "loom/backends/cpu/simd/cpu_features.h"
#include "loom/backends/cpu/simd/elementwise.h"

namespace loom::cpu {

namespace {

// Parameters some functors read (slopes, thresholds, clamp bounds).
struct Params {
  double a = 0, b = 0;
  bool has_a = false, has_b = false;
};

#define LOOM_UNARY_FUNCTOR(Name, expr) \
  struct Name {                        \
    template <class M>                 \
    static M apply(M x, const Params& p) { (void)p; return expr; } \
  }

// Integer neg/abs of the most negative value wrap to itself, as in PyTorch (wrap_neg: no signed overflow).
LOOM_UNARY_FUNCTOR(NegOp, wrap_neg(x));
LOOM_UNARY_FUNCTOR(AbsOp, x < M(0) ? wrap_neg(x) : x);
LOOM_UNARY_FUNCTOR(SignOp, static_cast<M>((M(0) < x) - (x < M(0))));
LOOM_UNARY_FUNCTOR(ExpOp, std::exp(x));
LOOM_UNARY_FUNCTOR(Expm1Op, std::expm1(x));
LOOM_UNARY_FUNCTOR(LogOp, std::log(x));
LOOM_UNARY_FUNCTOR(Log1pOp, std::log1p(x));
LOOM_UNARY_FUNCTOR(Log2Op, std::log2(x));
LOOM_UNARY_FUNCTOR(SqrtOp, std::sqrt(x));
LOOM_UNARY_FUNCTOR(RsqrtOp, M(1) / std::sqrt(x));
LOOM_UNARY_FUNCTOR(SinOp, std::sin(x));
LOOM_UNARY_FUNCTOR(CosOp, std::cos(x));
LOOM_UNARY_FUNCTOR(TanhOp, std::tanh(x));
LOOM_UNARY_FUNCTOR(SigmoidOp, M(1) / (M(1) + std::exp(-x)));
LOOM_UNARY_FUNCTOR(ErfOp, std::erf(x));
LOOM_UNARY_FUNCTOR(ReciprocalOp, M(1) / x);
LOOM_UNARY_FUNCTOR(FloorOp, std::floor(x));
LOOM_UNARY_FUNCTOR(CeilOp, std::ceil(x));
LOOM_UNARY_FUNCTOR(RoundOp, std::nearbyint(x));  // half to even, like torch.round
LOOM_UNARY_FUNCTOR(TruncOp, std::trunc(x));
LOOM_UNARY_FUNCTOR(ReluOp, (x > M(0) || x != x) ? x : M(0));  // NaN stays NaN, like torch.relu
LOOM_UNARY_FUNCTOR(LeakyReluOp, x > M(0) ? x : static_cast<M>(x * static_cast<M>(p.a)));
LOOM_UNARY_FUNCTOR(GeluOp, static_cast<M>(0.5) * x * (M(1) + std::erf(x * static_cast<M>(1.0 / std::numbers::sqrt2))));
LOOM_UNARY_FUNCTOR(GeluTanhOp, static_cast<M>(0.5) * x *
                                   (M(1) + std::tanh(static_cast<M>(std::sqrt(2.0 / std::numbers::pi)) *
                                                     (x + static_cast<M>(0.044715) * x * x * x))));
LOOM_UNARY_FUNCTOR(SiluOp, x / (M(1) + std::exp(-x)));
LOOM_UNARY_FUNCTOR(SoftplusOp, x * static_cast<M>(p.a) > static_cast<M>(p.b)
                                   ? x
                                   : static_cast<M>(std::log1p(std::exp(x * static_cast<M>(p.a))) / static_cast<M>(p.a)));
#undef LOOM_UNARY_FUNCTOR

struct ClampOp {
  template <class M>
  static M apply(M x, const Params& p) {
    if constexpr (std::is_floating_point_v<M>) {
      if (std::isnan(x)) return x;
      // A NaN bound makes every result NaN, as in PyTorch (min(max(x, lo), hi) propagating NaN).
      if ((p.has_a && std::isnan(p.a)) || (p.has_b && std::isnan(p.b))) return std::numeric_limits<M>::quiet_NaN();
    }
    if (p.has_a && x < static_cast<M>(p.a)) x = static_cast<M>(p.a);
    if (p.has_b && x > static_cast<M>(p.b)) x = static_cast<M>(p.b);
    return x;
  }
};


// ---------------- vectorised float32/bfloat16 kernels ----------------
// The row kernel kind of Op in simd/elementwise.h, where one exists.
template <class Op>
constexpr int kVecKind = -1;
#define LOOM_VEC_KIND(Op, Kind) \
  template <>                  \
  constexpr int kVecKind<Op> = static_cast<int>(simd::UnaryKind::Kind);
LOOM_VEC_KIND(NegOp, Neg)
LOOM_VEC_KIND(AbsOp, Abs)
LOOM_VEC_KIND(ExpOp, Exp)
LOOM_VEC_KIND(LogOp, Log)
LOOM_VEC_KIND(SqrtOp, Sqrt)
LOOM_VEC_KIND(RsqrtOp, Rsqrt)
LOOM_VEC_KIND(ReciprocalOp, Reciprocal)
LOOM_VEC_KIND(TanhOp, Tanh)
LOOM_VEC_KIND(SigmoidOp, Sigmoid)
LOOM_VEC_KIND(ErfOp, Erf)
LOOM_VEC_KIND(ReluOp, Relu)
LOOM_VEC_KIND(SiluOp, Silu)
LOOM_VEC_KIND(GeluOp, Gelu)
LOOM_VEC_KIND(GeluTanhOp, GeluTanh)
#undef LOOM_VEC_KIND

enum class Domain { Float, Numeric, All };

template <class T, class Op>
void unary_loop(const Tensor& out, const Tensor& in, const Params& params) {
  using M = opmath_t<T>;
  if constexpr ((std::is_same_v<T, float> || std::is_same_v<T, BFloat16>) && kVecKind<Op> >= 0) {
    if (const simd::ElementwiseKernels* k = simd::elementwise_kernels()) {
      simd::RowFn row = k->unary[kVecKind<Op>][static_cast<int>(simd::storage_of<T>)];
      for_each_element({&out, &in}, [row](char** p, const int64_t* s, int64_t n) { row(p, s, n, 0.0f); });
      return;
    }
  }
  for_each_element({&out, &in}, [&params](char** p, const int64_t* s, int64_t n) {
    if (s[0] == sizeof(T) && s[1] == sizeof(T)) {
      T* o = reinterpret_cast<T*>(p[0]);
      const T* x = reinterpret_cast<const T*>(p[1]);
      for (int64_t i = 0; i < n; ++i) o[i] = T(Op::template apply<M>(M(x[i]), params));
    } else {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<T*>(p[0] + i * s[0]) = T(Op::template apply<M>(M(*reinterpret_cast<const T*>(p[1] + i * s[1])), params));
    }
  });
}

template <class Op, Domain D>
std::vector<Tensor> unary_kernel_with(const KernelContext& c, const Params& params) {
  Tensor out = c.alloc(0);
  Tensor in = prepare(c.inputs[0], out.dtype(), out.sizes());
  if constexpr (D == Domain::Float)
    visit_floating(out.dtype(), "unary op", [&]<class T>() { unary_loop<T, Op>(out, in, params); });
  else
    visit_dtype(out.dtype(), [&]<class T>() {
      if constexpr (std::is_same_v<T, bool>) fail(ErrorKind::Type, "unary op: not supported for bool tensors");
      else unary_loop<T, Op>(out, in, params);
    });
  return {out};
}

template <class Op, Domain D>
std::vector<Tensor> unary_kernel(const KernelContext& c) {
  return unary_kernel_with<Op, D>(c, Params{});
}

// Rounding and sign keep integer (and bool) inputs as they are.
template <class Op>
std::vector<Tensor> rounding_kernel(const KernelContext& c) {
  if (!is_floating(c.inputs[0].dtype())) {
    if constexpr (std::is_same_v<Op, SignOp>) {
      if (c.inputs[0].dtype() != DType::Bool) return unary_kernel<Op, Domain::Numeric>(c);
    }
    return {clone(c.inputs[0])};
  }
  return unary_kernel<Op, Domain::Float>(c);
}

std::vector<Tensor> leaky_relu_kernel(const KernelContext& c) {
  return unary_kernel_with<LeakyReluOp, Domain::Float>(c, Params{c.attrs.get<double>("negative_slope")});
}
std::vector<Tensor> gelu_kernel(const KernelContext& c) {
  if (c.attrs.get<std::string>("approximate") == "tanh") return unary_kernel<GeluTanhOp, Domain::Float>(c);
  return unary_kernel<GeluOp, Domain::Float>(c);
}
std::vector<Tensor> softplus_kernel(const KernelContext& c) {
  return unary_kernel_with<SoftplusOp, Domain::Float>(c, Params{c.attrs.get<double>("beta"), c.attrs.get<double>("threshold")});
}
std::vector<Tensor> clamp_kernel(const KernelContext& c) {
  Params p;
  if ((p.has_a = c.attrs.has("min"))) p.a = c.attrs.get<Scalar>("min").to_double();
  if ((p.has_b = c.attrs.has("max"))) p.b = c.attrs.get<Scalar>("max").to_double();
  return unary_kernel_with<ClampOp, Domain::Numeric>(c, p);
}

// Predicates and logical_not/bitwise_not: bool or same-dtype outputs.
template <class F>
std::vector<Tensor> predicate_kernel(const KernelContext& c, F f) {
  Tensor out = c.alloc(0);
  const Tensor& in = c.inputs[0];
  visit_dtype(in.dtype(), [&]<class T>() {
    using M = opmath_t<T>;
    for_each_element({&out, &in}, [&f](char** p, const int64_t* s, int64_t n) {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<bool*>(p[0] + i * s[0]) = f(M(*reinterpret_cast<const T*>(p[1] + i * s[1])));
    });
  });
  return {out};
}

std::vector<Tensor> isnan_kernel(const KernelContext& c) {
  return predicate_kernel(c, [](auto x) { if constexpr (std::is_floating_point_v<decltype(x)>) return std::isnan(x); else return false; });
}
std::vector<Tensor> isinf_kernel(const KernelContext& c) {
  return predicate_kernel(c, [](auto x) { if constexpr (std::is_floating_point_v<decltype(x)>) return std::isinf(x); else return false; });
}
std::vector<Tensor> isfinite_kernel(const KernelContext& c) {
  return predicate_kernel(c, [](auto x) { if constexpr (std::is_floating_point_v<decltype(x)>) return std::isfinite(x); else return true; });
}
std::vector<Tensor> logical_not_kernel(const KernelContext& c) {
  return predicate_kernel(c, [](auto x) { return !static_cast<bool>(x); });
}
std::vector<Tensor> bitwise_not_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  const Tensor& in = c.inputs[0];
  visit_dtype(in.dtype(), [&]<class T>() {
    if constexpr (std::is_integral_v<T>) {
      for_each_element({&out, &in}, [](char** p, const int64_t* s, int64_t n) {
        for (int64_t i = 0; i < n; ++i) {
          T x = *reinterpret_cast<const T*>(p[1] + i * s[1]);
          if constexpr (std::is_same_v<T, bool>) *reinterpret_cast<T*>(p[0] + i * s[0]) = !x;
          else *reinterpret_cast<T*>(p[0] + i * s[0]) = static_cast<T>(~x);
        }
      });
    }
  });
  return {out};
}

}  // namespace

void register_unary_kernels(Registry& r) {
  constexpr DeviceType cpu = DeviceType::CPU;
  // Kernels built on unary_kernel_with write into KernelContext::out when given (x.exp_(), x.relu_()).
  constexpr bool kOut = true;
  r.set_kernel("neg", cpu, unary_kernel<NegOp, Domain::Numeric>, kOut);
  r.set_kernel("abs", cpu, unary_kernel<AbsOp, Domain::Numeric>, kOut);
  r.set_kernel("sign", cpu, rounding_kernel<SignOp>);
  r.set_kernel("floor", cpu, rounding_kernel<FloorOp>);
  r.set_kernel("ceil", cpu, rounding_kernel<CeilOp>);
  r.set_kernel("round", cpu, rounding_kernel<RoundOp>);
  r.set_kernel("trunc", cpu, rounding_kernel<TruncOp>);
  r.set_kernel("exp", cpu, unary_kernel<ExpOp, Domain::Float>, kOut);
  r.set_kernel("expm1", cpu, unary_kernel<Expm1Op, Domain::Float>, kOut);
  r.set_kernel("log", cpu, unary_kernel<LogOp, Domain::Float>, kOut);
  r.set_kernel("log1p", cpu, unary_kernel<Log1pOp, Domain::Float>, kOut);
  r.set_kernel("log2", cpu, unary_kernel<Log2Op, Domain::Float>, kOut);
  r.set_kernel("sqrt", cpu, unary_kernel<SqrtOp, Domain::Float>, kOut);
  r.set_kernel("rsqrt", cpu, unary_kernel<RsqrtOp, Domain::Float>, kOut);
  r.set_kernel("sin", cpu, unary_kernel<SinOp, Domain::Float>, kOut);
  r.set_kernel("cos", cpu, unary_kernel<CosOp, Domain::Float>, kOut);
  r.set_kernel("tanh", cpu, unary_kernel<TanhOp, Domain::Float>, kOut);
  r.set_kernel("sigmoid", cpu, unary_kernel<SigmoidOp, Domain::Float>, kOut);
  r.set_kernel("erf", cpu, unary_kernel<ErfOp, Domain::Float>, kOut);
  r.set_kernel("reciprocal", cpu, unary_kernel<ReciprocalOp, Domain::Float>, kOut);
  r.set_kernel("relu", cpu, unary_kernel<ReluOp, Domain::Numeric>, kOut);
  r.set_kernel("leaky_relu", cpu, leaky_relu_kernel, kOut);
  r.set_kernel("gelu", cpu, gelu_kernel, kOut);
  r.set_kernel("silu", cpu, unary_kernel<SiluOp, Domain::Float>, kOut);
  r.set_kernel("softplus", cpu, softplus_kernel, kOut);
  r.set_kernel("clamp", cpu, clamp_kernel, kOut);
  r.set_kernel("isnan", cpu, isnan_kernel);
  r.set_kernel("isinf", cpu, isinf_kernel);
  r.set_kernel("isfinite", cpu, isfinite_kernel);
  r.set_kernel("logical_not", cpu, logical_not_kernel);
  r.set_kernel("bitwise_not", cpu, bitwise_not_kernel);
}

}  // namespace loom::cpu
