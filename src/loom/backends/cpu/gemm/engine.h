// The CPU matrix-product engine: every float32/float64/bfloat16 GEMM and GEMV of the CPU kernels goes through
// these functions, which pick the library at run time from the CPU's features (docs/dependencies.md, "BLAS
// choice"): OpenBLAS on AVX2-only CPUs, oneDNN on AVX-512 CPUs (where OpenBLAS runs its AVX2 kernels under
// OPENBLAS_CORETYPE=Haswell), and bfloat16 products natively (AVX512_BF16, AMX-BF16) through oneDNN's matmul
// primitive where the CPU has them. LOOM_GEMM=openblas|onednn|auto (read at start-up) or set_engine() override
// the choice; tests run both engines.
//
// All matrices are row-major with a leading dimension (BLAS conventions, lda >= columns of the stored matrix);
// `ta`/`tb` mean the stored matrix is op(A)^T. Products run on loom's thread count (set_num_threads), on one
// thread inside a SingleThreadScope or a loom parallel region.
//
// Room for later kernels: int8 products (VNNI/AMX) fit the same shape as gemm_bf16 (oneDNN's matmul primitive
// takes s8/u8 operands with scales and zero points; dnnl_gemm_u8s8s32 exists), int4 weights would be a new
// entry point here with the unpacking in the engine, not in the callers.
#pragma once
#include <cstdint>
#include <string>

#include "loom/core/dtype.h"

namespace loom::cpu::gemm {

enum class Engine { OpenBLAS, OneDNN };

// The engine float32 products use now: LOOM_GEMM at start-up, else the CPU's choice (oneDNN with AVX-512F).
Engine engine();
// "openblas" or "onednn".
std::string engine_name();
// "openblas", "onednn" or "auto" (the CPU's choice); anything else raises ValueError. Not while kernels run.
void set_engine(const std::string& name);
// Whether bfloat16 products run on bf16 hardware (oneDNN engine and a CPU with AVX512_BF16 or AMX-BF16);
// otherwise they widen to float32 and use sgemm, as on CPUs without bf16 instructions.
bool native_bf16();
// The CPU's bf16 features, for reports: "amx-bf16", "avx512-bf16" or "none".
std::string bf16_isa();

// C = alpha * op(A) @ op(B) + beta * C; A is m x k after op, B is k x n, C is m x n. beta = 0 never reads C.
void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
void dgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
           const double* b, int64_t ldb, double beta, double* c, int64_t ldc);
// y = alpha * op(M) x + beta * y for M (rows x cols, leading dimension ld); beta = 0 never reads y.
void sgemv(bool transpose, int64_t rows, int64_t cols, float alpha, const float* m, int64_t ld, const float* x,
           int64_t incx, float beta, float* y, int64_t incy);
void dgemv(bool transpose, int64_t rows, int64_t cols, double alpha, const double* m, int64_t ld, const double* x,
           int64_t incx, double beta, double* y, int64_t incy);

// C (dtype c_type: BFloat16 or Float32) = alpha * op(A) @ op(B) + beta * C for bfloat16 A and B (raw bits),
// accumulated in float32. Only when native_bf16(); returns false if the library cannot run this product (the
// caller then widens).
bool gemm_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const uint16_t* a, int64_t lda,
               const uint16_t* b, int64_t ldb, float beta, DType c_type, void* c, int64_t ldc);

// While any scope is alive, products run on the calling thread only: loom's threads each run their own (a batch
// of small matrices). Scopes nest and may be opened on several threads at once.
class SingleThreadScope {
 public:
  SingleThreadScope();
  ~SingleThreadScope();
  SingleThreadScope(const SingleThreadScope&) = delete;
  SingleThreadScope& operator=(const SingleThreadScope&) = delete;
};

// oneDNN sizes its parallel regions by the calling thread's OpenMP setting: sets it to loom's count, or to one
// thread inside a SingleThreadScope or a loom parallel region, or for work (float32 multiply-adds) too small to
// pay for waking the workers. Call before every oneDNN primitive (gemm, conv).
void prepare_onednn_threads(double work = 1e300);

// Follows loom's thread count from now on (called once when the CPU backend registers).
void init_threads();

}  // namespace loom::cpu::gemm
