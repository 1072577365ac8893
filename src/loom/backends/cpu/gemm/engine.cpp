// The engine choice of gemm/engine.h and the calls that route each product to its library.
#include "loom/backends/cpu/gemm/engine.h"

#include <omp.h>

#include <atomic>
#include <cstdlib>

#include "loom/backends/cpu/gemm/libraries.h"
#include "loom/core/error.h"
#include "loom/core/parallel.h"

namespace loom::cpu::gemm {

namespace {

bool cpu_has(const char* feature) {
#if defined(__x86_64__)
  // __builtin_cpu_supports needs a literal per feature (gcc 12 knows "avx512bf16" and "amx-bf16").
  static const bool avx512f = __builtin_cpu_supports("avx512f");
  static const bool avx512bf16 = __builtin_cpu_supports("avx512bf16");
  static const bool amx_bf16 = __builtin_cpu_supports("amx-bf16");
  std::string f = feature;
  return f == "avx512f" ? avx512f : f == "avx512bf16" ? avx512bf16 : f == "amx-bf16" ? amx_bf16 : false;
#else
  (void)feature;
  return false;
#endif
}

// Measured (docs/dependencies.md): with AVX-512, oneDNN's JIT sgemm; with AVX2 only, OpenBLAS.
Engine cpu_choice() { return cpu_has("avx512f") ? Engine::OneDNN : Engine::OpenBLAS; }

bool parse(const std::string& name, Engine& out) {
  if (name == "openblas") out = Engine::OpenBLAS;
  else if (name == "onednn") out = Engine::OneDNN;
  else if (name == "auto") out = cpu_choice();
  else return false;
  return true;
}

Engine initial_engine() {
  Engine chosen = cpu_choice();
  const char* forced = std::getenv("LOOM_GEMM");
  if (forced != nullptr && *forced != '\0') parse(forced, chosen);  // an unknown value must not stop the import
  return chosen;
}

std::atomic<Engine>& current() {
  static std::atomic<Engine> engine{initial_engine()};
  return engine;
}

std::atomic<int> g_single_thread_scopes{0};

// Below this much work (multiply-adds of a float32 product) a oneDNN call runs on the calling thread: waking
// loom's passive OpenMP workers costs ~50-70 us on the 2-vCPU Sapphire Rapids, so a 64^3 product took 78 us on
// two threads against 4.6 us on one, and 256^3 (0.2 ms on one thread) gained nothing from a second.
constexpr double kOneThreadWork = double(1 << 24);
// bf16 products on AMX/AVX512_BF16 run roughly this many times faster per multiply-add than float32.
constexpr double kBf16Speedup = 4.0;

template <class T>
void clear_y(bool transpose, int64_t rows, int64_t cols, T* y, int64_t incy) {
  // BLAS may compute beta * y even for beta = 0 (some OpenBLAS versions let a NaN in y through).
  int64_t len = transpose ? cols : rows;
  for (int64_t i = 0; i < len; ++i) y[i * incy] = T(0);
}

}  // namespace

void prepare_onednn_threads(double work) {
  bool one = g_single_thread_scopes.load() > 0 || in_parallel_region() || work < kOneThreadWork;
  int want = one ? 1 : get_num_threads();
  if (omp_get_max_threads() != want) omp_set_num_threads(want);
}

Engine engine() { return current().load(std::memory_order_relaxed); }

std::string engine_name() { return engine() == Engine::OneDNN ? "onednn" : "openblas"; }

void set_engine(const std::string& name) {
  Engine wanted;
  LOOM_CHECK(parse(name, wanted), Value, "set_gemm_engine: unknown engine '", name,
             "', expected 'openblas', 'onednn' or 'auto'");
  current().store(wanted, std::memory_order_relaxed);
}

bool native_bf16() { return engine() == Engine::OneDNN && (cpu_has("avx512bf16") || cpu_has("amx-bf16")); }

std::string bf16_isa() {
  return cpu_has("amx-bf16") ? "amx-bf16" : cpu_has("avx512bf16") ? "avx512-bf16" : "none";
}

void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (engine() == Engine::OneDNN) {
    prepare_onednn_threads(static_cast<double>(m) * n * k);
    onednn::sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  } else {
    openblas::sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
}

void dgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
           const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  openblas::dgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);  // oneDNN has no float64 GEMM
}

// Matrix-vector products are memory-bound: OpenBLAS's AVX2 kernels on every CPU.
void sgemv(bool transpose, int64_t rows, int64_t cols, float alpha, const float* m, int64_t ld, const float* x,
           int64_t incx, float beta, float* y, int64_t incy) {
  if (beta == 0.0f) clear_y(transpose, rows, cols, y, incy);
  openblas::sgemv(transpose, rows, cols, alpha, m, ld, x, incx, beta, y, incy);
}

void dgemv(bool transpose, int64_t rows, int64_t cols, double alpha, const double* m, int64_t ld, const double* x,
           int64_t incx, double beta, double* y, int64_t incy) {
  if (beta == 0.0) clear_y(transpose, rows, cols, y, incy);
  openblas::dgemv(transpose, rows, cols, alpha, m, ld, x, incx, beta, y, incy);
}

bool gemm_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const uint16_t* a, int64_t lda,
               const uint16_t* b, int64_t ldb, float beta, DType c_type, void* c, int64_t ldc) {
  if (!native_bf16()) return false;
  prepare_onednn_threads(static_cast<double>(m) * n * k / kBf16Speedup);
  return onednn::gemm_bf16(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c_type, c, ldc);
}

// OpenBLAS reads its count on every call; setting it only stores a number once its pool exists. Scopes are
// counted so that callers on several threads at once restore loom's count only when the last one ends.
SingleThreadScope::SingleThreadScope() {
  if (g_single_thread_scopes.fetch_add(1) == 0) openblas::set_threads(1);
}

SingleThreadScope::~SingleThreadScope() {
  if (g_single_thread_scopes.fetch_sub(1) == 1) openblas::set_threads(get_num_threads());
}

void init_threads() {
  add_num_threads_listener([](int n) {
    if (g_single_thread_scopes.load() == 0) openblas::set_threads(n);
  });
  openblas::set_threads(get_num_threads());
}

}  // namespace loom::cpu::gemm
