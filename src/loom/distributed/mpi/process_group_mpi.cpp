// The MPI process group: every op is one non-blocking MPI call (MPI_Iallreduce, MPI_Ibcast, ...) on a duplicate of
// MPI_COMM_WORLD (or a split of it), started on the calling thread so all ranks start ops in program order, and
// finished by Work::wait, which polls MPI_Test against the group's deadline instead of blocking in MPI: a rank that
// died or never arrives produces an error naming the op, its sequence number and the ranks known to be gone.
#include <mpi.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <thread>

#include "loom/core/error.h"
#include "loom/distributed/process_group.h"
#include "loom/ops/creation.h"
#include "loom/ops/shape.h"

namespace loom::distributed {

bool mpi_available() { return true; }

namespace {

using Clock = std::chrono::steady_clock;

// MPI calls are serialised through this lock when the library gives less than MPI_THREAD_MULTIPLE.
std::mutex g_mpi_mutex;
bool g_serialize = false;
// Set when an op failed or timed out: MPI may still reference its buffers, and MPI_Finalize would wait for the dead
// peer, so the process then aborts the job at exit instead of finalising.
std::atomic<bool> g_broken{false};

struct MpiLock {
  std::unique_lock<std::mutex> lock;
  MpiLock() {
    if (g_serialize) lock = std::unique_lock<std::mutex>(g_mpi_mutex);
  }
};

std::string mpi_error_string(int rc) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(rc, text, &length) != MPI_SUCCESS) return "MPI error " + std::to_string(rc);
  return std::string(text, length);
}

// After a failed op MPI_Finalize would wait for the dead peer: MPI_Abort instead ends the job (mpirun stops the other
// ranks and exits non-zero) once this rank has printed its error.
void finalize_at_exit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  if (g_broken) MPI_Abort(MPI_COMM_WORLD, 1);
  MPI_Finalize();
}

// MPI_Init_thread once per process (MPI cannot be initialised again after MPI_Finalize, so groups never finalise it:
// the process does at exit).
void ensure_mpi_initialized() {
  static std::once_flag once;
  std::call_once(once, [] {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    LOOM_CHECK(!finalized, Runtime, "init_process_group: MPI was already finalised in this process");
    int provided = MPI_THREAD_SINGLE;
    if (!initialized) {
      int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
      LOOM_CHECK(rc == MPI_SUCCESS, Runtime, "init_process_group: MPI_Init_thread failed: ", mpi_error_string(rc));
      std::atexit(finalize_at_exit);
    } else {
      MPI_Query_thread(&provided);
    }
    LOOM_CHECK(provided >= MPI_THREAD_SERIALIZED, Runtime,
               "init_process_group: the MPI library gives only thread level ", provided,
               "; loom needs MPI_THREAD_SERIALIZED or MPI_THREAD_MULTIPLE");
    g_serialize = provided < MPI_THREAD_MULTIPLE;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  });
}

// What every group of this process shares: where each world rank runs, to tell a dead peer from a slow one.
struct World {
  int rank = 0;
  std::vector<long> pids;
  std::vector<uint64_t> hosts;  // a hash of each rank's host name
};

uint64_t host_hash() {
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int length = 0;
  MPI_Get_processor_name(name, &length);
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (int i = 0; i < length; ++i) h = (h ^ static_cast<unsigned char>(name[i])) * 1099511628211ull;
  return h;
}

// True when `pid` (a process on this host) has exited: gone, or a zombie its parent has not reaped yet.
bool process_exited(long pid) {
  if (kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] == 'Z';
}

DType reduce_wire_dtype(DType dtype) {
  return dtype == DType::Float16 || dtype == DType::BFloat16 ? DType::Float32 : dtype;
}

// The MPI type of a wire dtype: bytes moved as they are (bool as 0/1 bytes, 16-bit floats as raw 16-bit words).
MPI_Datatype mpi_type(DType dtype) {
  switch (dtype) {
    case DType::Bool:
    case DType::UInt8: return MPI_UINT8_T;
    case DType::Int8: return MPI_INT8_T;
    case DType::Int16: return MPI_INT16_T;
    case DType::Int32: return MPI_INT32_T;
    case DType::Int64: return MPI_INT64_T;
    case DType::Float16:
    case DType::BFloat16: return MPI_UINT16_T;
    case DType::Float32: return MPI_FLOAT;
    case DType::Float64: return MPI_DOUBLE;
  }
  return MPI_BYTE;
}

