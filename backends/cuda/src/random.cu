// Sampling kernels on loom's counter-based Philox stream (core/generator.h): element i reads Philox-4x32-10 block
// (offset + i / 2), lanes 2 * (i % 2) and 2 * (i % 2) + 1, exactly as backends/cpu/random.cpp, so the same seed and
// offset give the same numbers on both devices. The double arithmetic uses the _rn intrinsics so that nvcc does not
// fuse multiply-adds the CPU build does not fuse: uniform, randint and bernoulli are then bit-identical to the CPU;
// normal also goes through log and cos, whose CUDA versions may differ from glibc's by an ulp in double (invisible
// after rounding to float32 in all but rare ties).
#include <cmath>

#include "device_util.cuh"

namespace loom_cuda {

namespace {

__device__ __forceinline__ uint4 philox4x32(uint4 ctr, uint64_t key) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
#pragma unroll
  for (int round = 0; round < 10; ++round) {
    const uint32_t hi0 = __umulhi(kMul0, ctr.x), lo0 = kMul0 * ctr.x;
    const uint32_t hi1 = __umulhi(kMul1, ctr.z), lo1 = kMul1 * ctr.z;
    ctr = make_uint4(hi1 ^ ctr.y ^ k0, lo1, hi0 ^ ctr.w ^ k1, lo0);
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return ctr;
}

// The 64 random bits of element i.
__device__ __forceinline__ uint64_t element_bits(PhiloxState s, int64_t i) {
  const uint64_t block = s.offset + static_cast<uint64_t>(i) / 2;
  const uint4 out = philox4x32(make_uint4(static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0u, 0u),
                               s.seed);
  return (i % 2 == 0) ? (static_cast<uint64_t>(out.x) << 32) | out.y : (static_cast<uint64_t>(out.z) << 32) | out.w;
}

// Uniform double in [0, 1) with 53 random bits.
__device__ __forceinline__ double element_uniform(PhiloxState s, int64_t i) {
  return static_cast<double>(element_bits(s, i) >> 11) * 0x1.0p-53;
}

template <class T>
__device__ __forceinline__ T from_double(double v) {
  if constexpr (std::is_integral_v<T>) return static_cast<T>(v);
  else return convert<T>(static_cast<opmath_t<T>>(v));
}

template <class T>
__global__ void uniform_kernel(T* out, int64_t n, PhiloxState s, double low, double high, bool narrow) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    double v = __dadd_rn(low, __dmul_rn(__dsub_rn(high, low), element_uniform(s, i)));
    // Rounding to a narrow dtype must not produce `high` itself: the interval is half-open.
    if (narrow && high > low && static_cast<double>(static_cast<float>(v)) >= high)
      v = nextafterf(static_cast<float>(high), static_cast<float>(low));
    out[i] = from_double<T>(v);
  }
}

template <class T>
__global__ void normal_kernel(T* out, int64_t n, PhiloxState s, double mean, double std) {
  constexpr double kTwoPi = 2.0 * 3.14159265358979323846;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const uint64_t bits = element_bits(s, i);
    // Box-Muller on the element's own two 32-bit halves: u1 in (0, 1], u2 in [0, 1).
    const double u1 = __dmul_rn(__dadd_rn(static_cast<double>(bits >> 32), 1.0), 0x1.0p-32);
    const double u2 = __dmul_rn(static_cast<double>(bits & 0xffffffffu), 0x1.0p-32);
    const double radius = sqrt(__dmul_rn(-2.0, log(u1)));
    const double v = __dadd_rn(mean, __dmul_rn(__dmul_rn(std, radius), cos(__dmul_rn(kTwoPi, u2))));
    out[i] = from_double<T>(v);
  }
}

template <class T>
__global__ void randint_kernel(T* out, int64_t n, PhiloxState s, int64_t low, uint64_t range) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t v = low + static_cast<int64_t>(element_bits(s, i) % range);
    if constexpr (std::is_integral_v<T>) out[i] = static_cast<T>(v);
    else out[i] = convert<T>(static_cast<opmath_t<T>>(v));
  }
}

template <class T>
__global__ void bernoulli_kernel(T* out, const T* p, int64_t n, PhiloxState s) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const double q = static_cast<double>(static_cast<opmath_t<T>>(p[i]));
    out[i] = convert<T>(static_cast<opmath_t<T>>(element_uniform(s, i) < q));
  }
}

}  // namespace

void launch_uniform(ScalarType type, void* out, int64_t n, PhiloxState s, double low, double high,
                    StreamHandle stream) {
  if (n == 0) return;
  visit_floating(type, [&]<class T>() {
    uniform_kernel<T><<<grid_for(n), kBlock, 0, as_stream(stream)>>>(static_cast<T*>(out), n, s, low, high,
                                                                        !std::is_same_v<T, double>);
  });
}

void launch_normal(ScalarType type, void* out, int64_t n, PhiloxState s, double mean, double std,
                   StreamHandle stream) {
  if (n == 0) return;
  visit_floating(type, [&]<class T>() {
    normal_kernel<T><<<grid_for(n), kBlock, 0, as_stream(stream)>>>(static_cast<T*>(out), n, s, mean, std);
  });
}

void launch_randint(ScalarType type, void* out, int64_t n, PhiloxState s, int64_t low, uint64_t range,
                    StreamHandle stream) {
  if (n == 0) return;
  visit_type(type, [&]<class T>() {
    randint_kernel<T><<<grid_for(n), kBlock, 0, as_stream(stream)>>>(static_cast<T*>(out), n, s, low, range);
  });
}

void launch_bernoulli(ScalarType type, void* out, const void* p, int64_t n, PhiloxState s, StreamHandle stream) {
  if (n == 0) return;
  visit_floating(type, [&]<class T>() {
    bernoulli_kernel<T><<<grid_for(n), kBlock, 0, as_stream(stream)>>>(static_cast<T*>(out), static_cast<const T*>(p),
                                                                          n, s);
  });
}

}  // namespace loom_cuda
