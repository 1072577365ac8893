// Elementwise kernels: copy with dtype conversion, fill, arange, linspace, and the binary, comparison, where, unary
// and predicate families. One kernel per element type and family; the op is a run-time switch inside it (uniform
// across a launch, so it costs a predictable branch, not divergence) which keeps the build to a few dozen kernels
// instead of ops x dtypes. Semantics follow loom's CPU kernels (backends/cpu/binary.cpp, unary.cpp).
#include <cmath>

#include "device_util.cuh"

namespace loom_cuda {

namespace {

// ---- integer arithmetic that wraps modulo 2^bits, as PyTorch's results do (no signed overflow) ----
template <class T>
using wrap_unsigned_t = std::make_unsigned_t<std::common_type_t<T, unsigned>>;
template <class T>
__device__ __forceinline__ T wrap_add(T a, T b) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
    return static_cast<T>(static_cast<wrap_unsigned_t<T>>(a) + static_cast<wrap_unsigned_t<T>>(b));
  else return a + b;
}
template <class T>
__device__ __forceinline__ T wrap_sub(T a, T b) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
    return static_cast<T>(static_cast<wrap_unsigned_t<T>>(a) - static_cast<wrap_unsigned_t<T>>(b));
  else return a - b;
}
template <class T>
__device__ __forceinline__ T wrap_mul(T a, T b) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
    return static_cast<T>(static_cast<wrap_unsigned_t<T>>(a) * static_cast<wrap_unsigned_t<T>>(b));
  else return a * b;
}
template <class T>
__device__ __forceinline__ T wrap_neg(T a) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
    return static_cast<T>(wrap_unsigned_t<T>(0) - static_cast<wrap_unsigned_t<T>>(a));
  else return static_cast<T>(-a);
}

template <class M>
__device__ __forceinline__ bool is_nan(M x) {
  if constexpr (std::is_floating_point_v<M>) return x != x;
  else return false;
}

// Integer division by zero cannot raise on the device: it gives -1 (all bits set), as PyTorch's CUDA kernels do.
template <class M>
__device__ __forceinline__ M int_divide(M a, M b) {
  if (b == 0) return static_cast<M>(-1);
  if constexpr (std::is_signed_v<M>)
    if (b == -1) return wrap_neg(a);
  return a / b;
}