// The MPI op for `op` on the wire dtype; AVG is a SUM divided afterwards. bool: or for SUM/MAX, and for PRODUCT/MIN.
MPI_Op mpi_op(ReduceOp op, DType wire) {
  bool logical = wire == DType::Bool;
  switch (op) {
    case ReduceOp::Sum: return logical ? MPI_MAX : MPI_SUM;
    case ReduceOp::Avg: return MPI_SUM;
    case ReduceOp::Max: return MPI_MAX;
    case ReduceOp::Min: return MPI_MIN;
    case ReduceOp::Product: return logical ? MPI_MIN : MPI_PROD;
  }
  return MPI_SUM;
}

int checked_count(int64_t n, const char* op) {
  LOOM_CHECK(n <= INT_MAX, Value, op, ": ", n, " elements is more than MPI can move in one call (", INT_MAX, ")");
  return static_cast<int>(n);
}

// A contiguous buffer of the wire dtype standing in for a caller's tensor; the tensor itself when it already is one.
struct Staged {
  Tensor user;
  Tensor buffer;
  bool aliases = false;
  void* data() const { return buffer.data_ptr(); }
};

Staged stage(const Tensor& t, DType wire, bool load) {
  Staged s{t, t, true};
  if (t.is_contiguous() && t.dtype() == wire) return s;
  s.aliases = false;
  if (load) {
    s.buffer = contiguous(to_dtype(t.detach(), wire));
    if (s.buffer.is_same(t) || s.buffer.storage() == t.storage()) s.buffer = clone(s.buffer);
  } else {
    s.buffer = empty(t.sizes(), wire);
  }
  return s;
}

// Writes a staged result back into the caller's tensor (casting to its dtype, into its layout).
void unstage(const Staged& s) {
  if (!s.aliases) loom::detail::copy_data(s.user, s.buffer);
  s.user.bump_version();
}

// A contiguous view of elements [offset, offset + numel(sizes)) of a contiguous buffer.
Tensor slice_of(const Tensor& buffer, const Shape& sizes, int64_t offset) {
  return Tensor::make_view(buffer, sizes, contiguous_strides(sizes), buffer.offset() + offset);
}

void divide_in_place(const Tensor& buffer, int size) {
  int64_t n = buffer.numel();
  if (buffer.dtype() == DType::Float32) {
    float* p = buffer.data<float>();
    for (int64_t i = 0; i < n; ++i) p[i] /= static_cast<float>(size);
  } else if (buffer.dtype() == DType::Float64) {
    double* p = buffer.data<double>();
    for (int64_t i = 0; i < n; ++i) p[i] /= static_cast<double>(size);
  }
}

class MpiProcessGroup;

// What a Work needs of its group after the call that started it returned: names and the peers to check.
struct GroupInfo {
  std::shared_ptr<World> world;
  std::vector<int> world_ranks;  // group rank -> world rank
  std::chrono::milliseconds timeout;
};

class MpiWork final : public Work {
 public:
  MpiWork(std::shared_ptr<GroupInfo> info, const char* op, uint64_t seq)
      : info_(std::move(info)), op_(op), seq_(seq), start_(Clock::now()) {}

  MPI_Request* request() { return &request_; }
  void on_finish(std::function<void()> finish) { finish_ = std::move(finish); }

