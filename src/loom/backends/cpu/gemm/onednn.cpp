// oneDNN (Debian's libdnnl, OpenMP runtime) behind gemm/engine.h: dnnl_sgemm's AVX-512 JIT kernels for float32,
// and the matmul primitive for bfloat16 (brgemm kernels on AVX512_BF16; AMX tiles where the CPU has AMX-BF16 —
// oneDNN 2.6 enables AMX by default and asks Linux for the tile state itself).
//
// oneDNN runs its parallel regions on the calling thread's OpenMP pool (the same libgomp as loom's loops), sized
// by that thread's omp_get_max_threads(): engine.cpp sets it before each call. Inside a loom parallel region
// OpenMP does not nest, so a product there runs on its own thread.
#include <dnnl.hpp>

#include <omp.h>

#include <map>
#include <optional>
#include <tuple>

#include "loom/backends/cpu/gemm/libraries.h"
#include "loom/backends/cpu/gemm/onednn_context.h"
#include "loom/core/error.h"

namespace loom::cpu::gemm::onednn {

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& thread_stream() {
  thread_local dnnl::stream stream(cpu_engine());
  return stream;
}

namespace {

// A row-major m x n matrix with leading dimension ld, stored transposed when `t`.
dnnl::memory::desc matrix(int64_t rows, int64_t cols, bool t, int64_t ld, dnnl::memory::data_type type) {
  return dnnl::memory::desc({rows, cols}, type, t ? dnnl::memory::dims{1, ld} : dnnl::memory::dims{ld, 1});
}

// Everything a matmul primitive is specialised on, its thread count included (oneDNN blocks the work for the
// threads it sees at creation); primitives are cached per thread (creating one takes 50-100 us even when
// oneDNN's own cache hits).
using Key = std::tuple<bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float, float, DType, int>;
constexpr size_t kMaxCached = 128;

std::optional<dnnl::matmul> make_bf16_matmul(const Key& key) {
  auto [ta, tb, m, n, k, lda, ldb, ldc, alpha, beta, c_type, threads] = key;
  using dt = dnnl::memory::data_type;
  dnnl::primitive_attr attr;
  if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
  if (beta != 0.0f) {
    dnnl::post_ops ops;
    ops.append_sum(beta);
    attr.set_post_ops(ops);
  }
  try {
    dnnl::matmul::desc desc(matrix(m, k, ta, lda, dt::bf16), matrix(k, n, tb, ldb, dt::bf16),
                            matrix(m, n, false, ldc, c_type == DType::BFloat16 ? dt::bf16 : dt::f32));
    return dnnl::matmul(dnnl::matmul::primitive_desc(desc, attr, cpu_engine()));
  } catch (const dnnl::error&) {
    return std::nullopt;  // no implementation for this CPU or layout: the caller widens to float32
  }
}

}  // namespace

void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  dnnl_status_t status = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  LOOM_CHECK(status == dnnl_success, Runtime, "[matmul] oneDNN sgemm failed (status ", static_cast<int>(status),
             ") for ", m, "x", k, " @ ", k, "x", n);
}

bool gemm_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const uint16_t* a, int64_t lda,
               const uint16_t* b, int64_t ldb, float beta, DType c_type, void* c, int64_t ldc) {
  thread_local std::map<Key, std::optional<dnnl::matmul>> cache;
  Key key{ta, tb, m, n, k, lda, ldb, ldc, alpha, beta, c_type, omp_get_max_threads()};
  auto it = cache.find(key);
  if (it == cache.end()) {
    if (cache.size() >= kMaxCached) cache.clear();
    it = cache.emplace(key, make_bf16_matmul(key)).first;
  }
  if (!it->second) return false;
  using dt = dnnl::memory::data_type;
  dnnl::engine& engine = cpu_engine();
  dnnl::memory ma(matrix(m, k, ta, lda, dt::bf16), engine, const_cast<uint16_t*>(a));
  dnnl::memory mb(matrix(k, n, tb, ldb, dt::bf16), engine, const_cast<uint16_t*>(b));
  dnnl::memory mc(matrix(m, n, false, ldc, c_type == DType::BFloat16 ? dt::bf16 : dt::f32), engine, c);
  it->second->execute(thread_stream(), {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});
  thread_stream().wait();
  return true;
}

}  // namespace loom::cpu::gemm::onednn
