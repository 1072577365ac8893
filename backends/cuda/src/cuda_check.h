// Turning CUDA and cuBLAS status codes into loom errors (loom::Error of kind Runtime, so Python sees RuntimeError).
#pragma once
#include <cuda_runtime_api.h>

#include "loom/core/error.h"

namespace loom_cuda {

// Raises naming `what` and CUDA's message when `status` is an error. The error is cleared first (cudaGetLastError),
// so a recoverable one (an out-of-memory) does not resurface at the next call; sticky errors (a kernel that faulted)
// stay, as CUDA keeps them for the context's lifetime.
inline void check(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  (void)cudaGetLastError();
  loom::fail(loom::ErrorKind::Runtime, "cuda: ", what, " failed: ", cudaGetErrorString(status), " (",
             cudaGetErrorName(status), ")");
}

}  // namespace loom_cuda
