// The CPU backend's one entry point: registers every CPU kernel with the op registry.
#include "loom/backends/cpu/register.h"

namespace loom::cpu {

void register_copy_kernels(Registry& r);
void register_binary_kernels(Registry& r);
void register_unary_kernels(Registry& r);
void register_reduce_kernels(Registry& r);
void register_linalg_kernels(Registry& r);
void register_index_kernels(Registry& r);
void register_sort_kernels(Registry& r);
void register_nn_kernels(Registry& r);
void register_loss_kernels(Registry& r);
void register_random_kernels(Registry& r);
void register_optim_kernels(Registry& r);
void register_attention_kernels(Registry& r);

void register_cpu_backend(Registry& r) {
  register_copy_kernels(r);
  register_binary_kernels(r);
  register_unary_kernels(r);
  register_reduce_kernels(r);
  register_linalg_kernels(r);
  register_index_kernels(r);
  register_sort_kernels(r);
  register_nn_kernels(r);
  register_loss_kernels(r);
  register_random_kernels(r);
  register_optim_kernels(r);
  register_attention_kernels(r);
}

}  // namespace loom::cpu