// ---- the binary functor: M is the compute type (opmath) ----
template <class M>
__device__ __forceinline__ M binary_apply(BinaryOp op, M a, M b, M alpha) {
  constexpr bool kFloat = std::is_floating_point_v<M>;
  constexpr bool kBool = std::is_same_v<M, bool>;
  switch (op) {
    case BinaryOp::Add:
      if constexpr (kBool) return a || (alpha && b);
      else return wrap_add(a, wrap_mul(alpha, b));
    case BinaryOp::Sub:
      if constexpr (kBool) return a;  // refused for bool on the host side
      else return wrap_sub(a, wrap_mul(alpha, b));
    case BinaryOp::Mul:
      if constexpr (kBool) return a && b;
      else return wrap_mul(a, b);
    case BinaryOp::Div:
      if constexpr (kFloat) return a / b;
      else return M(0);  // true division only runs on floats
    case BinaryOp::DivTrunc:
      if constexpr (kFloat) return trunc(a / b);
      else if constexpr (kBool) return a;
      else return int_divide(a, b);
    case BinaryOp::DivFloor:
      if constexpr (kFloat) {
        if (b == 0) return a / b;
        M mod = fmod(a, b);
        M div = (a - mod) / b;
        if (mod != 0 && (b < 0) != (mod < 0)) div -= 1;
        if (div == 0) return copysign(M(0), a / b);
        M floored = floor(div);
        if (div - floored > M(0.5)) floored += 1;
        return floored;
      } else if constexpr (kBool) {
        return a;
      } else {
        M q = int_divide(a, b);
        if constexpr (std::is_signed_v<M>)
          if (b != 0 && b != -1 && a % b != 0 && ((a < 0) != (b < 0))) q -= 1;
        return q;
      }
    case BinaryOp::Remainder:
      if constexpr (kFloat) {
        M mod = fmod(a, b);
        if (mod != 0 && (b < 0) != (mod < 0)) mod += b;
        return mod;
      } else if constexpr (kBool) {
        return a;
      } else {
        if (b == 0) return static_cast<M>(-1);
        if constexpr (std::is_signed_v<M>)
          if (b == -1) return 0;
        M r = a % b;
        if constexpr (std::is_signed_v<M>)
          if (r != 0 && ((r < 0) != (b < 0))) r += b;
        return r;
      }
    case BinaryOp::Pow:
      if constexpr (kFloat) {
        return pow(a, b);
      } else if constexpr (kBool) {
        return a || !b;
      } else {
        if constexpr (std::is_signed_v<M>)
          if (b < 0) return a == 1 ? M(1) : a == -1 ? ((b % 2 == 0) ? M(1) : M(-1)) : M(0);
        M result = 1, base = a;
        for (M e = b; e > 0; e >>= 1) {
          if (e & 1) result = wrap_mul(result, base);
          base = wrap_mul(base, base);
        }
        return result;
      }
    case BinaryOp::Maximum:
      if (is_nan(a) || is_nan(b)) return is_nan(a) ? a : b;
      return a > b ? a : b;
    case BinaryOp::Minimum:
      if (is_nan(a) || is_nan(b)) return is_nan(a) ? a : b;
      return a < b ? a : b;
    case BinaryOp::Atan2:
      if constexpr (kFloat) return atan2(a, b);
      else return M(0);
    case BinaryOp::BitAnd:
      if constexpr (std::is_integral_v<M>) return static_cast<M>(a & b);
      else return M(0);
    case BinaryOp::BitOr:
      if constexpr (std::is_integral_v<M>) return static_cast<M>(a | b);
      else return M(0);
    case BinaryOp::BitXor:
      if constexpr (std::is_integral_v<M>) return static_cast<M>(a ^ b);
      else return M(0);
    case BinaryOp::GeluBackward:
      if constexpr (kFloat) {
        const M cdf = M(0.5) * (M(1) + erf(b * static_cast<M>(0.70710678118654752440)));
        const M pdf = exp(M(-0.5) * b * b) * static_cast<M>(0.39894228040143267794);
        return a * (cdf + b * pdf);
      } else {
        return M(0);
      }
    case BinaryOp::ReluBackward:
      return b <= M(0) ? M(0) : a;
  }
  return M(0);
}

template <class T>
__device__ __forceinline__ T load(const char* base, int64_t offset) {
  return *reinterpret_cast<const T*>(base + offset);
}

// An input's value at an element: from memory, or the host number every element shares.
template <class T>
struct Operand {
  const char* data;
  T value;
  explicit Operand(Input in) : data(static_cast<const char*>(in.data)), value(scalar_as<T>(in.value)) {}
  __device__ __forceinline__ T at(int64_t offset) const { return data ? load<T>(data, offset) : value; }
};

template <class T>
__global__ void binary_kernel(BinaryOp op, OffsetCalculator<3> calc, int64_t n, char* out, Operand<T> a, Operand<T> b,
                              opmath_t<T> alpha) {
  using M = opmath_t<T>;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t o[3];
    calc.get(i, o);
    const M r = binary_apply<M>(op, M(a.at(o[1])), M(b.at(o[2])), alpha);
    *reinterpret_cast<T*>(out + o[0]) = convert<T>(r);
  }
}

template <class M>
__device__ __forceinline__ bool compare_apply(CompareOp op, M a, M b) {
  switch (op) {
    case CompareOp::Eq: return a == b;
    case CompareOp::Ne: return a != b;
    case CompareOp::Lt: return a < b;
    case CompareOp::Le: return a <= b;
    case CompareOp::Gt: return a > b;
    case CompareOp::Ge: return a >= b;
    case CompareOp::LogicalAnd: return a != M(0) && b != M(0);
    case CompareOp::LogicalOr: return a != M(0) || b != M(0);
    case CompareOp::LogicalXor: return (a != M(0)) != (b != M(0));
  }
  return false;
}