  bool is_completed() override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (done_ || !error_.empty()) return true;
    return test_locked();
  }

  void wait() override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto deadline = start_ + info_->timeout;
    auto next_peer_check = Clock::now() + std::chrono::milliseconds(200);
    int spins = 0;
    while (!done_ && error_.empty()) {
      if (test_locked()) break;
      auto now = Clock::now();
      if (now >= next_peer_check) {
        std::string dead = dead_peers();
        if (!dead.empty()) fail_locked(dead + " while this rank waited");
        next_peer_check = now + std::chrono::milliseconds(200);
      }
      if (error_.empty() && now >= deadline) {
        std::string dead = dead_peers();
        fail_locked("timed out after " + std::to_string(info_->timeout.count()) + " ms" +
                    (dead.empty() ? "; every other rank of the group on this host is still running, so a rank has not "
                                    "reached this op (a different order of collectives, or a slow or stuck rank)"
                                  : "; " + dead));
      }
      // Spin briefly for latency, then back off so oversubscribed ranks leave the cores to the others.
      if (++spins < 64) std::this_thread::yield();
      else std::this_thread::sleep_for(std::chrono::microseconds(spins < 1000 ? 20 : 200));
    }
    if (!error_.empty()) fail(ErrorKind::Runtime, error_);
  }

 private:
  // One MPI_Test; on completion runs the finishing step (write-back) once. Returns true when done or failed.
  bool test_locked() {
    int flag = 0;
    int rc;
    {
      MpiLock lock;
      rc = MPI_Test(&request_, &flag, MPI_STATUS_IGNORE);
    }
    if (rc != MPI_SUCCESS) {
      std::string dead = dead_peers();
      fail_locked("MPI reported: " + mpi_error_string(rc) + (dead.empty() ? "" : "; " + dead));
      return true;
    }
    if (!flag) return false;
    done_ = true;
    if (finish_) {
      finish_();
      finish_ = nullptr;
    }
    return true;
  }

  void fail_locked(const std::string& why) {
    g_broken = true;
    std::string ranks;
    for (int w : info_->world_ranks) ranks += (ranks.empty() ? "" : ", ") + std::to_string(w);
    error_ = "[" + std::string(op_) + "] operation " + std::to_string(seq_) + " of the process group of ranks [" +
             ranks + "] failed on rank " + std::to_string(info_->world->rank) + ": " + why +
             ". The process group is unusable now; end the job (its buffers may still be in use by MPI).";
  }

  // "rank 1 (pid 123) has exited" for each peer of the group on this host that is gone; empty when none is.
  std::string dead_peers() const {
    const World& w = *info_->world;
    std::string out;
    for (int world_rank : info_->world_ranks) {
      if (world_rank == w.rank || w.hosts[world_rank] != w.hosts[w.rank]) continue;
      if (process_exited(w.pids[world_rank]))
        out += (out.empty() ? "" : ", ") + ("rank " + std::to_string(world_rank) + " (pid " +
                                            std::to_string(w.pids[world_rank]) + ") has exited");
    }
    return out;
  }

  std::shared_ptr<GroupInfo> info_;
  const char* op_;
  uint64_t seq_;
  Clock::time_point start_;
  MPI_Request request_ = MPI_REQUEST_NULL;
  std::function<void()> finish_;
  std::mutex mutex_;
  bool done_ = false;
  std::string error_;
};

