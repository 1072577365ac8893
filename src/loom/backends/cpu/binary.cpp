// CPU kernels for the binary elementwise ops. Each op is a functor applied in the op's compute type
// (opmath: float for 16-bit floats); loops have a contiguous fast path the compiler vectorises, and float32
// has AVX2 and AVX-512 paths (simd/elementwise.h) for the arithmetic, comparisons, where, gelu_backward and
// relu_backward (bfloat16: the arithmetic and the two backwards, computed in float and rounded once).
// Arithmetic kernels honour KernelContext::out (in-place ops write straight into self).
#include <cmath>
#include <numbers>

#include "loom/backends/cpu/dispatch_dtype.h"
#include "loom/backends/cpu/kernel_util.h"
#include "loom/backends/cpu/loops.h"
#include "loom/backends/cpu/simd/cpu_features.h"
#include "loom/backends/cpu/simd/elementwise.h"
#include "loom/ops/promotion.h"

namespace loom::cpu {

namespace {

template <class T>
constexpr bool kIsFloat = std::is_floating_point_v<T>;

struct AddOp {
  template <class M> static M apply(M a, M b, M alpha) {
    if constexpr (std::is_same_v<M, bool>) return a || (alpha && b);
    else return wrap_add(a, wrap_mul(alpha, b));
  }
};
struct SubOp {
  template <class M> static M apply(M a, M b, M alpha) { return wrap_sub(a, wrap_mul(alpha, b)); }
};
struct MulOp {
  template <class M> static M apply(M a, M b, M) {
    if constexpr (std::is_same_v<M, bool>) return a && b;
    else return wrap_mul(a, b);
  }
};
struct TrueDivOp {
  template <class M> static M apply(M a, M b, M) { return a / b; }
};
// Integer division raises on a zero divisor instead of trapping; INT_MIN / -1 wraps like PyTorch.
template <class M>
void check_divisor(M b, const char* op) {
  if constexpr (!kIsFloat<M>)
    if (b == 0) fail(ErrorKind::Runtime, op, ": integer division by zero");
}
template <class M>
M int_divide(M a, M b) {
  if constexpr (std::is_signed_v<M>)
    if (b == -1) return static_cast<M>(-static_cast<std::make_unsigned_t<M>>(a));
  return a / b;
}
struct TruncDivOp {
  template <class M> static M apply(M a, M b, M) {
    if constexpr (kIsFloat<M>) return std::trunc(a / b);
    else {
      check_divisor(b, "div");
      return int_divide(a, b);
    }
  }
};
struct FloorDivOp {
  template <class M> static M apply(M a, M b, M) {
    if constexpr (kIsFloat<M>) {
      if (b == 0) return a / b;
      M mod = std::fmod(a, b);
      M div = (a - mod) / b;
      if (mod != 0 && (b < 0) != (mod < 0)) div -= 1;
      if (div == 0) return std::copysign(M(0), a / b);
      M floored = std::floor(div);
      if (div - floored > M(0.5)) floored += 1;
      return floored;
    } else {
      check_divisor(b, "floor_divide");
      M q = int_divide(a, b);
      if constexpr (std::is_signed_v<M>)
        if (b != -1 && a % b != 0 && ((a < 0) != (b < 0))) q -= 1;
      return q;
    }
  }
};
struct RemainderOp {
  template <class M> static M apply(M a, M b, M) {
    if constexpr (kIsFloat<M>) {
      M mod = std::fmod(a, b);
      if (mod != 0 && (b < 0) != (mod < 0)) mod += b;
      return mod;
    } else {
      check_divisor(b, "remainder");
      if constexpr (std::is_signed_v<M>)
        if (b == -1) return 0;
      M r = a % b;
      if constexpr (std::is_signed_v<M>)
        if (r != 0 && ((r < 0) != (b < 0))) r += b;
      return r;
    }
  }
};
struct PowOp {
  template <class M> static M apply(M a, M b, M) {
    if constexpr (kIsFloat<M>) return std::pow(a, b);
    else {
      if constexpr (std::is_signed_v<M>)
        if (b < 0) {
          if (a == 1) return 1;
          if (a == -1) return (b % 2 == 0) ? 1 : -1;
          fail(ErrorKind::Runtime, "pow: integers to negative integer powers are not allowed");
        }
      M result = 1, base = a;
      for (auto e = b; e > 0; e >>= 1) {  // square-and-multiply, wrapping like C
        if (e & 1) result = wrap_mul(result, base);
        base = wrap_mul(base, base);
      }
      return result;
    }
  }
};
struct MaximumOp {
  template <class M> static M apply(M a, M b, M) {
    if constexpr (kIsFloat<M>)
      if (std::isnan(a) || std::isnan(b)) return std::isnan(a) ? a : b;
    return a > b ? a : b;
  }
};
struct MinimumOp {
  template <class M> static M apply(M a, M b, M) {
    if constexpr (kIsFloat<M>)
      if (std::isnan(a) || std::isnan(b)) return std::isnan(a) ? a : b;
    return a < b ? a : b;
  }
};
// grad * d/dx [x * Phi(x)] = grad * (Phi(x) + x * phi(x)): the backward of exact GELU in one pass.
struct GeluBackwardOp {
  template <class M> static M apply(M grad, M x, M) {
    const M cdf = M(0.5) * (M(1) + std::erf(x * static_cast<M>(1.0 / std::numbers::sqrt2)));
    const M pdf = std::exp(M(-0.5) * x * x) * static_cast<M>(1.0 / std::sqrt(2.0 * std::numbers::pi));
    return grad * (cdf + x * pdf);
  }
};
// 0 where the relu output is <= 0, else grad (NaN outputs pass the gradient): PyTorch's threshold_backward, not
// grad * mask, so an infinite gradient where the mask is 0 gives 0 rather than NaN.
struct ReluBackwardOp {
  template <class M> static M apply(M grad, M y, M) { return y <= M(0) ? M(0) : grad; }
};
struct Atan2Op {
  template <class M> static M apply(M a, M b, M) { return std::atan2(a, b); }
};
struct BitAndOp {
  template <class M> static M apply(M a, M b, M) { return static_cast<M>(a & b); }
};
struct BitOrOp {
  template <class M> static M apply(M a, M b, M) { return static_cast<M>(a | b); }
};
struct BitXorOp {
  template <class M> static M apply(M a, M b, M) { return static_cast<M>(a ^ b); }
};

struct EqOp { template <class M> static bool apply(M a, M b) { return a == b; } };
struct NeOp { template <class M> static bool apply(M a, M b) { return a != b; } };
struct LtOp { template <class M> static bool apply(M a, M b) { return a < b; } };
struct LeOp { template <class M> static bool apply(M a, M b) { return a <= b; } };
struct GtOp { template <class M> static bool apply(M a, M b) { return a > b; } };
struct GeOp { template <class M> static bool apply(M a, M b) { return a >= b; } };
struct LogicalAndOp { template <class M> static bool apply(M a, M b) { return a && b; } };
struct LogicalOrOp { template <class M> static bool apply(M a, M b) { return a || b; } };
struct LogicalXorOp { template <class M> static bool apply(M a, M b) { return bool(a) != bool(b); } };


// ---------------- vectorised float32/bfloat16 kernels ----------------
// The row kernel kind of Op in simd/elementwise.h, where one exists: arithmetic (float32 and bfloat16) and
// comparisons (float32).
template <class Op>
constexpr int kVecKind = -1;
#define LOOM_VEC_KIND(Op, Family, Kind) \
  template <>                          \
  constexpr int kVecKind<Op> = static_cast<int>(simd::Family::Kind);
LOOM_VEC_KIND(AddOp, BinaryKind, Add)
LOOM_VEC_KIND(SubOp, BinaryKind, Sub)
LOOM_VEC_KIND(MulOp, BinaryKind, Mul)
LOOM_VEC_KIND(TrueDivOp, BinaryKind, Div)
LOOM_VEC_KIND(MaximumOp, BinaryKind, Maximum)
LOOM_VEC_KIND(MinimumOp, BinaryKind, Minimum)
LOOM_VEC_KIND(GeluBackwardOp, BinaryKind, GeluBackward)
LOOM_VEC_KIND(ReluBackwardOp, BinaryKind, ReluBackward)
LOOM_VEC_KIND(EqOp, CompareKind, Eq)
LOOM_VEC_KIND(NeOp, CompareKind, Ne)
LOOM_VEC_KIND(LtOp, CompareKind, Lt)
LOOM_VEC_KIND(LeOp, CompareKind, Le)
LOOM_VEC_KIND(GtOp, CompareKind, Gt)
LOOM_VEC_KIND(GeOp, CompareKind, Ge)
#undef LOOM_VEC_KIND

// out[i] = f(a[i], b[i]) over a row of n elements; fast paths for contiguous rows and a broadcast b.
template <class Out, class T, class F>
void binary_row(char** p, const int64_t* s, int64_t n, F f) {
  using M = opmath_t<T>;
  if (s[0] == sizeof(Out) && s[1] == sizeof(T) && s[2] == sizeof(T)) {
    Out* out = reinterpret_cast<Out*>(p[0]);
    const T* a = reinterpret_cast<const T*>(p[1]);
    const T* b = reinterpret_cast<const T*>(p[2]);
    for (int64_t i = 0; i < n; ++i) out[i] = Out(f(M(a[i]), M(b[i])));
  } else if (s[0] == sizeof(Out) && s[1] == sizeof(T) && s[2] == 0) {
    Out* out = reinterpret_cast<Out*>(p[0]);
    const T* a = reinterpret_cast<const T*>(p[1]);
    const M b = M(*reinterpret_cast<const T*>(p[2]));
    for (int64_t i = 0; i < n; ++i) out[i] = Out(f(M(a[i]), b));
  } else {
    for (int64_t i = 0; i < n; ++i)
      *reinterpret_cast<Out*>(p[0] + i * s[0]) =
          Out(f(M(*reinterpret_cast<const T*>(p[1] + i * s[1])), M(*reinterpret_cast<const T*>(p[2] + i * s[2]))));
  }
}

enum class Domain { All, NoBool, Float, Integral };

template <Domain D, class F>
void visit_domain(DType dtype, const char* op, F&& fn) {
  if constexpr (D == Domain::Float) visit_floating(dtype, op, fn);
  else if constexpr (D == Domain::NoBool) visit_numeric(dtype, op, fn);
  else if constexpr (D == Domain::Integral) {
    LOOM_CHECK(!is_floating(dtype), Type, op, ": not supported for dtype ", dtype_name(dtype));
    switch (dtype) {
      case DType::Bool: fn.template operator()<bool>(); break;
      case DType::UInt8: fn.template operator()<uint8_t>(); break;
      case DType::Int8: fn.template operator()<int8_t>(); break;
      case DType::Int16: fn.template operator()<int16_t>(); break;
      case DType::Int32: fn.template operator()<int32_t>(); break;
      default: fn.template operator()<int64_t>(); break;
    }
  } else visit_dtype(dtype, fn);
}

// Arithmetic: computed in the output dtype. `alpha` scales b for add/sub.
template <class Op, Domain D>
std::vector<Tensor> arith_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  const Shape& shape = out.sizes();
  Tensor a = prepare(c.inputs[0], out.dtype(), shape), b = prepare(c.inputs[1], out.dtype(), shape);
  Scalar alpha = c.attrs.get_or<Scalar>("alpha", Scalar(int64_t(1)));
  LOOM_CHECK(is_floating(out.dtype()) || !alpha.is_float(), Type, "add: for integral input tensors, argument alpha must not be a floating point number");
  visit_domain<D>(out.dtype(), c.attrs.has("alpha") ? "add" : "binary op", [&]<class T>() {
    using M = opmath_t<T>;
    M alpha_m;
    if constexpr (std::is_same_v<M, bool>) alpha_m = alpha.to_bool();
    else alpha_m = static_cast<M>(alpha.to_double());
    if constexpr ((std::is_same_v<T, float> || std::is_same_v<T, BFloat16>) && kVecKind<Op> >= 0) {
      if (const simd::ElementwiseKernels* k = simd::elementwise_kernels()) {
        simd::RowFn row = k->binary[kVecKind<Op>][static_cast<int>(simd::storage_of<T>)];
        const float alpha_f = alpha_m;
        for_each_element({&out, &a, &b}, [row, alpha_f](char** p, const int64_t* s, int64_t n) { row(p, s, n, alpha_f); });
        return;
      }
    }
    for_each_element({&out, &a, &b}, [alpha_m](char** p, const int64_t* s, int64_t n) {
      binary_row<T, T>(p, s, n, [alpha_m](M x, M y) { return Op::template apply<M>(x, y, alpha_m); });
    });
  });
  return {out};
}

std::vector<Tensor> div_kernel(const KernelContext& c) {
  const std::string& mode = c.attrs.get<std::string>("rounding_mode");
  if (mode.empty()) return arith_kernel<TrueDivOp, Domain::Float>(c);
  if (mode == "trunc") return arith_kernel<TruncDivOp, Domain::NoBool>(c);
  return arith_kernel<FloorDivOp, Domain::NoBool>(c);
}

// Comparisons: computed in the promoted input dtype, written as bool.
template <class Op>
std::vector<Tensor> compare_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  DType compute = result_type(c.inputs);
  Tensor a = prepare(c.inputs[0], compute, out.sizes()), b = prepare(c.inputs[1], compute, out.sizes());
  visit_dtype(compute, [&]<class T>() {
    using M = opmath_t<T>;
    if constexpr (std::is_same_v<T, float> && kVecKind<Op> >= 0) {
      if (const simd::ElementwiseKernels* k = simd::elementwise_kernels()) {
        simd::RowFn row = k->compare[kVecKind<Op>];
        for_each_element({&out, &a, &b}, [row](char** p, const int64_t* s, int64_t n) { row(p, s, n, 0.0f); });
        return;
      }
    }
    for_each_element({&out, &a, &b}, [](char** p, const int64_t* s, int64_t n) {
      binary_row<bool, T>(p, s, n, [](M x, M y) { return Op::template apply<M>(x, y); });
    });
  });
  return {out};
}

