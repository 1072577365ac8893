// The vectorised float32/bfloat16 elementwise row kernels, one table per instruction set (AVX2, AVX-512),
// built from one source (elementwise_impl.h) compiled once per instruction set in its own file
// (elementwise_avx2.cpp, elementwise_avx512.cpp; flags in CMakeLists.txt). unary.cpp, binary.cpp and copy.cpp
// take the table of the capability in use and fall back to their scalar loops where it has no entry.
#pragma once
#include <cstdint>

#include "loom/backends/cpu/simd/cpu_features.h"

namespace loom::cpu::simd {

enum class UnaryKind { Neg, Abs, Exp, Log, Sqrt, Rsqrt, Reciprocal, Tanh, Sigmoid, Erf, Relu, Silu, Gelu, GeluTanh, Count };
// Add and Sub scale b by `alpha` (fused: a + alpha b rounds once, as PyTorch's vectorised add; alpha = 1 gives
// exactly a + b). GeluBackward is (grad, x), ReluBackward (grad, relu output).
enum class BinaryKind { Add, Sub, Mul, Div, Maximum, Minimum, GeluBackward, ReluBackward, Count };
enum class CompareKind { Eq, Ne, Lt, Le, Gt, Ge, Count };
// Storage of the lanes: float32 or bfloat16 (computed in float, rounded to nearest even once).
enum class Storage { Float32, BFloat16, Count };
// The storage of a lane type T: float or loom::BFloat16.
template <class T>
constexpr Storage storage_of = sizeof(T) == 4 ? Storage::Float32 : Storage::BFloat16;

// One row of n elements in the for_each_element convention (data pointers + byte strides, operand 0 the
// output). Every layout (contiguous, broadcast operand, strided) gives the same bits for the same values.
using RowFn = void (*)(char** data, const int64_t* strides, int64_t n, float alpha);
// n contiguous elements converted.
using ConvertFn = void (*)(void* out, const void* in, int64_t n);

struct ElementwiseKernels {
  RowFn unary[static_cast<int>(UnaryKind::Count)][static_cast<int>(Storage::Count)];
  RowFn binary[static_cast<int>(BinaryKind::Count)][static_cast<int>(Storage::Count)];
  RowFn compare[static_cast<int>(CompareKind::Count)];  // float32 operands, bool output
  RowFn where;                                          // float32: out = cond (bool, operand 1) ? a : b
  ConvertFn float_to_bf16;
  ConvertFn bf16_to_float;
};

// The table of a capability (nullptr for Scalar or where the build has none), and of the capability in use.
const ElementwiseKernels* elementwise_kernels(CpuCapability capability);
inline const ElementwiseKernels* elementwise_kernels() { return elementwise_kernels(cpu_capability()); }

}  // namespace loom::cpu::simd
