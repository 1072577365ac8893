// Which vector instruction set the CPU kernels use, chosen once at run time from the CPU's features, so one
// build runs on any x86-64 (and elsewhere) and takes the AVX2 or AVX-512 loops where the CPU has them.
//
// LOOM_CPU_CAPABILITY=scalar|avx2|avx512 (read at start-up) or set_cpu_capability() lower the path in use: the
// tests run every kernel under each path the machine has, as PyTorch's ATEN_CPU_CAPABILITY does.
#pragma once
#include <string>

namespace loom::cpu {

// Ordered: each capability includes the ones before it.
enum class CpuCapability { Scalar, Avx2, Avx512 };

// The best capability this CPU supports: AVX2 needs AVX2 and FMA; AVX-512 needs those and AVX-512 F, BW, DQ
// and VL (Intel since Skylake-SP, AMD since Zen 4).
CpuCapability detected_cpu_capability();
// The capability kernels use now: the detected one unless lowered by LOOM_CPU_CAPABILITY or set_cpu_capability.
CpuCapability cpu_capability();
// "scalar", "avx2" or "avx512"; asking for more than the CPU has raises ValueError. Not for use while kernels
// run.
void set_cpu_capability(const std::string& name);
std::string cpu_capability_name();
std::string cpu_capability_name(CpuCapability capability);

// Optional features kernels may test on top of their capability.
struct CpuFeatures {
  bool f16c = false;         // float16 <-> float32 conversions (every AVX2 CPU we know of)
  bool avx512_bf16 = false;  // vcvtne2ps2bf16 / vdpbf16ps (Zen 4+, Cooper Lake, Sapphire Rapids)
  bool avx512_vnni = false;  // vpdpbusd (int8 dot products)
  bool avx512_fp16 = false;  // float16 arithmetic (Sapphire Rapids)
  bool amx = false;          // AMX tiles with bf16 and int8 (Sapphire Rapids)
};
const CpuFeatures& cpu_features();

inline bool use_avx2() { return cpu_capability() >= CpuCapability::Avx2; }
inline bool use_avx512() { return cpu_capability() >= CpuCapability::Avx512; }

}  // namespace loom::cpu