template <class T>
__global__ void compare_kernel(CompareOp op, OffsetCalculator<3> calc, int64_t n, char* out, Operand<T> a,
                               Operand<T> b) {
  using M = opmath_t<T>;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t o[3];
    calc.get(i, o);
    *reinterpret_cast<bool*>(out + o[0]) = compare_apply<M>(op, M(a.at(o[1])), M(b.at(o[2])));
  }
}

template <class T>
__global__ void where_kernel(OffsetCalculator<4> calc, int64_t n, char* out, Operand<bool> cond, Operand<T> a,
                             Operand<T> b) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t o[4];
    calc.get(i, o);
    *reinterpret_cast<T*>(out + o[0]) = cond.at(o[1]) ? a.at(o[2]) : b.at(o[3]);
  }
}

template <class M>
__device__ __forceinline__ M unary_apply(UnaryOp op, M x, const UnaryParams& p) {
  constexpr bool kFloat = std::is_floating_point_v<M>;
  switch (op) {
    case UnaryOp::Neg: return wrap_neg(x);
    case UnaryOp::Abs: return x < M(0) ? wrap_neg(x) : x;
    case UnaryOp::Sign: return static_cast<M>((M(0) < x) - (x < M(0)));
    case UnaryOp::Relu: return (x > M(0) || is_nan(x)) ? x : M(0);
    case UnaryOp::Clamp:
      if constexpr (kFloat) {
        if (is_nan(x)) return x;
        if ((p.has_a && p.a != p.a) || (p.has_b && p.b != p.b)) return M(NAN);
      }
      if (p.has_a && x < static_cast<M>(p.a)) x = static_cast<M>(p.a);
      if (p.has_b && x > static_cast<M>(p.b)) x = static_cast<M>(p.b);
      return x;
    case UnaryOp::BitwiseNot:
      if constexpr (std::is_same_v<M, bool>) return !x;
      else if constexpr (std::is_integral_v<M>) return static_cast<M>(~x);
      else return x;
    default: break;
  }
  if constexpr (kFloat) {
    switch (op) {
      case UnaryOp::Floor: return floor(x);
      case UnaryOp::Ceil: return ceil(x);
      case UnaryOp::Round: return rint(x);  // half to even, like torch.round
      case UnaryOp::Trunc: return trunc(x);
      case UnaryOp::Exp: return exp(x);
      case UnaryOp::Expm1: return expm1(x);
      case UnaryOp::Log: return log(x);
      case UnaryOp::Log1p: return log1p(x);
      case UnaryOp::Log2: return log2(x);
      case UnaryOp::Sqrt: return sqrt(x);
      case UnaryOp::Rsqrt: return M(1) / sqrt(x);
      case UnaryOp::Sin: return sin(x);
      case UnaryOp::Cos: return cos(x);
      case UnaryOp::Tanh: return tanh(x);
      case UnaryOp::Sigmoid: return M(1) / (M(1) + exp(-x));
      case UnaryOp::Erf: return erf(x);
      case UnaryOp::Reciprocal: return M(1) / x;
      case UnaryOp::LeakyRelu: return x > M(0) ? x : static_cast<M>(x * static_cast<M>(p.a));
      case UnaryOp::Gelu: return M(0.5) * x * (M(1) + erf(x * static_cast<M>(0.70710678118654752440)));
      case UnaryOp::GeluTanh:
        return M(0.5) * x * (M(1) + tanh(static_cast<M>(0.79788456080286535588) * (x + M(0.044715) * x * x * x)));
      case UnaryOp::Silu: return x / (M(1) + exp(-x));
      case UnaryOp::Softplus:
        return x * static_cast<M>(p.a) > static_cast<M>(p.b) ? x
                                                               : static_cast<M>(log1p(exp(x * static_cast<M>(p.a))) /
                                                                                static_cast<M>(p.a));
      default: break;
    }
  }
  return x;
}

template <class T>
__global__ void unary_kernel(UnaryOp op, OffsetCalculator<2> calc, int64_t n, char* out, const char* in,
                             UnaryParams p) {
  using M = opmath_t<T>;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t o[2];
    calc.get(i, o);
    *reinterpret_cast<T*>(out + o[0]) = convert<T>(unary_apply<M>(op, M(load<T>(in, o[1])), p));
  }
}