class MpiProcessGroup final : public ProcessGroup {
 public:
  MpiProcessGroup(MPI_Comm comm, std::shared_ptr<World> world, std::vector<int> world_ranks,
                  const ProcessGroupOptions& options)
      : ProcessGroup(options), comm_(comm) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    info_ = std::make_shared<GroupInfo>(GroupInfo{std::move(world), std::move(world_ranks), options.timeout});
  }
  // The communicator is not freed: MPI_Comm_free is collective in effect, and a group may be dropped on one rank
  // only (or after a failure). MPI_Finalize releases it.
  ~MpiProcessGroup() override = default;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend_name() const override { return "mpi"; }
  uint64_t sequence_number() const override { return seq_; }
  [[noreturn]] void abort(int exit_code) override {
    g_broken = true;
    MPI_Abort(comm_, exit_code);
    std::_Exit(exit_code);
  }

  std::shared_ptr<Work> all_reduce(const Tensor& tensor, ReduceOp op) override {
    const char* name = "all_reduce";
    check_reduce(tensor, op, name);
    DType wire = reduce_wire_dtype(tensor.dtype());
    Staged s = stage(tensor, wire, true);
    int count = checked_count(tensor.numel(), name);
    return start(name, [&](MPI_Request* r) {
      return MPI_Iallreduce(MPI_IN_PLACE, s.data(), count, mpi_type(wire), mpi_op(op, wire), comm_, r);
    }, [s, op, n = size_] {
      if (op == ReduceOp::Avg) divide_in_place(s.buffer, n);
      unstage(s);
    });
  }

  std::shared_ptr<Work> broadcast(const Tensor& tensor, int root) override {
    const char* name = "broadcast";
    check_tensor(tensor, name, "tensor");
    check_rank(root, name, "src");
    Staged s = stage(tensor, tensor.dtype(), true);
    int count = checked_count(tensor.numel(), name);
    return start(name, [&](MPI_Request* r) {
      return MPI_Ibcast(s.data(), count, mpi_type(tensor.dtype()), root, comm_, r);
    }, [s, write = rank_ != root] {
      if (write) unstage(s);
    });
  }

  std::shared_ptr<Work> reduce(const Tensor& tensor, int root, ReduceOp op) override {
    const char* name = "reduce";
    check_reduce(tensor, op, name);
    check_rank(root, name, "dst");
    DType wire = reduce_wire_dtype(tensor.dtype());
    bool is_root = rank_ == root;
    Staged s = stage(tensor, wire, true);
    int count = checked_count(tensor.numel(), name);
    return start(name, [&](MPI_Request* r) {
      return MPI_Ireduce(is_root ? MPI_IN_PLACE : s.data(), is_root ? s.data() : nullptr, count, mpi_type(wire),
                         mpi_op(op, wire), root, comm_, r);
    }, [s, op, n = size_, is_root] {
      if (!is_root) return;
      if (op == ReduceOp::Avg) divide_in_place(s.buffer, n);
      unstage(s);
    });
  }

  std::shared_ptr<Work> all_gather(const std::vector<Tensor>& outputs, const Tensor& input) override {
    const char* name = "all_gather";
    check_tensor(input, name, "input");
    check_list(outputs, input, name, "tensor_list");
    Staged in = stage(input, input.dtype(), true);
    int64_t n = input.numel();
    Tensor gathered = empty({size_ * n}, input.dtype());
    int count = checked_count(n, name);
    checked_count(size_ * n, name);
    return start(name, [&](MPI_Request* r) {
      MPI_Datatype type = mpi_type(input.dtype());
      return MPI_Iallgather(in.data(), count, type, gathered.data_ptr(), count, type, comm_, r);
    }, [in, gathered, outputs, n] {
      for (size_t i = 0; i < outputs.size(); ++i) {
        loom::detail::copy_data(outputs[i], slice_of(gathered, outputs[i].sizes(), static_cast<int64_t>(i) * n));
        outputs[i].bump_version();
      }
    });
  }

  std::shared_ptr<Work> all_gather_into_tensor(const Tensor& output, const Tensor& input) override {
    const char* name = "all_gather_into_tensor";
    check_tensor(input, name, "input");
    check_tensor(output, name, "output");
    check_same_dtype(output, input, name);
    LOOM_CHECK(output.numel() == size_ * input.numel(), Value, name, ": the output has ", output.numel(),
               " elements but must have world size (", size_, ") x the input's ", input.numel());
    Staged in = stage(input, input.dtype(), true);
    Staged out = stage(output, output.dtype(), false);
    int count = checked_count(input.numel(), name);
    checked_count(output.numel(), name);
    return start(name, [&](MPI_Request* r) {
      MPI_Datatype type = mpi_type(input.dtype());
      return MPI_Iallgather(in.data(), count, type, out.data(), count, type, comm_, r);
    }, [in, out] { unstage(out); });
  }

  std::shared_ptr<Work> reduce_scatter(const Tensor& output, const std::vector<Tensor>& inputs,
                                       ReduceOp op) override {
    const char* name = "reduce_scatter";
    check_reduce(output, op, name);
    check_list(inputs, output, name, "input_list");
    DType wire = reduce_wire_dtype(output.dtype());
    int64_t n = output.numel();
    Tensor packed = empty({size_ * n}, wire);
    for (size_t i = 0; i < inputs.size(); ++i)
      loom::detail::copy_data(slice_of(packed, inputs[i].sizes(), static_cast<int64_t>(i) * n), inputs[i]);
    return reduce_scatter_packed(name, output, packed, op);
  }

  std::shared_ptr<Work> reduce_scatter_tensor(const Tensor& output, const Tensor& input, ReduceOp op) override {
    const char* name = "reduce_scatter_tensor";
    check_reduce(output, op, name);
    check_tensor(input, name, "input");
    check_same_dtype(output, input, name);
    LOOM_CHECK(input.numel() == size_ * output.numel(), Value, name, ": the input has ", input.numel(),
               " elements but must have world size (", size_, ") x the output's ", output.numel());
    Staged in = stage(input, reduce_wire_dtype(input.dtype()), true);
    return reduce_scatter_packed(name, output, in.buffer, op);
  }

  std::shared_ptr<Work> all_to_all(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs) override {
    const char* name = "all_to_all";
    LOOM_CHECK(static_cast<int>(outputs.size()) == size_ && static_cast<int>(inputs.size()) == size_, Value, name,
               ": expected ", size_, " output and ", size_, " input tensors (one per rank), got ", outputs.size(),
               " and ", inputs.size());
    DType dtype = inputs[0].dtype();
    std::vector<int> send_counts(size_), send_offsets(size_), recv_counts(size_), recv_offsets(size_);
    int64_t send_total = 0, recv_total = 0;
    for (int i = 0; i < size_; ++i) {
      check_tensor(inputs[i], name, "input_tensor_list");
      check_tensor(outputs[i], name, "output_tensor_list");
      check_same_dtype(inputs[i], inputs[0], name);
      check_same_dtype(outputs[i], inputs[0], name);
      send_counts[i] = checked_count(inputs[i].numel(), name);
      recv_counts[i] = checked_count(outputs[i].numel(), name);
      send_offsets[i] = checked_count(send_total, name);
      recv_offsets[i] = checked_count(recv_total, name);
      send_total += inputs[i].numel();
      recv_total += outputs[i].numel();
    }
    Tensor send = empty({send_total}, dtype), recv = empty({recv_total}, dtype);
    for (int i = 0; i < size_; ++i)
      loom::detail::copy_data(slice_of(send, inputs[i].sizes(), send_offsets[i]), inputs[i]);
    return start(name, [&](MPI_Request* r) {
      MPI_Datatype type = mpi_type(dtype);
      return MPI_Ialltoallv(send.data_ptr(), send_counts.data(), send_offsets.data(), type, recv.data_ptr(),
                            recv_counts.data(), recv_offsets.data(), type, comm_, r);
    }, [send, recv, outputs, recv_offsets, send_counts, recv_counts] {
      for (size_t i = 0; i < outputs.size(); ++i) {
        loom::detail::copy_data(outputs[i], slice_of(recv, outputs[i].sizes(), recv_offsets[i]));
        outputs[i].bump_version();
      }
    });
  }

  std::shared_ptr<Work> gather(const std::vector<Tensor>& outputs, const Tensor& input, int root) override {
    const char* name = "gather";
    check_tensor(input, name, "tensor");
    check_rank(root, name, "dst");
    bool is_root = rank_ == root;
    if (is_root) check_list(outputs, input, name, "gather_list");
    else LOOM_CHECK(outputs.empty(), Value, name, ": gather_list must be given only on the destination rank");
    Staged in = stage(input, input.dtype(), true);
    int64_t n = input.numel();
    Tensor gathered = is_root ? empty({size_ * n}, input.dtype()) : Tensor();
    int count = checked_count(n, name);
    checked_count(size_ * n, name);
    return start(name, [&](MPI_Request* r) {
      MPI_Datatype type = mpi_type(input.dtype());
      return MPI_Igather(in.data(), count, type, is_root ? gathered.data_ptr() : nullptr, count, type, root, comm_, r);
    }, [in, gathered, outputs, n] {
      for (size_t i = 0; i < outputs.size(); ++i) {
        loom::detail::copy_data(outputs[i], slice_of(gathered, outputs[i].sizes(), static_cast<int64_t>(i) * n));
        outputs[i].bump_version();
      }
    });
  }

  std::shared_ptr<Work> scatter(const Tensor& output, const std::vector<Tensor>& inputs, int root) override {
    const char* name = "scatter";
    check_tensor(output, name, "tensor");
    check_rank(root, name, "src");
    bool is_root = rank_ == root;
    if (is_root) check_list(inputs, output, name, "scatter_list");
    else LOOM_CHECK(inputs.empty(), Value, name, ": scatter_list must be given only on the source rank");
    int64_t n = output.numel();
    Tensor packed;
    if (is_root) {
      packed = empty({size_ * n}, output.dtype());
      for (size_t i = 0; i < inputs.size(); ++i)
        loom::detail::copy_data(slice_of(packed, inputs[i].sizes(), static_cast<int64_t>(i) * n), inputs[i]);
    }
    Staged out = stage(output, output.dtype(), false);
    int count = checked_count(n, name);
    checked_count(size_ * n, name);
    return start(name, [&](MPI_Request* r) {
      MPI_Datatype type = mpi_type(output.dtype());
      return MPI_Iscatter(is_root ? packed.data_ptr() : nullptr, count, type, out.data(), count, type, root, comm_, r);
    }, [packed, out] { unstage(out); });
  }

  std::shared_ptr<Work> send(const Tensor& tensor, int dst, int tag) override {
    const char* name = "send";
    check_tensor(tensor, name, "tensor");
    check_peer(dst, name, "dst");
    Staged s = stage(tensor, tensor.dtype(), true);
    int count = checked_count(tensor.numel(), name);
    return start(name, [&](MPI_Request* r) {
      return MPI_Isend(s.data(), count, mpi_type(tensor.dtype()), dst, tag, comm_, r);
    }, [s] {});
  }

  std::shared_ptr<Work> recv(const Tensor& tensor, int src, int tag) override {
    const char* name = "recv";
    check_tensor(tensor, name, "tensor");
    check_peer(src, name, "src");
    Staged s = stage(tensor, tensor.dtype(), false);
    int count = checked_count(tensor.numel(), name);
    return start(name, [&](MPI_Request* r) {
      return MPI_Irecv(s.data(), count, mpi_type(tensor.dtype()), src, tag, comm_, r);
    }, [s] { unstage(s); });
  }

  std::shared_ptr<Work> barrier() override {
    return start("barrier", [&](MPI_Request* r) { return MPI_Ibarrier(comm_, r); }, [] {});
  }

  std::shared_ptr<ProcessGroup> new_group(const std::vector<int>& ranks) override {
    const char* name = "new_group";
    std::vector<int> sorted = ranks;
    std::sort(sorted.begin(), sorted.end());
    LOOM_CHECK(!sorted.empty(), Value, name, ": ranks must not be empty");
    for (size_t i = 0; i < sorted.size(); ++i) {
      check_rank(sorted[i], name, "ranks");
      LOOM_CHECK(i == 0 || sorted[i] != sorted[i - 1], Value, name, ": rank ", sorted[i], " is listed twice");
    }
    int index = static_cast<int>(std::find(sorted.begin(), sorted.end(), rank_) - sorted.begin());
    bool member = index < static_cast<int>(sorted.size());
    ++seq_;
    MPI_Comm sub = MPI_COMM_NULL;
    int rc;
    {
      MpiLock lock;
      rc = MPI_Comm_split(comm_, member ? 0 : MPI_UNDEFINED, index, &sub);
    }
    LOOM_CHECK(rc == MPI_SUCCESS, Runtime, name, ": MPI_Comm_split failed: ", mpi_error_string(rc));
    if (!member) return nullptr;
    MPI_Comm_set_errhandler(sub, MPI_ERRORS_RETURN);
    std::vector<int> world_ranks;
    for (int r : sorted) world_ranks.push_back(info_->world_ranks[r]);
    return std::make_shared<MpiProcessGroup>(sub, info_->world, std::move(world_ranks), options_);
  }

 private:
  // Starts one MPI op: `call` posts it into the request; `finish` runs once it has completed.
  template <class Call>
  std::shared_ptr<Work> start(const char* name, Call&& call, std::function<void()> finish) {
    LOOM_CHECK(!g_broken, Runtime, "[", name, "] an earlier operation failed or timed out, so MPI is unusable in this ",
               "process; end the job and restart it");
    auto work = std::make_shared<MpiWork>(info_, name, seq_++);
    int rc;
    {
      MpiLock lock;
      rc = call(work->request());
    }
    LOOM_CHECK(rc == MPI_SUCCESS, Runtime, "[", name, "] MPI could not start operation ", seq_ - 1, ": ",
               mpi_error_string(rc));
    work->on_finish(std::move(finish));
    return work;
  }

  void check_tensor(const Tensor& t, const char* op, const char* arg) const {
    LOOM_CHECK(t.defined(), Value, op, ": ", arg, " is not a tensor");
    LOOM_CHECK(t.device().is_cpu(), NotImplemented, op, ": the MPI backend reaches tensors on the CPU only, but ", arg,
               " is on device '", t.device().str(), "' (move it with .cpu(), or use a backend for that device)");
  }
  void check_same_dtype(const Tensor& a, const Tensor& b, const char* op) const {
    LOOM_CHECK(a.dtype() == b.dtype(), Type, op, ": tensors must have one dtype, got ", dtype_name(a.dtype()), " and ",
               dtype_name(b.dtype()));
  }
  void check_reduce(const Tensor& t, ReduceOp op, const char* name) const {
    check_tensor(t, name, "tensor");
    LOOM_CHECK(op != ReduceOp::Avg || is_floating(t.dtype()), Type, name, ": ReduceOp.AVG needs a floating dtype, got ",
               dtype_name(t.dtype()));
  }
  void check_rank(int r, const char* op, const char* arg) const {
    LOOM_CHECK(r >= 0 && r < size_, Value, op, ": ", arg, " rank ", r, " is out of range for a group of ", size_,
               " ranks");
  }
  void check_peer(int r, const char* op, const char* arg) const {
    check_rank(r, op, arg);
    LOOM_CHECK(r != rank_, Value, op, ": ", arg, " is this rank (", r, "); a rank cannot send to or receive from itself");
  }
  // A list with one tensor per rank, each with `like`'s shape and dtype.
  void check_list(const std::vector<Tensor>& list, const Tensor& like, const char* op, const char* arg) const {
    LOOM_CHECK(static_cast<int>(list.size()) == size_, Value, op, ": ", arg, " must have one tensor per rank (", size_,
               "), got ", list.size());
    for (const Tensor& t : list) {
      check_tensor(t, op, arg);
      check_same_dtype(t, like, op);
      LOOM_CHECK(t.sizes() == like.sizes(), Value, op, ": every tensor of ", arg, " must have shape ",
                 shape_str(like.sizes()), ", got ", shape_str(t.sizes()));
    }
  }

  std::shared_ptr<Work> reduce_scatter_packed(const char* name, const Tensor& output, const Tensor& packed,
                                              ReduceOp op) {
    DType wire = packed.dtype();
    Staged out = stage(output, wire, false);
    int count = checked_count(output.numel(), name);
    checked_count(packed.numel(), name);
    return start(name, [&](MPI_Request* r) {
      return MPI_Ireduce_scatter_block(packed.data_ptr(), out.data(), count, mpi_type(wire), mpi_op(op, wire), comm_, r);
    }, [packed, out, op, n = size_] {
      if (op == ReduceOp::Avg) divide_in_place(out.buffer, n);
      unstage(out);
    });
  }

  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
  uint64_t seq_ = 0;
  std::shared_ptr<GroupInfo> info_;
};

