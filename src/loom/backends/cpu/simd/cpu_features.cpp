#include "loom/backends/cpu/simd/cpu_features.h"

#include <atomic>
#include <cstdlib>

#include "loom/core/error.h"

namespace loom::cpu {

namespace {

CpuCapability parse(const std::string& name) {
  if (name == "scalar" || name == "default") return CpuCapability::Scalar;
  if (name == "avx2") return CpuCapability::Avx2;
  fail(ErrorKind::Value, "set_cpu_capability: unknown capability '", name, "', expected 'scalar' or 'avx2'");
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

}  // namespace

CpuCapability detected_cpu_capability() {
#if defined(__x86_64__)
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return avx2 ? CpuCapability::Avx2 : CpuCapability::Scalar;
#else
  return CpuCapability::Scalar;
#endif
}

CpuCapability cpu_capability() { return current().load(std::memory_order_relaxed); }

void set_cpu_capability(const std::string& name) {
  CpuCapability wanted = parse(name);
  LOOM_CHECK(wanted <= detected_cpu_capability(), Value, "set_cpu_capability: this CPU does not support '", name,
             "' (best: ", detected_cpu_capability() == CpuCapability::Avx2 ? "avx2" : "scalar", ")");
  current().store(wanted, std::memory_order_relaxed);
}

std::string cpu_capability_name() { return cpu_capability() == CpuCapability::Avx2 ? "avx2" : "scalar"; }

}  // namespace loom::cpu
