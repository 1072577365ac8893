// Reductions (sum, prod, amax, amin) and softmax/log_softmax over the middle dim of a contiguous
// [outer, reduced, inner] tensor. inner == 1 (the reduced dims are last: the common case) gives each row one block
// that reads it coalesced and combines in shared memory; otherwise each thread walks one column, and neighbouring
// threads read neighbouring columns. Accumulation: float for the 16-bit floats and float32 (as PyTorch's CUDA
// kernels), double for float64, int64 for integers. NaN propagates through amax/amin.
#include <cfloat>
#include <cmath>

#include "device_util.cuh"

namespace loom_cuda {

namespace {

// The accumulator of a sum or product in T.
template <class T>
using acc_t = std::conditional_t<std::is_floating_point_v<opmath_t<T>>, opmath_t<T>,
                                 std::conditional_t<std::is_same_v<T, bool>, bool, int64_t>>;

template <class A>
__device__ __forceinline__ A combine(ReduceOp op, A x, A y) {
  switch (op) {
    case ReduceOp::Sum:
      if constexpr (std::is_same_v<A, bool>) return x || y;
      else if constexpr (std::is_integral_v<A>)
        return static_cast<A>(static_cast<uint64_t>(x) + static_cast<uint64_t>(y));
      else return x + y;
    case ReduceOp::Prod:
      if constexpr (std::is_same_v<A, bool>) return x && y;
      else if constexpr (std::is_integral_v<A>)
        return static_cast<A>(static_cast<uint64_t>(x) * static_cast<uint64_t>(y));
      else return x * y;
    case ReduceOp::Max:
      if constexpr (std::is_floating_point_v<A>)
        if (x != x || y != y) return x != x ? x : y;
      return y > x ? y : x;
    case ReduceOp::Min:
      if constexpr (std::is_floating_point_v<A>)
        if (x != x || y != y) return x != x ? x : y;
      return y < x ? y : x;
  }
  return x;
}

template <class A>
__device__ __forceinline__ A identity(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return A(0);
    case ReduceOp::Prod: return A(1);
    case ReduceOp::Max:
      if constexpr (std::is_floating_point_v<A>) return -INFINITY;
      else if constexpr (std::is_same_v<A, bool>) return false;
      else return std::numeric_limits<A>::lowest();
    case ReduceOp::Min:
      if constexpr (std::is_floating_point_v<A>) return INFINITY;
      else if constexpr (std::is_same_v<A, bool>) return true;
      else return std::numeric_limits<A>::max();
  }
  return A(0);
}

// Max and min accumulate in the same type as sums (exact for every element value of T).
template <class T>
using reduce_acc_t = acc_t<T>;

// Combines one value per thread of the block; the result is valid in thread 0.
template <class A, class Combine>
__device__ A block_reduce(A value, A identity_value, Combine combine) {
  __shared__ unsigned char shared_bytes[32 * sizeof(double)];
  A* shared = reinterpret_cast<A*>(shared_bytes);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int offset = 16; offset > 0; offset /= 2) value = combine(value, __shfl_down_sync(0xffffffffu, value, offset));
  __syncthreads();  // shared may still be read by a previous call
  if (lane == 0) shared[warp] = value;
  __syncthreads();
  const int warps = (blockDim.x + 31) / 32;
  if (warp == 0) {
    value = lane < warps ? shared[lane] : identity_value;
    for (int offset = 16; offset > 0; offset /= 2)
      value = combine(value, __shfl_down_sync(0xffffffffu, value, offset));
  }
  return value;
}

// Each row of R contiguous elements reduced by one block.
template <class T>
__global__ void reduce_rows_kernel(ReduceOp op, const T* in, T* out, int64_t outer, int64_t R) {
  using A = reduce_acc_t<T>;
  auto combine_fn = [op](A x, A y) { return combine<A>(op, x, y); };
  for (int64_t row = blockIdx.x; row < outer; row += gridDim.x) {
    A acc = identity<A>(op);
    const T* x = in + row * R;
    for (int64_t r = threadIdx.x; r < R; r += blockDim.x) acc = combine<A>(op, acc, static_cast<A>(opmath_t<T>(x[r])));
    acc = block_reduce<A>(acc, identity<A>(op), combine_fn);
    if (threadIdx.x == 0) out[row] = convert<T>(acc);
  }
}

// Each output column (o, i) reduced by one thread, walking R with stride inner.
template <class T>
__global__ void reduce_columns_kernel(ReduceOp op, const T* in, T* out, int64_t outer, int64_t R, int64_t inner) {
  using A = reduce_acc_t<T>;
  const int64_t n = outer * inner;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = k / inner, i = k % inner;
    const T* x = in + o * R * inner + i;
    A acc = identity<A>(op);
    for (int64_t r = 0; r < R; ++r) acc = combine<A>(op, acc, static_cast<A>(opmath_t<T>(x[r * inner])));
    out[k] = convert<T>(acc);
  }
}