std::shared_ptr<ProcessGroup> create_world(const ProcessGroupOptions& options) {
  ensure_mpi_initialized();
  MPI_Comm comm = MPI_COMM_NULL;
  int rc;
  {
    MpiLock lock;
    rc = MPI_Comm_dup(MPI_COMM_WORLD, &comm);
  }
  LOOM_CHECK(rc == MPI_SUCCESS, Runtime, "init_process_group: MPI_Comm_dup failed: ", mpi_error_string(rc));
  MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
  auto world = std::make_shared<World>();
  int size = 1;
  MPI_Comm_rank(comm, &world->rank);
  MPI_Comm_size(comm, &size);
  // Where every rank runs, so a wait can tell a peer that died (same host) from one that is late.
  long pid = static_cast<long>(getpid());
  uint64_t host = host_hash();
  world->pids.resize(size);
  world->hosts.resize(size);
  {
    MpiLock lock;
    rc = MPI_Allgather(&pid, 1, MPI_LONG, world->pids.data(), 1, MPI_LONG, comm);
    if (rc == MPI_SUCCESS) rc = MPI_Allgather(&host, 1, MPI_UINT64_T, world->hosts.data(), 1, MPI_UINT64_T, comm);
  }
  LOOM_CHECK(rc == MPI_SUCCESS, Runtime, "init_process_group: exchanging process ids failed: ", mpi_error_string(rc));
  std::vector<int> world_ranks(size);
  for (int i = 0; i < size; ++i) world_ranks[i] = i;
  return std::make_shared<MpiProcessGroup>(comm, std::move(world), std::move(world_ranks), options);
}

}  // namespace

namespace detail {
void register_builtin_process_groups() { register_process_group_backend("mpi", create_world); }
}  // namespace detail

}  // namespace loom::distributed
