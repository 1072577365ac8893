// AVX2 row drivers for the float32 and bfloat16 elementwise kernels (unary.cpp, binary.cpp): one row of n
// elements in the for_each_element convention (data pointers + byte strides, operand 0 the output).
//
// Contiguous rows and rows with a broadcast (stride-0) operand run straight 8-float loops with a masked tail;
// any other strides gather 8 elements into a buffer, so every layout computes with the same vector functor and
// gives the same bits. Functors are small structs with a LOOM_AVX2_INLINE operator() (lambdas would not get the
// AVX2 target). Only call these behind use_avx2().
#pragma once
#include "loom/backends/cpu/simd/vec_avx2.h"
#include "loom/core/half.h"

#if defined(__x86_64__)
#include <cstring>

namespace loom::cpu::avx2 {

// Storage of 8 lanes as floats: float32 itself, or bfloat16 (widened exactly, narrowed round-to-nearest-even,
// so a bfloat16 op computes in float and rounds once, like the scalar opmath loops).
template <class T>
struct Lanes;
template <>
struct Lanes<float> {
  static constexpr int64_t kSize = 4;
  LOOM_AVX2_INLINE static __m256 load(const char* p) { return _mm256_loadu_ps(reinterpret_cast<const float*>(p)); }
  LOOM_AVX2_INLINE static __m256 load_n(const char* p, int64_t m) {
    return _mm256_maskload_ps(reinterpret_cast<const float*>(p), tail_mask(m));
  }
  LOOM_AVX2_INLINE static void store(char* p, __m256 v) { _mm256_storeu_ps(reinterpret_cast<float*>(p), v); }
  LOOM_AVX2_INLINE static void store_n(char* p, int64_t m, __m256 v) {
    _mm256_maskstore_ps(reinterpret_cast<float*>(p), tail_mask(m), v);
  }
  static float get(const char* p) { return *reinterpret_cast<const float*>(p); }
  static void put(char* p, float v) { *reinterpret_cast<float*>(p) = v; }
};
template <>
struct Lanes<BFloat16> {
  static constexpr int64_t kSize = 2;
  LOOM_AVX2_INLINE static __m256 load(const char* p) {
    return bf16_to_float(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  LOOM_AVX2_INLINE static __m256 load_n(const char* p, int64_t m) {
    alignas(16) uint16_t buf[8] = {};
    std::memcpy(buf, p, static_cast<size_t>(m) * 2);
    return bf16_to_float(_mm_load_si128(reinterpret_cast<const __m128i*>(buf)));
  }
  LOOM_AVX2_INLINE static void store(char* p, __m256 v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), float_to_bf16(v));
  }
  LOOM_AVX2_INLINE static void store_n(char* p, int64_t m, __m256 v) {
    alignas(16) uint16_t buf[8];
    _mm_store_si128(reinterpret_cast<__m128i*>(buf), float_to_bf16(v));
    std::memcpy(p, buf, static_cast<size_t>(m) * 2);
  }
  static float get(const char* p) {
    BFloat16 h;
    std::memcpy(&h.bits, p, 2);
    return static_cast<float>(h);
  }
  static void put(char* p, float v) {
    BFloat16 h(v);
    std::memcpy(p, &h.bits, 2);
  }
};

// 8 lanes of an operand with byte stride s starting at element i; m (1..8) valid lanes, the rest 0.
template <class T = float>
LOOM_AVX2_INLINE __m256 load_strided(const char* p, int64_t s, int64_t i, int64_t m) {
  using L = Lanes<T>;
  if (s == 0) return _mm256_set1_ps(L::get(p));
  if (s == L::kSize) return m == 8 ? L::load(p + i * L::kSize) : L::load_n(p + i * L::kSize, m);
  alignas(32) float buf[8] = {};
  for (int64_t j = 0; j < m; ++j) buf[j] = L::get(p + (i + j) * s);
  return _mm256_load_ps(buf);
}

template <class T = float>
LOOM_AVX2_INLINE void store_strided(char* p, int64_t s, int64_t i, int64_t m, __m256 v) {
  using L = Lanes<T>;
  if (s == L::kSize) {
    if (m == 8) L::store(p + i * L::kSize, v);
    else L::store_n(p + i * L::kSize, m, v);
    return;
  }
  alignas(32) float buf[8];
  _mm256_store_ps(buf, v);
  for (int64_t j = 0; j < m; ++j) L::put(p + (i + j) * s, buf[j]);
}

// out = f(x), T the storage type (float or BFloat16) of both.
template <class T, class F>
LOOM_AVX2_FN void unary_row(char** p, const int64_t* s, int64_t n, const F& f) {
  using L = Lanes<T>;
  if (s[0] == L::kSize && s[1] == L::kSize) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) L::store(p[0] + i * L::kSize, f(L::load(p[1] + i * L::kSize)));
    if (i < n) L::store_n(p[0] + i * L::kSize, n - i, f(L::load_n(p[1] + i * L::kSize, n - i)));
    return;
  }
  for (int64_t i = 0; i < n; i += 8) {
    int64_t m = n - i < 8 ? n - i : 8;
    store_strided<T>(p[0], s[0], i, m, f(load_strided<T>(p[1], s[1], i, m)));
  }
}

