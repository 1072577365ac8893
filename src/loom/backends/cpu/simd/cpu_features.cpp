#include "loom/backends/cpu/simd/cpu_features.h"

#include <atomic>
#include <cstdlib>

#include "loom/core/error.h"

namespace loom::cpu {

namespace {

CpuCapability parse(const std::string& name) {
  if (name == "scalar" || name == "default") return CpuCapability::Scalar;
  if (name == "avx2") return CpuCapability::Avx2;
  if (name == "avx512") return CpuCapability::Avx512;
  fail(ErrorKind::Value, "set_cpu_capability: unknown capability '", name,
       "', expected 'scalar', 'avx2' or 'avx512'");
}

CpuCapability initial_capability() {
  CpuCapability best = detected_cpu_capability();
  const char* forced = std::getenv("LOOM_CPU_CAPABILITY");
  if (forced == nullptr || *forced == '\0') return best;
  CpuCapability wanted = CpuCapability::Scalar;
  try {
    wanted = parse(forced);
  } catch (const Error&) {
    return best;  // an unknown value in the environment must not stop the import; the setter reports it
  }
  return wanted < best ? wanted : best;
}

std::atomic<CpuCapability>& current() {
  static std::atomic<CpuCapability> capability{initial_capability()};
  return capability;
}

CpuFeatures detect_features() {
  CpuFeatures f;
#if defined(__x86_64__)
  f.f16c = __builtin_cpu_supports("f16c");
  f.avx512_bf16 = __builtin_cpu_supports("avx512bf16");
  f.avx512_vnni = __builtin_cpu_supports("avx512vnni");
  f.avx512_fp16 = __builtin_cpu_supports("avx512fp16");
  f.amx = __builtin_cpu_supports("amx-tile") && __builtin_cpu_supports("amx-bf16");
#endif
  return f;
}

}  // namespace

CpuCapability detected_cpu_capability() {
#if defined(__x86_64__)
  static const CpuCapability best = [] {
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return CpuCapability::Scalar;
    // __builtin_cpu_supports also checks that the OS saves the AVX-512 state (XCR0), via libgcc's detection.
    bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    return avx512 ? CpuCapability::Avx512 : CpuCapability::Avx2;
  }();
  return best;
#else
  return CpuCapability::Scalar;
#endif
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect_features();
  return features;
}

CpuCapability cpu_capability() { return current().load(std::memory_order_relaxed); }

void set_cpu_capability(const std::string& name) {
  CpuCapability wanted = parse(name);
  LOOM_CHECK(wanted <= detected_cpu_capability(), Value, "set_cpu_capability: this CPU does not support '", name,
             "' (best: ", cpu_capability_name(detected_cpu_capability()), ")");
  current().store(wanted, std::memory_order_relaxed);
}

std::string cpu_capability_name(CpuCapability capability) {
  switch (capability) {
    case CpuCapability::Avx512: return "avx512";
    case CpuCapability::Avx2: return "avx2";
    default: return "scalar";
  }
}

std::string cpu_capability_name() { return cpu_capability_name(cpu_capability()); }

}  // namespace loom::cpu
