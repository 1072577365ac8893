// Wires the layers together at first use of the registry: op families, then the built-in backends, then autograd.
#include "loom/autocast/autocast.h"
#include "loom/autograd/node.h"
#include "loom/backends/cpu/register.h"
#include "loom/ops/registry.h"

namespace loom {

void define_creation_ops(Registry& r);
void define_shape_ops(Registry& r);
void define_elementwise_ops(Registry& r);
void define_reduce_ops(Registry& r);
void define_linalg_ops(Registry& r);
void define_index_ops(Registry& r);
void define_sort_ops(Registry& r);
void define_nn_ops(Registry& r);
void define_loss_ops(Registry& r);
void define_random_ops(Registry& r);
void define_optim_ops(Registry& r);
void define_attention_ops(Registry& r);
void define_device_ops(Registry& r);
void define_rnn_ops(Registry& r);

namespace detail {

void initialize_registry(Registry& r) {
  define_creation_ops(r);
  define_shape_ops(r);
  define_elementwise_ops(r);
  define_reduce_ops(r);
  define_linalg_ops(r);
  define_index_ops(r);
  define_sort_ops(r);
  define_nn_ops(r);
  define_loss_ops(r);
  define_random_ops(r);
  define_optim_ops(r);
  define_attention_ops(r);
  define_device_ops(r);
  define_rnn_ops(r);
  cpu::register_cpu_backend(r);
  autograd::install_recorder();
  install_autocast_composite_hook();
}

}  // namespace detail
}  // namespace loom
