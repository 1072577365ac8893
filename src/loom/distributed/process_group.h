// ProcessGroup: collective communication among processes (ranks), the interface every communication backend
// implements (MPI built in when found, NCCL or a vendor's collective library plugged in by name), plus the registry
// of process-group backends. docs/distributed.md describes the semantics; they follow torch.distributed.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "loom/core/tensor.h"

namespace loom::distributed {

// How all_reduce / reduce / reduce_scatter combine values. On bool tensors SUM and MAX are logical or, PRODUCT and
// MIN logical and. AVG needs a floating dtype. float16 and bfloat16 are reduced in float32.
enum class ReduceOp { Sum, Avg, Max, Min, Product };
const char* reduce_op_name(ReduceOp op);

// The handle of a started operation. An op finishes in the order it was started relative to other ops of its group;
// its output tensors hold the result only after wait() returns.
class Work {
 public:
  virtual ~Work() = default;
  // True when the op has finished (successfully or not); never blocks, and drives progress.
  virtual bool is_completed() = 0;
  // Blocks until the op has finished and its outputs are written; raises when it failed or exceeded the group's
  // timeout (the message names the op, its sequence number and, where known, the ranks that did not take part).
  virtual void wait() = 0;
};

struct ProcessGroupOptions {
  // Every blocking wait gives up after this long and raises (init_process_group(timeout=...)).
  std::chrono::milliseconds timeout{std::chrono::minutes(30)};
};

// A group of `size()` processes; this process is `rank()` in it (0-based). All ranks must call the collectives of a
// group in the same order with matching arguments. Ranks in the arguments (root, src, dst) are ranks in this group.
// Every op returns a started Work; the Python front end waits on it unless async_op=True. Tensors may be of any dtype
// and layout (non-contiguous tensors go through a contiguous staging copy); a backend raises NotImplementedError
// naming the device for tensors it cannot reach.
class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend_name() const = 0;
  const ProcessGroupOptions& options() const { return options_; }

  // tensor <- op over every rank's tensor.
  virtual std::shared_ptr<Work> all_reduce(const Tensor& tensor, ReduceOp op) = 0;
  // tensor <- root's tensor.
  virtual std::shared_ptr<Work> broadcast(const Tensor& tensor, int root) = 0;
  // On rank `root`: tensor <- op over every rank's tensor; other ranks' tensors are left unchanged.
  virtual std::shared_ptr<Work> reduce(const Tensor& tensor, int root, ReduceOp op) = 0;
  // outputs[r] <- rank r's input (outputs.size() == size(), each the input's shape and dtype).
  virtual std::shared_ptr<Work> all_gather(const std::vector<Tensor>& outputs, const Tensor& input) = 0;
  // output (size() * input.numel() elements, rank-major) <- every rank's input.
  virtual std::shared_ptr<Work> all_gather_into_tensor(const Tensor& output, const Tensor& input) = 0;
  // output <- op over every rank's inputs[rank()] (inputs.size() == size(), each the output's shape and dtype).
  virtual std::shared_ptr<Work> reduce_scatter(const Tensor& output, const std::vector<Tensor>& inputs,
                                               ReduceOp op) = 0;
  // output <- op over every rank's input chunk number rank() (input has size() * output.numel() elements).
  virtual std::shared_ptr<Work> reduce_scatter_tensor(const Tensor& output, const Tensor& input, ReduceOp op) = 0;
  // outputs[r] <- rank r's inputs[rank()]. Sizes may differ per pair but must agree between sender and receiver.
  virtual std::shared_ptr<Work> all_to_all(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs) = 0;
  // On `root`: outputs[r] <- rank r's input (outputs is empty on the other ranks).
  virtual std::shared_ptr<Work> gather(const std::vector<Tensor>& outputs, const Tensor& input, int root) = 0;
  // output <- root's inputs[rank()] (inputs is empty on the other ranks).
  virtual std::shared_ptr<Work> scatter(const Tensor& output, const std::vector<Tensor>& inputs, int root) = 0;
  // Point to point; a message with `tag` from this rank to `dst` matches a recv with the same tag from this rank.
  virtual std::shared_ptr<Work> send(const Tensor& tensor, int dst, int tag) = 0;
  virtual std::shared_ptr<Work> recv(const Tensor& tensor, int src, int tag) = 0;
  virtual std::shared_ptr<Work> barrier() = 0;

  // A sub-group of the given ranks of this group (sorted; its rank i is the i-th smallest). Collective: every rank of
  // this group calls it with the same list. Returns null on ranks that are not members.
  virtual std::shared_ptr<ProcessGroup> new_group(const std::vector<int>& ranks) = 0;
  // How many ops this group has started (the sequence number of the next one).
  virtual uint64_t sequence_number() const = 0;
  // Ends every process of the job now (after an unrecoverable error on this rank, so the others do not wait for it
  // until their timeout). Does not return.
  [[noreturn]] virtual void abort(int exit_code) = 0;

 protected:
  explicit ProcessGroup(ProcessGroupOptions options) : options_(options) {}
  ProcessGroupOptions options_;
};

// ---- the registry of process-group backends ----
// A backend creates the world group of this process: which rank it is and how many there are come from its launcher
// (mpirun for MPI). Several groups may be created from one backend only where it says so.
using ProcessGroupFactory = std::function<std::shared_ptr<ProcessGroup>(const ProcessGroupOptions&)>;

// Registers a backend under a lowercase name ("mpi", "nccl", a vendor's). Registering a name twice raises.
// Thread-safe; built-in backends are registered on first use of the registry.
void register_process_group_backend(const std::string& name, ProcessGroupFactory factory);
bool has_process_group_backend(const std::string& name);
// Names of the registered backends, sorted.
std::vector<std::string> process_group_backends();
// The world group of backend `name`; raises ValueError naming the registered backends when there is none by that name.
std::shared_ptr<ProcessGroup> create_process_group(const std::string& name, const ProcessGroupOptions& options = {});

// Whether this build of loom has the MPI backend (false when CMake did not find MPI: the no_mpi stub).
bool mpi_available();

namespace detail {
// Registers the built-in backends (MPI when built with it); called once by the registry.
void register_builtin_process_groups();
}  // namespace detail

}  // namespace loom::distributed