template <class T>
__global__ void predicate_kernel(PredicateOp op, OffsetCalculator<2> calc, int64_t n, char* out, const char* in) {
  using M = opmath_t<T>;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t o[2];
    calc.get(i, o);
    const M x = M(load<T>(in, o[1]));
    bool r = false;
    switch (op) {
      case PredicateOp::IsNan: r = is_nan(x); break;
      case PredicateOp::IsInf:
        if constexpr (std::is_floating_point_v<M>) r = isinf(x);
        break;
      case PredicateOp::IsFinite:
        if constexpr (std::is_floating_point_v<M>) r = isfinite(x);
        else r = true;
        break;
      case PredicateOp::LogicalNot: r = x == M(0); break;
    }
    *reinterpret_cast<bool*>(out + o[0]) = r;
  }
}

// Reads one element of run-time type `type` and converts it to To.
template <class To>
__device__ __forceinline__ To load_converted(const char* p, ScalarType type) {
  switch (type) {
    case ScalarType::Bool: return convert<To>(*reinterpret_cast<const bool*>(p));
    case ScalarType::UInt8: return convert<To>(*reinterpret_cast<const uint8_t*>(p));
    case ScalarType::Int8: return convert<To>(*reinterpret_cast<const int8_t*>(p));
    case ScalarType::Int16: return convert<To>(*reinterpret_cast<const int16_t*>(p));
    case ScalarType::Int32: return convert<To>(*reinterpret_cast<const int32_t*>(p));
    case ScalarType::Int64: return convert<To>(*reinterpret_cast<const int64_t*>(p));
    case ScalarType::Float16: return convert<To>(*reinterpret_cast<const half*>(p));
    case ScalarType::BFloat16: return convert<To>(*reinterpret_cast<const bfloat16*>(p));
    case ScalarType::Float32: return convert<To>(*reinterpret_cast<const float*>(p));
    case ScalarType::Float64: return convert<To>(*reinterpret_cast<const double*>(p));
  }
  return To();
}

template <class To>
__global__ void copy_kernel(OffsetCalculator<2> calc, int64_t n, char* out, const char* src, ScalarType src_type) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t o[2];
    calc.get(i, o);
    *reinterpret_cast<To*>(out + o[0]) = load_converted<To>(src + o[1], src_type);
  }
}

template <class T>
__global__ void fill_kernel(OffsetCalculator<1> calc, int64_t n, char* out, T value) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t o[1];
    calc.get(i, o);
    *reinterpret_cast<T*>(out + o[0]) = value;
  }
}

template <class T>
__global__ void arange_kernel(T* out, int64_t n, HostScalar start, HostScalar step) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    if constexpr (std::is_integral_v<T>) {
      // start + i * step is in range, but i * step alone may not fit int64: compute modulo 2^64.
      const uint64_t v = static_cast<uint64_t>(start.i) + static_cast<uint64_t>(i) * static_cast<uint64_t>(step.i);
      out[i] = static_cast<T>(static_cast<int64_t>(v));
    } else {
      // No fused multiply-add: the CPU computes start + i * step with two roundings.
      out[i] = convert<T>(static_cast<opmath_t<T>>(__dadd_rn(start.f, __dmul_rn(static_cast<double>(i), step.f))));
    }
  }
}

template <class T>
__global__ void linspace_kernel(T* out, int64_t n, double start, double end, double step) {
  const int64_t half_n = n / 2;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const double v = i < half_n ? __dadd_rn(start, __dmul_rn(step, static_cast<double>(i)))
                                : __dsub_rn(end, __dmul_rn(step, static_cast<double>(n - 1 - i)));
    if constexpr (std::is_integral_v<T>) out[i] = static_cast<T>(v);
    else out[i] = convert<T>(static_cast<opmath_t<T>>(v));
  }
}

}  // namespace