// out = f(a, b), T the storage type of all three.
template <class T, class F>
LOOM_AVX2_FN void binary_row(char** p, const int64_t* s, int64_t n, const F& f) {
  using L = Lanes<T>;
  constexpr int64_t k = L::kSize;
  if (s[0] == k && (s[1] == k || s[1] == 0) && (s[2] == k || s[2] == 0) && (s[1] | s[2]) != 0) {
    int64_t i = 0;
    if (s[1] == k && s[2] == k) {
      for (; i + 8 <= n; i += 8) L::store(p[0] + i * k, f(L::load(p[1] + i * k), L::load(p[2] + i * k)));
    } else if (s[2] == 0) {
      const __m256 bv = _mm256_set1_ps(L::get(p[2]));
      for (; i + 8 <= n; i += 8) L::store(p[0] + i * k, f(L::load(p[1] + i * k), bv));
    } else {
      const __m256 av = _mm256_set1_ps(L::get(p[1]));
      for (; i + 8 <= n; i += 8) L::store(p[0] + i * k, f(av, L::load(p[2] + i * k)));
    }
    if (i < n) {
      int64_t m = n - i;
      store_strided<T>(p[0], k, i, m, f(load_strided<T>(p[1], s[1], i, m), load_strided<T>(p[2], s[2], i, m)));
    }
    return;
  }
  for (int64_t i = 0; i < n; i += 8) {
    int64_t m = n - i < 8 ? n - i : 8;
    store_strided<T>(p[0], s[0], i, m, f(load_strided<T>(p[1], s[1], i, m), load_strided<T>(p[2], s[2], i, m)));
  }
}

// bool out = f(a, b), f returning an all-ones/all-zeros lane mask.
template <class F>
LOOM_AVX2_FN void compare_row(char** p, const int64_t* s, int64_t n, const F& f) {
  for (int64_t i = 0; i < n; i += 8) {
    int64_t m = n - i < 8 ? n - i : 8;
    unsigned bits = static_cast<unsigned>(
        _mm256_movemask_ps(f(load_strided(p[1], s[1], i, m), load_strided(p[2], s[2], i, m))));
    // Spread the 8 mask bits to 8 bytes of 0/1.
    uint64_t bytes = 0;
    for (int j = 0; j < 8; ++j) bytes |= static_cast<uint64_t>((bits >> j) & 1u) << (8 * j);
    if (s[0] == 1 && m == 8) {
      std::memcpy(p[0] + i, &bytes, 8);
    } else {
      for (int64_t j = 0; j < m; ++j) p[0][(i + j) * s[0]] = static_cast<char>((bits >> j) & 1u);
    }
  }
}

// out = cond ? a : b with a bool condition (operand 1).
LOOM_AVX2_FN inline void where_row(char** p, const int64_t* s, int64_t n) {
  for (int64_t i = 0; i < n; i += 8) {
    int64_t m = n - i < 8 ? n - i : 8;
    __m256i c;
    if (s[1] == 0) {
      c = _mm256_set1_epi32(*reinterpret_cast<const bool*>(p[1]) ? -1 : 0);
    } else {
      alignas(16) uint8_t buf[16] = {};
      if (s[1] == 1 && m == 8) std::memcpy(buf, p[1] + i, 8);
      else
        for (int64_t j = 0; j < m; ++j) buf[j] = *reinterpret_cast<const uint8_t*>(p[1] + (i + j) * s[1]);
      c = _mm256_cmpgt_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(buf))),
                             _mm256_setzero_si256());
    }
    __m256 a = load_strided(p[2], s[2], i, m), b = load_strided(p[3], s[3], i, m);
    store_strided(p[0], s[0], i, m, _mm256_blendv_ps(b, a, _mm256_castsi256_ps(c)));
  }
}

}  // namespace loom::cpu::avx2
#endif
