// Built instead of mpi/ when CMake did not find MPI: no MPI backend is registered, and asking for "mpi" says why.
#include "loom/distributed/process_group.h"

namespace loom::distributed {

bool mpi_available() { return false; }

namespace detail {
void register_builtin_process_groups() {}
}  // namespace detail

}  // namespace loom::distributed
