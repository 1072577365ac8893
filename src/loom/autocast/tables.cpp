// Autocast op lists per device type, mirroring PyTorch's aten/src/ATen/autocast_mode.cpp (2.x). Names are
// PyTorch's op names; loom uses the same strings for its registry ops and its composite functions, so an op
// keeps its policy when it moves from a composite to a registry op. Where loom's name differs from aten's
// (cross_entropy vs cross_entropy_loss) both are listed.
#include <atomic>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "loom/autocast/autocast.h"
#include "loom/core/error.h"

namespace loom {
namespace {

using P = AutocastPolicy;
struct Entry {
  std::string_view name;
  P policy;
};

// CPU: only the matrix products and convolutions run in the lower precision; losses and a few numerically
// fragile ops run in float32. Reductions, softmax and norms are NOT listed on CPU (their bfloat16 kernels
// accumulate in float32), so they keep their input dtype, as torch.autocast("cpu") does.
constexpr Entry kCpuOps[] = {
    // lower_precision_fp
    {"conv1d", P::LowerPrecision}, {"conv2d", P::LowerPrecision}, {"conv3d", P::LowerPrecision},
    {"_convolution", P::LowerPrecision}, {"convolution", P::LowerPrecision}, {"conv_tbc", P::LowerPrecision},
    {"conv_transpose1d", P::LowerPrecision}, {"conv_transpose2d", P::LowerPrecision},
    {"conv_transpose3d", P::LowerPrecision}, {"bmm", P::LowerPrecision}, {"mm", P::LowerPrecision},
    {"linalg_vecdot", P::LowerPrecision}, {"baddbmm", P::LowerPrecision}, {"addmm", P::LowerPrecision},
    {"addbmm", P::LowerPrecision}, {"linear", P::LowerPrecision}, {"matmul", P::LowerPrecision},
    {"mkldnn_rnn", P::LowerPrecision}, {"prelu", P::LowerPrecision},
    {"scaled_dot_product_attention", P::LowerPrecision}, {"_native_multi_head_attention", P::LowerPrecision},
    // fp32
    {"avg_pool3d", P::Float32}, {"binary_cross_entropy", P::Float32}, {"grid_sampler", P::Float32},
    {"polar", P::Float32}, {"prod", P::Float32}, {"quantile", P::Float32}, {"nanquantile", P::Float32},
    {"stft", P::Float32}, {"cdist", P::Float32}, {"trace", P::Float32}, {"view_as_complex", P::Float32},
    {"cholesky", P::Float32}, {"cholesky_inverse", P::Float32}, {"cholesky_solve", P::Float32},
    {"inverse", P::Float32}, {"lu_solve", P::Float32}, {"orgqr", P::Float32}, {"ormqr", P::Float32},
    {"pinverse", P::Float32}, {"max_pool3d", P::Float32}, {"max_unpool2d", P::Float32},
    {"max_unpool3d", P::Float32}, {"adaptive_avg_pool3d", P::Float32}, {"reflection_pad1d", P::Float32},
    {"reflection_pad2d", P::Float32}, {"replication_pad1d", P::Float32}, {"replication_pad2d", P::Float32},
    {"replication_pad3d", P::Float32}, {"mse_loss", P::Float32}, {"cosine_embedding_loss", P::Float32},
    {"nll_loss", P::Float32}, {"nll_loss2d", P::Float32}, {"hinge_embedding_loss", P::Float32},
    {"poisson_nll_loss", P::Float32}, {"smooth_l1_loss", P::Float32}, {"cross_entropy_loss", P::Float32},
    {"cross_entropy", P::Float32}, {"l1_loss", P::Float32}, {"huber_loss", P::Float32},
    {"margin_ranking_loss", P::Float32}, {"soft_margin_loss", P::Float32}, {"triplet_margin_loss", P::Float32},
    {"multi_margin_loss", P::Float32}, {"ctc_loss", P::Float32}, {"kl_div", P::Float32},
    {"multilabel_margin_loss", P::Float32}, {"binary_cross_entropy_with_logits", P::Float32},
    {"fft_fft", P::Float32}, {"fft_ifft", P::Float32}, {"fft_fft2", P::Float32}, {"fft_ifft2", P::Float32},
    {"fft_fftn", P::Float32}, {"fft_ifftn", P::Float32}, {"fft_rfft", P::Float32}, {"fft_irfft", P::Float32},
    {"fft_rfft2", P::Float32}, {"fft_irfft2", P::Float32}, {"fft_rfftn", P::Float32}, {"fft_irfftn", P::Float32},
    {"fft_hfft", P::Float32}, {"fft_ihfft", P::Float32}, {"linalg_cond", P::Float32},
    {"linalg_matrix_rank", P::Float32}, {"linalg_solve", P::Float32}, {"linalg_cholesky", P::Float32},
    {"linalg_svdvals", P::Float32}, {"linalg_eigvals", P::Float32}, {"linalg_eigvalsh", P::Float32},
    {"linalg_inv", P::Float32}, {"linalg_householder_product", P::Float32}, {"linalg_tensorinv", P::Float32},
    {"linalg_tensorsolve", P::Float32}, {"fake_quantize_per_tensor_affine", P::Float32}, {"geqrf", P::Float32},
    {"_lu_with_info", P::Float32}, {"qr", P::Float32}, {"svd", P::Float32}, {"triangular_solve", P::Float32},
    {"fractional_max_pool2d", P::Float32}, {"fractional_max_pool3d", P::Float32},
    {"adaptive_max_pool3d", P::Float32}, {"multilabel_margin_loss_forward", P::Float32},
    {"linalg_qr", P::Float32}, {"linalg_cholesky_ex", P::Float32}, {"linalg_svd", P::Float32},
    {"linalg_eig", P::Float32}, {"linalg_eigh", P::Float32}, {"linalg_lstsq", P::Float32},
    {"linalg_inv_ex", P::Float32},
    // promote
    {"stack", P::Promote}, {"cat", P::Promote}, {"index_copy", P::Promote},
};

// CUDA (for the CUDA backend to reuse): reductions, softmax, norms and pointwise transcendental ops run in
// float32 there, because its half-precision kernels would otherwise accumulate in half.
constexpr Entry kCudaOps[] = {
    // lower_precision_fp
    {"_convolution", P::LowerPrecision}, {"conv1d", P::LowerPrecision}, {"conv2d", P::LowerPrecision},
    {"conv3d", P::LowerPrecision}, {"conv_tbc", P::LowerPrecision}, {"conv_transpose1d", P::LowerPrecision},
    {"conv_transpose2d", P::LowerPrecision}, {"conv_transpose3d", P::LowerPrecision},
    {"convolution", P::LowerPrecision}, {"prelu", P::LowerPrecision}, {"addmm", P::LowerPrecision},
    {"addmv", P::LowerPrecision}, {"addr", P::LowerPrecision}, {"matmul", P::LowerPrecision},
    {"einsum", P::LowerPrecision}, {"mm", P::LowerPrecision}, {"mv", P::LowerPrecision},
    {"linalg_vecdot", P::LowerPrecision}, {"linear", P::LowerPrecision}, {"addbmm", P::LowerPrecision},
    {"baddbmm", P::LowerPrecision}, {"bmm", P::LowerPrecision}, {"chain_matmul", P::LowerPrecision},
    {"linalg_multi_dot", P::LowerPrecision}, {"lstm_cell", P::LowerPrecision}, {"gru_cell", P::LowerPrecision},
    {"rnn_tanh_cell", P::LowerPrecision}, {"rnn_relu_cell", P::LowerPrecision},
    {"scaled_dot_product_attention", P::LowerPrecision},
    // fp32 (including PyTorch's fp32_set_opt_dtype and fp32_append_dtype lists)
    {"acos", P::Float32}, {"asin", P::Float32}, {"cosh", P::Float32}, {"erfinv", P::Float32}, {"exp", P::Float32},
    {"expm1", P::Float32}, {"log", P::Float32}, {"log10", P::Float32}, {"log2", P::Float32}, {"log1p", P::Float32},
    {"reciprocal", P::Float32}, {"rsqrt", P::Float32}, {"sinh", P::Float32}, {"tan", P::Float32},
    {"pow", P::Float32}, {"softplus", P::Float32}, {"layer_norm", P::Float32}, {"native_layer_norm", P::Float32},
    {"group_norm", P::Float32}, {"frobenius_norm", P::Float32}, {"nuclear_norm", P::Float32},
    {"cosine_similarity", P::Float32}, {"poisson_nll_loss", P::Float32}, {"cosine_embedding_loss", P::Float32},
    {"nll_loss", P::Float32}, {"nll_loss2d", P::Float32}, {"hinge_embedding_loss", P::Float32},
    {"kl_div", P::Float32}, {"l1_loss", P::Float32}, {"smooth_l1_loss", P::Float32}, {"huber_loss", P::Float32},
    {"mse_loss", P::Float32}, {"margin_ranking_loss", P::Float32}, {"multilabel_margin_loss", P::Float32},
    {"soft_margin_loss", P::Float32}, {"triplet_margin_loss", P::Float32}, {"multi_margin_loss", P::Float32},
    {"binary_cross_entropy_with_logits", P::Float32}, {"dist", P::Float32}, {"pdist", P::Float32},
    {"cdist", P::Float32}, {"renorm", P::Float32}, {"logsumexp", P::Float32}, {"upsample_nearest1d", P::Float32},
    {"upsample_nearest2d", P::Float32}, {"upsample_nearest3d", P::Float32}, {"upsample_linear1d", P::Float32},
    {"upsample_bilinear2d", P::Float32}, {"upsample_trilinear3d", P::Float32}, {"upsample_bicubic2d", P::Float32},
    {"cross_entropy_loss", P::Float32}, {"cross_entropy", P::Float32}, {"prod", P::Float32},
    {"softmax", P::Float32}, {"log_softmax", P::Float32}, {"cumprod", P::Float32}, {"cumsum", P::Float32},
    {"linalg_vector_norm", P::Float32}, {"linalg_matrix_norm", P::Float32}, {"sum", P::Float32},
    {"norm", P::Float32},
    // promote
    {"addcdiv", P::Promote}, {"addcmul", P::Promote}, {"atan2", P::Promote}, {"bilinear", P::Promote},
    {"cross", P::Promote}, {"dot", P::Promote}, {"grid_sampler", P::Promote}, {"index_put", P::Promote},
    {"scatter_add", P::Promote}, {"tensordot", P::Promote}, {"stack", P::Promote}, {"cat", P::Promote},
    {"index_copy", P::Promote},
};

template <size_t N>
std::unordered_map<std::string_view, P> make_map(const Entry (&entries)[N]) {
  std::unordered_map<std::string_view, P> map;
  for (const Entry& e : entries) map.emplace(e.name, e.policy);
  return map;
}

// A backend's registered list: names owned here (the map's views point into `names`), never freed or changed.
struct RegisteredTable {
  DType default_dtype;
  std::vector<std::string> names;
  std::vector<std::pair<std::string_view, P>> ordered;
  std::unordered_map<std::string_view, P> map;
};
std::atomic<const RegisteredTable*> g_registered[kNumDeviceTypes] = {};
std::mutex g_register_mutex;

const std::unordered_map<std::string_view, P>* table(DeviceType device) {
  static const auto cpu = make_map(kCpuOps);
  static const auto cuda = make_map(kCudaOps);
  switch (device) {
    case DeviceType::CPU: return &cpu;
    case DeviceType::CUDA: return &cuda;
    default: {
      const RegisteredTable* registered = g_registered[static_cast<int>(device)].load(std::memory_order_acquire);
      return registered ? &registered->map : nullptr;
    }
  }
}

}  // namespace

const char* autocast_policy_name(AutocastPolicy policy) {
  switch (policy) {
    case P::None: return "none";
    case P::LowerPrecision: return "lower_precision_fp";
    case P::Float32: return "fp32";
    case P::Promote: return "promote";
  }
  return "?";
}

AutocastPolicy autocast_policy(std::string_view op_name, DeviceType device) {
  const auto* map = table(device);
  if (!map) return P::None;
  auto it = map->find(op_name);
  return it == map->end() ? P::None : it->second;
}

std::vector<std::pair<std::string_view, AutocastPolicy>> autocast_op_list(DeviceType device) {
  std::vector<std::pair<std::string_view, AutocastPolicy>> out;
  if (device == DeviceType::CPU)
    for (const Entry& e : kCpuOps) out.emplace_back(e.name, e.policy);
  if (device == DeviceType::CUDA)
    for (const Entry& e : kCudaOps) out.emplace_back(e.name, e.policy);
  if (device != DeviceType::CPU && device != DeviceType::CUDA)
    if (const RegisteredTable* r = g_registered[static_cast<int>(device)].load(std::memory_order_acquire))
      out = r->ordered;
  return out;
}

void register_autocast_device(DeviceType device, DType default_dtype,
                              const std::vector<std::pair<std::string, AutocastPolicy>>& ops) {
  LOOM_CHECK(device != DeviceType::CPU && device != DeviceType::CUDA && device != DeviceType::Any, Value,
             "register_autocast_device: '", device_type_name(device), "' has built-in autocast lists");
  LOOM_CHECK(default_dtype == DType::BFloat16 || default_dtype == DType::Float16, Type,
             "register_autocast_device: the default dtype must be bfloat16 or float16, got ", dtype_name(default_dtype));
  std::lock_guard<std::mutex> lock(g_register_mutex);
  LOOM_CHECK(g_registered[static_cast<int>(device)].load() == nullptr, Runtime, "register_autocast_device: '",
             device_type_name(device), "' already has autocast lists");
  auto* r = new RegisteredTable{default_dtype, {}, {}, {}};
  r->names.reserve(ops.size());  // no reallocation: the views below point into these strings
  for (const auto& [name, policy] : ops) r->names.push_back(name);
  for (size_t i = 0; i < ops.size(); ++i) {
    r->ordered.emplace_back(r->names[i], ops[i].second);
    r->map.emplace(r->names[i], ops[i].second);
  }
  g_registered[static_cast<int>(device)].store(r, std::memory_order_release);
}

bool autocast_supported(DeviceType device) { return table(device) != nullptr; }

DType autocast_default_dtype(DeviceType device) {
  if (device == DeviceType::CUDA) return DType::Float16;
  if (device != DeviceType::CPU && device != DeviceType::Any)
    if (const RegisteredTable* r = g_registered[static_cast<int>(device)].load(std::memory_order_acquire))
      return r->default_dtype;
  return DType::BFloat16;
}

}  // namespace loom
