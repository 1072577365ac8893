// Which vector instruction set the CPU kernels use, chosen once at run time from the CPU's features, so one
// build runs on any x86-64 (and elsewhere) and takes the AVX2 loops where the CPU has them.
//
// LOOM_CPU_CAPABILITY=scalar (read at start-up) or set_cpu_capability() force the portable loops: the tests run
// every kernel both ways, as PyTorch's ATEN_CPU_CAPABILITY does.
#pragma once
#include <string>

namespace loom::cpu {

enum class CpuCapability { Scalar, Avx2 };

// The best capability this CPU supports (AVX2 needs AVX2 and FMA).
CpuCapability detected_cpu_capability();
// The capability kernels use now: the detected one unless lowered by LOOM_CPU_CAPABILITY or set_cpu_capability.
CpuCapability cpu_capability();
// "scalar" or "avx2"; asking for more than the CPU has raises ValueError. Not for use while kernels run.
void set_cpu_capability(const std::string& name);
std::string cpu_capability_name();

inline bool use_avx2() { return cpu_capability() == CpuCapability::Avx2; }

}  // namespace loom::cpu