// Logical ops: each input reduced to bool first.
template <class Op>
std::vector<Tensor> logical_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  Tensor a = prepare(c.inputs[0], DType::Bool, out.sizes()), b = prepare(c.inputs[1], DType::Bool, out.sizes());
  for_each_element({&out, &a, &b}, [](char** p, const int64_t* s, int64_t n) {
    binary_row<bool, bool>(p, s, n, [](bool x, bool y) { return Op::template apply<bool>(x, y); });
  });
  return {out};
}

std::vector<Tensor> where_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  const Shape& shape = out.sizes();
  Tensor cond = prepare(c.inputs[0], DType::Bool, shape);
  Tensor a = prepare(c.inputs[1], out.dtype(), shape), b = prepare(c.inputs[2], out.dtype(), shape);
  visit_dtype(out.dtype(), [&]<class T>() {
    if constexpr (std::is_same_v<T, float>) {
      if (const simd::ElementwiseKernels* k = simd::elementwise_kernels()) {
        simd::RowFn row = k->where;
        for_each_element({&out, &cond, &a, &b}, [row](char** p, const int64_t* s, int64_t n) { row(p, s, n, 0.0f); });
        return;
      }
    }
    for_each_element({&out, &cond, &a, &b}, [](char** p, const int64_t* s, int64_t n) {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<T*>(p[0] + i * s[0]) = *reinterpret_cast<const bool*>(p[1] + i * s[1])
                                                     ? *reinterpret_cast<const T*>(p[2] + i * s[2])
                                                     : *reinterpret_cast<const T*>(p[3] + i * s[3]);
    });
  });
  return {out};
}

}  // namespace

