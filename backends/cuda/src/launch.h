// The interface between the loom side of the CUDA backend (*.cpp: KernelContext, dtypes, attributes) and its device
// code (*.cu: kernels and their launchers). It uses no loom or CUDA header, so nvcc compiles the kernels without
// loom's C++20 headers and the host side without CUDA's device headers; what crosses is pointers, geometry and enums.
#pragma once
#include <cstddef>
#include <cstdint>

namespace loom_cuda {

// Element types, in loom::DType's order (kernels.cpp checks the correspondence with static_asserts).
enum class ScalarType : int { Bool, UInt8, Int8, Int16, Int32, Int64, Float16, BFloat16, Float32, Float64 };

// The strided iteration space of an elementwise loop: `ndim` coalesced dims (outermost first) and, per operand
// (operand 0 is the output), the byte stride of each dim. A broadcast input has stride 0 where it repeats.
inline constexpr int kMaxDims = 8;
inline constexpr int kMaxOperands = 4;
struct Geometry {
  int ndim = 0;
  int64_t numel = 1;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[kMaxOperands][kMaxDims] = {};
};

// A host number used as an operand (a 0-d CPU tensor such as the 0.5 of x * 0.5, a fill value, an attribute): both
// spellings are kept, so int64 operands stay exact and float operands keep their fraction.
struct HostScalar {
  double f = 0;
  int64_t i = 0;
};

// An elementwise input: device memory at `data`, or the host number `value` when data is null.
struct Input {
  const void* data = nullptr;
  HostScalar value;
};

using StreamHandle = void*;  // a cudaStream_t

enum class BinaryOp : int {
  Add, Sub, Mul, Div, DivTrunc, DivFloor, Remainder, Pow, Maximum, Minimum, Atan2, BitAnd, BitOr, BitXor,
  GeluBackward, ReluBackward
};
enum class CompareOp : int { Eq, Ne, Lt, Le, Gt, Ge, LogicalAnd, LogicalOr, LogicalXor };
enum class UnaryOp : int {
  Neg, Abs, Sign, Floor, Ceil, Round, Trunc, Exp, Expm1, Log, Log1p, Log2, Sqrt, Rsqrt, Sin, Cos, Tanh, Sigmoid, Erf,
  Reciprocal, Relu, LeakyRelu, Gelu, GeluTanh, Silu, Softplus, Clamp, BitwiseNot
};
enum class PredicateOp : int { IsNan, IsInf, IsFinite, LogicalNot };
enum class ReduceOp : int { Sum, Prod, Max, Min };

// Parameters some unary ops read: leaky_relu's slope (a), softplus's beta (a) and threshold (b), clamp's bounds.
struct UnaryParams {
  double a = 0, b = 0;
  bool has_a = false, has_b = false;
};

// ---- loops.cu ----
// out = convert(src) over `g` (operands: out, src).
void launch_copy(ScalarType out_type, ScalarType src_type, const Geometry& g, void* out, const void* src,
                 StreamHandle stream);
// Every element of out (operand 0 of g) set to `value` converted to out_type.
void launch_fill(ScalarType type, const Geometry& g, void* out, HostScalar value, StreamHandle stream);
// out[i] = start + i * step (integers modulo 2^64, as the CPU kernel), contiguous.
void launch_arange(ScalarType type, void* out, int64_t n, HostScalar start, HostScalar step, StreamHandle stream);
// Evenly spaced from both ends, as PyTorch's linspace.
void launch_linspace(ScalarType type, void* out, int64_t n, double start, double end, StreamHandle stream);
// out = op(a, b) in `type` (operands: out, a, b); alpha scales b for add/sub.
void launch_binary(BinaryOp op, ScalarType type, const Geometry& g, void* out, Input a, Input b, HostScalar alpha,
                   StreamHandle stream);
// out (bool) = op(a, b), compared in `type`.
void launch_compare(CompareOp op, ScalarType type, const Geometry& g, void* out, Input a, Input b,
                    StreamHandle stream);
// out = cond ? a : b (operands: out, cond (bool), a, b).
void launch_where(ScalarType type, const Geometry& g, void* out, Input cond, Input a, Input b, StreamHandle stream);
void launch_unary(UnaryOp op, ScalarType type, const Geometry& g, void* out, const void* in, UnaryParams params,
                  StreamHandle stream);
// out (bool) = op(in), in of `type`.
void launch_predicate(PredicateOp op, ScalarType type, const Geometry& g, void* out, const void* in,
                      StreamHandle stream);

// ---- reduce.cu ----
// A contiguous input seen as [outer, reduced, inner], reduced over the middle dim into a contiguous [outer, inner].
void launch_reduce(ReduceOp op, ScalarType type, const void* in, void* out, int64_t outer, int64_t reduced,
                   int64_t inner, StreamHandle stream);
// softmax / log_softmax along the middle dim of a contiguous [outer, reduced, inner] (floating types).
void launch_softmax(bool log, ScalarType type, const void* in, void* out, int64_t outer, int64_t reduced,
                    int64_t inner, StreamHandle stream);

// ---- random.cu ----
// Element i uses Philox-4x32-10 block (offset + i / 2) of key `seed`, as loom's CPU kernels (core/generator.h).
struct PhiloxState {
  uint64_t seed = 0, offset = 0;
};
void launch_uniform(ScalarType type, void* out, int64_t n, PhiloxState s, double low, double high, StreamHandle stream);
void launch_normal(ScalarType type, void* out, int64_t n, PhiloxState s, double mean, double std, StreamHandle stream);
void launch_randint(ScalarType type, void* out, int64_t n, PhiloxState s, int64_t low, uint64_t range,
                    StreamHandle stream);
// out[i] = uniform(i) < p[i] (p contiguous, of the same floating type).
void launch_bernoulli(ScalarType type, void* out, const void* p, int64_t n, PhiloxState s, StreamHandle stream);

// Raises (as loom::Error, through the host side) when the last launch failed; defined in runtime.cpp.
void check_launch(const char* op);

}  // namespace loom_cuda
