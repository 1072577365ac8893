// AVX2 row drivers for the float32 elementwise kernels (unary.cpp, binary.cpp): one row of n elements in the
// for_each_element convention (data pointers + byte strides, operand 0 the output).
//
// Contiguous rows and rows with a broadcast (stride-0) operand run straight 8-float loops with a masked tail;
// any other strides gather 8 elements into a buffer, so every layout computes with the same vector functor and
// gives the same bits. Functors are small structs with a LOOM_AVX2_INLINE operator() (lambdas would not get the
// AVX2 target). Only call these behind use_avx2().
#pragma once
#include "loom/backends/cpu/simd/vec_avx2.h"

#if defined(__x86_64__)
#include <cstring>

namespace loom::cpu::avx2 {

// 8 floats of an operand with byte stride s starting at element i; m (1..8) valid lanes, the rest 0.
LOOM_AVX2_INLINE __m256 load_strided(const char* p, int64_t s, int64_t i, int64_t m) {
  if (s == 0) return _mm256_set1_ps(*reinterpret_cast<const float*>(p));
  if (s == static_cast<int64_t>(sizeof(float))) {
    const float* f = reinterpret_cast<const float*>(p) + i;
    return m == 8 ? _mm256_loadu_ps(f) : _mm256_maskload_ps(f, tail_mask(m));
  }
  alignas(32) float buf[8] = {};
  for (int64_t j = 0; j < m; ++j) buf[j] = *reinterpret_cast<const float*>(p + (i + j) * s);
  return _mm256_load_ps(buf);
}

LOOM_AVX2_INLINE void store_strided(char* p, int64_t s, int64_t i, int64_t m, __m256 v) {
  if (s == static_cast<int64_t>(sizeof(float))) {
    float* f = reinterpret_cast<float*>(p) + i;
    if (m == 8) _mm256_storeu_ps(f, v);
    else _mm256_maskstore_ps(f, tail_mask(m), v);
    return;
  }
  alignas(32) float buf[8];
  _mm256_store_ps(buf, v);
  for (int64_t j = 0; j < m; ++j) *reinterpret_cast<float*>(p + (i + j) * s) = buf[j];
}

// out = f(x)
template <class F>
LOOM_AVX2_FN void unary_row(char** p, const int64_t* s, int64_t n, const F& f) {
  if (s[0] == 4 && s[1] == 4) {
    float* o = reinterpret_cast<float*>(p[0]);
    const float* x = reinterpret_cast<const float*>(p[1]);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(o + i, f(_mm256_loadu_ps(x + i)));
    if (i < n) {
      __m256i m = tail_mask(n - i);
      _mm256_maskstore_ps(o + i, m, f(_mm256_maskload_ps(x + i, m)));
    }
    return;
  }
  for (int64_t i = 0; i < n; i += 8) {
    int64_t m = n - i < 8 ? n - i : 8;
    store_strided(p[0], s[0], i, m, f(load_strided(p[1], s[1], i, m)));
  }
}

// out = f(a, b)
template <class F>
LOOM_AVX2_FN void binary_row(char** p, const int64_t* s, int64_t n, const F& f) {
  if (s[0] == 4 && (s[1] == 4 || s[1] == 0) && (s[2] == 4 || s[2] == 0) && (s[1] | s[2]) != 0) {
    float* o = reinterpret_cast<float*>(p[0]);
    const float* a = reinterpret_cast<const float*>(p[1]);
    const float* b = reinterpret_cast<const float*>(p[2]);
    int64_t i = 0;
    if (s[1] == 4 && s[2] == 4) {
      for (; i + 8 <= n; i += 8) _mm256_storeu_ps(o + i, f(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    } else if (s[2] == 0) {
      const __m256 bv = _mm256_set1_ps(*b);
      for (; i + 8 <= n; i += 8) _mm256_storeu_ps(o + i, f(_mm256_loadu_ps(a + i), bv));
    } else {
      const __m256 av = _mm256_set1_ps(*a);
      for (; i + 8 <= n; i += 8) _mm256_storeu_ps(o + i, f(av, _mm256_loadu_ps(b + i)));
    }
    if (i < n) {
      int64_t m = n - i;
      store_strided(p[0], 4, i, m, f(load_strided(p[1], s[1], i, m), load_strided(p[2], s[2], i, m)));
    }
    return;
  }
  for (int64_t i = 0; i < n; i += 8) {
    int64_t m = n - i < 8 ? n - i : 8;
    store_strided(p[0], s[0], i, m, f(load_strided(p[1], s[1], i, m), load_strided(p[2], s[2], i, m)));
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