// ---- softmax ----
template <class T>
using softmax_acc_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <bool Log, class T>
__global__ void softmax_rows_kernel(const T* in, T* out, int64_t outer, int64_t R) {
  using A = softmax_acc_t<T>;
  __shared__ A broadcast;
  for (int64_t row = blockIdx.x; row < outer; row += gridDim.x) {
    const T* x = in + row * R;
    T* y = out + row * R;
    A max_value = -INFINITY;
    for (int64_t r = threadIdx.x; r < R; r += blockDim.x) max_value = fmax(max_value, static_cast<A>(x[r]));
    max_value = block_reduce<A>(max_value, A(-INFINITY), [](A a, A b) { return fmax(a, b); });
    if (threadIdx.x == 0) broadcast = max_value;
    __syncthreads();
    max_value = broadcast;
    __syncthreads();
    A total = 0;
    for (int64_t r = threadIdx.x; r < R; r += blockDim.x) total += exp(static_cast<A>(x[r]) - max_value);
    total = block_reduce<A>(total, A(0), [](A a, A b) { return a + b; });
    if (threadIdx.x == 0) broadcast = total;
    __syncthreads();
    total = broadcast;
    __syncthreads();
    const A log_total = log(total);
    for (int64_t r = threadIdx.x; r < R; r += blockDim.x) {
      const A v = static_cast<A>(x[r]) - max_value;
      y[r] = convert<T>(Log ? v - log_total : exp(v) / total);
    }
  }
}

template <bool Log, class T>
__global__ void softmax_columns_kernel(const T* in, T* out, int64_t outer, int64_t R, int64_t inner) {
  using A = softmax_acc_t<T>;
  const int64_t n = outer * inner;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = k / inner, i = k % inner;
    const T* x = in + o * R * inner + i;
    T* y = out + o * R * inner + i;
    A max_value = -INFINITY;
    for (int64_t r = 0; r < R; ++r) max_value = fmax(max_value, static_cast<A>(x[r * inner]));
    A total = 0;
    for (int64_t r = 0; r < R; ++r) total += exp(static_cast<A>(x[r * inner]) - max_value);
    const A log_total = log(total);
    for (int64_t r = 0; r < R; ++r) {
      const A v = static_cast<A>(x[r * inner]) - max_value;
      y[r * inner] = convert<T>(Log ? v - log_total : exp(v) / total);
    }
  }
}

// Threads per row block: enough to cover short rows without idle warps.
unsigned row_threads(int64_t R) {
  unsigned threads = 32;
  while (threads < 1024 && threads < R) threads *= 2;
  return threads;
}

unsigned row_blocks(int64_t outer) { return static_cast<unsigned>(outer < 65535 * 16 ? outer : 65535 * 16); }

}  // namespace

void launch_reduce(ReduceOp op, ScalarType type, const void* in, void* out, int64_t outer, int64_t reduced,
                   int64_t inner, StreamHandle stream) {
  if (outer * inner == 0) return;
  visit_type(type, [&]<class T>() {
    const T* x = static_cast<const T*>(in);
    T* y = static_cast<T*>(out);
    if (inner == 1)
      reduce_rows_kernel<T><<<row_blocks(outer), row_threads(reduced), 0, as_stream(stream)>>>(op, x, y, outer,
                                                                                                reduced);
    else
      reduce_columns_kernel<T><<<grid_for(outer * inner), kBlock, 0, as_stream(stream)>>>(op, x, y, outer, reduced,
                                                                                          inner);
  });
}

void launch_softmax(bool log, ScalarType type, const void* in, void* out, int64_t outer, int64_t reduced,
                    int64_t inner, StreamHandle stream) {
  if (outer * reduced * inner == 0) return;
  visit_floating(type, [&]<class T>() {
    const T* x = static_cast<const T*>(in);
    T* y = static_cast<T*>(out);
    cudaStream_t s = as_stream(stream);
    if (inner == 1) {
      if (log) softmax_rows_kernel<true, T><<<row_blocks(outer), row_threads(reduced), 0, s>>>(x, y, outer, reduced);
      else softmax_rows_kernel<false, T><<<row_blocks(outer), row_threads(reduced), 0, s>>>(x, y, outer, reduced);
    } else {
      if (log)
        softmax_columns_kernel<true, T><<<grid_for(outer * inner), kBlock, 0, s>>>(x, y, outer, reduced, inner);
      else
        softmax_columns_kernel<false, T><<<grid_for(outer * inner), kBlock, 0, s>>>(x, y, outer, reduced, inner);
    }
  });
}

}  // namespace loom_cuda
