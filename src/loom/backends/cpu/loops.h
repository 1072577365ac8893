// Strided elementwise iteration shared by the CPU kernels.
//
// for_each_element(operands, loop) walks tensors of one shape (inputs already broadcast with expand()),
// coalescing dims that are contiguous in every operand and splitting the work over the thread pool.
// `loop(char** data, const int64_t* byte_strides, int64_t n)` processes one row of n elements: operand k's
// element j is at data[k] + j * byte_strides[k]. Operand 0 is by convention the output.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "loom/core/parallel.h"
#include "loom/core/tensor.h"

namespace loom::cpu {

inline constexpr int kMaxOperands = 4;

struct StridedLayout {
  int num_operands = 0;
  int ndim = 0;
  std::vector<int64_t> sizes;                               // outer..inner, coalesced
  std::array<std::vector<int64_t>, kMaxOperands> strides;  // in bytes
  std::array<char*, kMaxOperands> data{};
};

StridedLayout make_layout(const std::vector<const Tensor*>& operands);

template <class Loop>
void for_each_element(const std::vector<const Tensor*>& operands, Loop&& loop,
                      int64_t grain = kElementwiseGrain) {
  StridedLayout layout = make_layout(operands);
  int64_t total = 1;
  for (int64_t s : layout.sizes) total *= s;
  if (total == 0) return;
  const int nops = layout.num_operands;
  const int nd = layout.ndim;
  const int64_t inner = layout.sizes[nd - 1];
  parallel_for(0, total, grain, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> idx(nd, 0);  // multi-index of `begin`
    int64_t rem = begin;
    for (int d = nd - 1; d >= 0; --d) {
      idx[d] = rem % layout.sizes[d];
      rem /= layout.sizes[d];
    }
    int64_t inner_strides[kMaxOperands];
    for (int k = 0; k < nops; ++k) inner_strides[k] = layout.strides[k][nd - 1];
    int64_t pos = begin;
    while (pos < end) {
      char* ptrs[kMaxOperands];
      for (int k = 0; k < nops; ++k) {
        char* p = layout.data[k];
        for (int d = 0; d < nd; ++d) p += idx[d] * layout.strides[k][d];
        ptrs[k] = p;
      }
      int64_t n = std::min(inner - idx[nd - 1], end - pos);
      loop(ptrs, inner_strides, n);
      pos += n;
      idx[nd - 1] += n;
      for (int d = nd - 1; d > 0 && idx[d] >= layout.sizes[d]; --d) {
        idx[d] = 0;
        ++idx[d - 1];
      }
    }
  });
}

}  // namespace loom::cpu
