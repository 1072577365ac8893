// Strided elementwise iteration shared by the CPU kernels.
//
// for_each_element(operands, loop) walks tensors of one shape (inputs already broadcast with expand()),
// coalescing dims that are contiguous in every operand and splitting the work over the thread pool.
// `loop(char** data, const int64_t* byte_strides, int64_t n)` processes one row of n elements: operand k's
// element j is at data[k] + j * byte_strides[k]. Operand 0 is by convention the output.
// The layout lives on the stack (no allocation per call): small ops cost a few dozen instructions of set-up,
// and ranges below the grain run inline without going through the thread pool.
#pragma once
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "loom/core/parallel.h"
#include "loom/core/tensor.h"

namespace loom::cpu {

inline constexpr int kMaxOperands = 4;
inline constexpr int kMaxLoopDims = 25;  // dims left after dropping size-1 dims and coalescing

struct StridedLayout {
  int num_operands = 0;
  int ndim = 0;
  int64_t sizes[kMaxLoopDims];                 // outer..inner, coalesced
  int64_t strides[kMaxOperands][kMaxLoopDims];  // in bytes
  char* data[kMaxOperands];
};

// Fills `layout` for operands[0..n) (all of operands[0]'s shape). Raises for more than kMaxLoopDims dims.
void make_layout(const Tensor* const* operands, int n, StridedLayout& layout);

namespace detail {

template <class Loop>
void for_each_element_impl(const Tensor* const* operands, int nops, Loop& loop, int64_t grain) {
  StridedLayout layout;
  make_layout(operands, nops, layout);
  const int nd = layout.ndim;
  int64_t total = 1;
  for (int d = 0; d < nd; ++d) total *= layout.sizes[d];
  if (total == 0) return;
  int64_t inner_strides[kMaxOperands];
  for (int k = 0; k < nops; ++k) inner_strides[k] = layout.strides[k][nd - 1];
  if (nd == 1) {  // one (coalesced) row: the common case of contiguous and broadcast-scalar operands
    auto run = [&](int64_t begin, int64_t end) {
      char* ptrs[kMaxOperands];
      for (int k = 0; k < nops; ++k) ptrs[k] = layout.data[k] + begin * inner_strides[k];
      loop(ptrs, inner_strides, end - begin);
    };
    if (total <= grain) run(0, total);
    else parallel_for(0, total, grain, run);
    return;
  }
  const int64_t inner = layout.sizes[nd - 1];
  auto run = [&](int64_t begin, int64_t end) {
    int64_t idx[kMaxLoopDims];  // multi-index of `begin`
    int64_t rem = begin;
    for (int d = nd - 1; d >= 0; --d) {
      idx[d] = rem % layout.sizes[d];
      rem /= layout.sizes[d];
    }
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
  };
  if (total <= grain) run(0, total);
  else parallel_for(0, total, grain, run);
}

}  // namespace detail

template <class Loop>
void for_each_element(std::initializer_list<const Tensor*> operands, Loop&& loop,
                      int64_t grain = kElementwiseGrain) {
  detail::for_each_element_impl(operands.begin(), static_cast<int>(operands.size()), loop, grain);
}

template <class Loop>
void for_each_element(const std::vector<const Tensor*>& operands, Loop&& loop,
                      int64_t grain = kElementwiseGrain) {
  detail::for_each_element_impl(operands.data(), static_cast<int>(operands.size()), loop, grain);
}

}  // namespace loom::cpu
