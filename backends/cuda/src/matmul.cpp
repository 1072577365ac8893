// mm and bmm through cuBLAS. loom is row-major and cuBLAS column-major: C = A @ B row-major is C^T = B^T @ A^T
// column-major, so the operands are passed swapped. A matrix whose rows or columns are contiguous is passed as it
// is (with a transpose flag); anything else is copied contiguous first. float32 runs in full float32 (no TF32)
// unless LOOM_CUDA_ALLOW_TF32=1, as torch.backends.cuda.matmul.allow_tf32 defaults to False; float16 and bfloat16
// accumulate in float32; float64 in float64. Integer products are refused, as on PyTorch's CUDA.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <array>
#include <cstdlib>
#include <cstring>

#include "cuda_check.h"
#include "kernels.h"
#include "loom/ops/shape.h"
#include "runtime.h"

namespace loom_cuda {

namespace {

using loom::DType;
using loom::Tensor;

const char* cublas_message(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "cuBLAS error";
  }
}

void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    loom::fail(loom::ErrorKind::Runtime, "cuda: ", what, " failed: ", cublas_message(status), " (", int(status), ")");
}

bool allow_tf32() {
  static const bool allowed = [] {
    const char* v = std::getenv("LOOM_CUDA_ALLOW_TF32");
    return v && std::strcmp(v, "1") == 0;
  }();
  return allowed;
}

// One handle per (thread, device): a handle's stream is state, so threads must not share one.
cublasHandle_t handle_for(int device, void* stream) {
  constexpr int kMaxDevices = 64;
  thread_local std::array<cublasHandle_t, kMaxDevices> handles{};
  LOOM_CHECK(device >= 0 && device < kMaxDevices, Value, "cuda: device index ", device, " out of range for cuBLAS");
  if (!handles[device]) {
    check_cublas(cublasCreate(&handles[device]), "cublasCreate");
    check_cublas(cublasSetMathMode(handles[device], allow_tf32() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
                 "cublasSetMathMode");
  }
  check_cublas(cublasSetStream(handles[device], static_cast<cudaStream_t>(stream)), "cublasSetStream");
  return handles[device];
}

// How cuBLAS sees one row-major matrix operand [rows, cols] with the given strides (elements): `transposed` when
// its columns, not its rows, are contiguous; ld is the leading dimension in cuBLAS's column-major terms.
struct MatrixView {
  Tensor tensor;
  bool transposed = false;
  int64_t ld = 1;
};
MatrixView matrix_view(const Tensor& t, int64_t row_stride, int64_t col_stride, int64_t rows, int64_t cols) {
  if (col_stride == 1 && row_stride >= std::max<int64_t>(cols, 1)) return {t, false, row_stride};
  if (row_stride == 1 && col_stride >= std::max<int64_t>(rows, 1)) return {t, true, col_stride};
  return {};  // not usable as it is
}

cudaDataType_t cuda_type(DType d) {
  switch (d) {
    case DType::Float16: return CUDA_R_16F;
    case DType::BFloat16: return CUDA_R_16BF;
    case DType::Float64: return CUDA_R_64F;
    default: return CUDA_R_32F;
  }
}

// out[b] = a[b] @ b[b] for `batch` matrices; a: [batch, m, k], b: [batch, k, n], out contiguous [batch, m, n].
void batched_gemm(Tensor a, Tensor b, const Tensor& out, int64_t batch, const loom::KernelContext& c) {
  const int64_t m = out.sizes()[out.dim() - 2], n = out.sizes()[out.dim() - 1], k = a.sizes()[a.dim() - 1];
  const bool batched = a.dim() == 3;
  auto view_of = [&](Tensor& t, int64_t rows, int64_t cols) {
    const int64_t d = t.dim();
    MatrixView v = matrix_view(t, t.strides()[d - 2], t.strides()[d - 1], rows, cols);
    if (!v.tensor.defined() || (batched && batch > 1 && t.strides()[0] == 0)) {
      t = loom::contiguous(t);
      v = matrix_view(t, t.strides()[d - 2], t.strides()[d - 1], rows, cols);
    }
    return v;
  };
  MatrixView va = view_of(a, m, k), vb = view_of(b, k, n);
  const int64_t stride_a = batched ? a.strides()[0] : 0, stride_b = batched ? b.strides()[0] : 0;
  const DType dtype = out.dtype();
  LOOM_CHECK(loom::is_floating(dtype), NotImplemented, c.op->name, ": cuda has no kernel for dtype ",
             loom::dtype_name(dtype), " (matrix products run on floating types, as on PyTorch's CUDA)");
  cublasHandle_t handle = handle_for(c.device.index, stream_handle(c.stream));
  // Column-major: C^T [n, m] = B^T [n, k] @ A^T [k, m]; a row-major operand read as column-major is its transpose.
  const cublasOperation_t op_b = vb.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_a = va.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  const double one_d = 1.0, zero_d = 0.0;
  const float one_f = 1.0f, zero_f = 0.0f;
  const bool is_double = dtype == DType::Float64;
  const void* alpha = is_double ? static_cast<const void*>(&one_d) : &one_f;
  const void* beta = is_double ? static_cast<const void*>(&zero_d) : &zero_f;
  const cublasComputeType_t compute = is_double ? CUBLAS_COMPUTE_64F
                                      : dtype == DType::Float32 && !allow_tf32() ? CUBLAS_COMPUTE_32F
                                      : dtype == DType::Float32 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                                : CUBLAS_COMPUTE_32F;
  const cudaDataType_t t = cuda_type(dtype);
  check_cublas(cublasGemmStridedBatchedEx(handle, op_b, op_a, static_cast<int>(n), static_cast<int>(m),
                                          static_cast<int>(k), alpha, vb.tensor.data_ptr(), t, static_cast<int>(vb.ld),
                                          stride_b, va.tensor.data_ptr(), t, static_cast<int>(va.ld), stride_a, beta,
                                          out.data_ptr(), t, static_cast<int>(n), m * n, static_cast<int>(batch),
                                          compute, CUBLAS_GEMM_DEFAULT),
               c.op->name.c_str());
}

std::vector<Tensor> mm_kernel(const loom::KernelContext& c) {
  Tensor out = c.alloc(0);
  if (out.numel() == 0) return {out};
  if (c.inputs[0].sizes()[1] == 0) {  // an empty inner dim: zeros
    loom::backend_for(c.device.type).memset(out.data_ptr(), 0, out.numel() * out.itemsize(), c.stream);
    return {out};
  }
  batched_gemm(c.inputs[0], c.inputs[1], out, 1, c);
  return {out};
}

std::vector<Tensor> bmm_kernel(const loom::KernelContext& c) {
  Tensor out = c.alloc(0);
  if (out.numel() == 0) return {out};
  if (c.inputs[0].sizes()[2] == 0) {
    loom::backend_for(c.device.type).memset(out.data_ptr(), 0, out.numel() * out.itemsize(), c.stream);
    return {out};
  }
  batched_gemm(c.inputs[0], c.inputs[1], out, out.sizes()[0], c);
  return {out};
}

}  // namespace

void register_matmul_kernels(loom::DeviceType type) {
  loom::Registry::instance().set_kernel("mm", type, mm_kernel);
  loom::Registry::instance().set_kernel("bmm", type, bmm_kernel);
}

}  // namespace loom_cuda