void register_binary_kernels(Registry& r) {
  constexpr DeviceType cpu = DeviceType::CPU;
  // These write into KernelContext::out when given (in-place add_/sub_/mul_/div_): each element of the
  // output is read from the same position of the inputs before it is written.
  r.set_kernel("add", cpu, arith_kernel<AddOp, Domain::All>, /*writes_out=*/true);
  r.set_kernel("sub", cpu, arith_kernel<SubOp, Domain::NoBool>, /*writes_out=*/true);
  r.set_kernel("mul", cpu, arith_kernel<MulOp, Domain::All>, /*writes_out=*/true);
  r.set_kernel("div", cpu, div_kernel, /*writes_out=*/true);
  r.set_kernel("remainder", cpu, arith_kernel<RemainderOp, Domain::NoBool>);
  r.set_kernel("pow", cpu, arith_kernel<PowOp, Domain::NoBool>);
  r.set_kernel("maximum", cpu, arith_kernel<MaximumOp, Domain::All>);
  r.set_kernel("minimum", cpu, arith_kernel<MinimumOp, Domain::All>);
  r.set_kernel("atan2", cpu, arith_kernel<Atan2Op, Domain::Float>);
  r.set_kernel("gelu_backward", cpu, arith_kernel<GeluBackwardOp, Domain::Float>);
  r.set_kernel("relu_backward", cpu, arith_kernel<ReluBackwardOp, Domain::Float>);
  r.set_kernel("bitwise_and", cpu, arith_kernel<BitAndOp, Domain::Integral>);
  r.set_kernel("bitwise_or", cpu, arith_kernel<BitOrOp, Domain::Integral>);
  r.set_kernel("bitwise_xor", cpu, arith_kernel<BitXorOp, Domain::Integral>);
  r.set_kernel("eq", cpu, compare_kernel<EqOp>);
  r.set_kernel("ne", cpu, compare_kernel<NeOp>);
  r.set_kernel("lt", cpu, compare_kernel<LtOp>);
  r.set_kernel("le", cpu, compare_kernel<LeOp>);
  r.set_kernel("gt", cpu, compare_kernel<GtOp>);
  r.set_kernel("ge", cpu, compare_kernel<GeOp>);
  r.set_kernel("logical_and", cpu, logical_kernel<LogicalAndOp>);
  r.set_kernel("logical_or", cpu, logical_kernel<LogicalOrOp>);
  r.set_kernel("logical_xor", cpu, logical_kernel<LogicalXorOp>);
  r.set_kernel("where", cpu, where_kernel);
}

}  // namespace loom::cpu