void launch_copy(ScalarType out_type, ScalarType src_type, const Geometry& g, void* out, const void* src,
                 StreamHandle stream) {
  if (g.numel == 0) return;
  visit_type(out_type, [&]<class T>() {
    copy_kernel<T><<<grid_for(g.numel), kBlock, 0, as_stream(stream)>>>(
        OffsetCalculator<2>(g), g.numel, static_cast<char*>(out), static_cast<const char*>(src), src_type);
  });
}

void launch_fill(ScalarType type, const Geometry& g, void* out, HostScalar value, StreamHandle stream) {
  if (g.numel == 0) return;
  visit_type(type, [&]<class T>() {
    fill_kernel<T><<<grid_for(g.numel), kBlock, 0, as_stream(stream)>>>(OffsetCalculator<1>(g), g.numel,
                                                                          static_cast<char*>(out), scalar_as<T>(value));
  });
}

void launch_arange(ScalarType type, void* out, int64_t n, HostScalar start, HostScalar step, StreamHandle stream) {
  if (n == 0) return;
  visit_type(type, [&]<class T>() {
    arange_kernel<T><<<grid_for(n), kBlock, 0, as_stream(stream)>>>(static_cast<T*>(out), n, start, step);
  });
}

void launch_linspace(ScalarType type, void* out, int64_t n, double start, double end, StreamHandle stream) {
  if (n == 0) return;
  const double step = n > 1 ? (end - start) / static_cast<double>(n - 1) : 0.0;
  visit_type(type, [&]<class T>() {
    linspace_kernel<T><<<grid_for(n), kBlock, 0, as_stream(stream)>>>(static_cast<T*>(out), n, start, end, step);
  });
}

void launch_binary(BinaryOp op, ScalarType type, const Geometry& g, void* out, Input a, Input b, HostScalar alpha,
                   StreamHandle stream) {
  if (g.numel == 0) return;
  visit_type(type, [&]<class T>() {
    using M = opmath_t<T>;
    M alpha_m;
    if constexpr (std::is_integral_v<M>) alpha_m = scalar_as<M>(alpha);
    else alpha_m = static_cast<M>(alpha.f);
    binary_kernel<T><<<grid_for(g.numel), kBlock, 0, as_stream(stream)>>>(
        op, OffsetCalculator<3>(g), g.numel, static_cast<char*>(out), Operand<T>(a), Operand<T>(b), alpha_m);
  });
}

void launch_compare(CompareOp op, ScalarType type, const Geometry& g, void* out, Input a, Input b,
                    StreamHandle stream) {
  if (g.numel == 0) return;
  visit_type(type, [&]<class T>() {
    compare_kernel<T><<<grid_for(g.numel), kBlock, 0, as_stream(stream)>>>(
        op, OffsetCalculator<3>(g), g.numel, static_cast<char*>(out), Operand<T>(a), Operand<T>(b));
  });
}

void launch_where(ScalarType type, const Geometry& g, void* out, Input cond, Input a, Input b, StreamHandle stream) {
  if (g.numel == 0) return;
  visit_type(type, [&]<class T>() {
    where_kernel<T><<<grid_for(g.numel), kBlock, 0, as_stream(stream)>>>(
        OffsetCalculator<4>(g), g.numel, static_cast<char*>(out), Operand<bool>(cond), Operand<T>(a), Operand<T>(b));
  });
}

void launch_unary(UnaryOp op, ScalarType type, const Geometry& g, void* out, const void* in, UnaryParams params,
                  StreamHandle stream) {
  if (g.numel == 0) return;
  visit_type(type, [&]<class T>() {
    unary_kernel<T><<<grid_for(g.numel), kBlock, 0, as_stream(stream)>>>(
        op, OffsetCalculator<2>(g), g.numel, static_cast<char*>(out), static_cast<const char*>(in), params);
  });
}

void launch_predicate(PredicateOp op, ScalarType type, const Geometry& g, void* out, const void* in,
                      StreamHandle stream) {
  if (g.numel == 0) return;
  visit_type(type, [&]<class T>() {
    predicate_kernel<T><<<grid_for(g.numel), kBlock, 0, as_stream(stream)>>>(
        op, OffsetCalculator<2>(g), g.numel, static_cast<char*>(out), static_cast<const char*>(in));
  });
}

}  // namespace loom_cuda
