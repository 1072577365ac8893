// loom._C._distributed: ProcessGroup, Work, ReduceOp and the registry of process-group backends.
// python/loom/distributed/ builds torch.distributed's API on these (global ranks, default group, object collectives).
#include <nanobind/stl/shared_ptr.h>

#include "convert.h"
#include "loom/distributed/process_group.h"

namespace loom::python {

namespace dist = loom::distributed;

namespace {
// Runs a call that may block in communication without holding the GIL (other Python threads keep running).
template <class F>
auto released(F&& f) {
  nb::gil_scoped_release release;
  return f();
}
}  // namespace

// Everything goes into loom._C._distributed (loom.distributed re-exports it), so `from loom._C import *` in loom's
// __init__ does not put ProcessGroup or Work into the loom namespace.
void bind_distributed(nb::module_& parent) {
  nb::module_ m = parent.def_submodule("_distributed", "loom.distributed's C++ core");
  nb::enum_<dist::ReduceOp>(m, "ReduceOp", "How reducing collectives combine values (torch.distributed.ReduceOp).")
      .value("SUM", dist::ReduceOp::Sum)
      .value("AVG", dist::ReduceOp::Avg)
      .value("MAX", dist::ReduceOp::Max)
      .value("MIN", dist::ReduceOp::Min)
      .value("PRODUCT", dist::ReduceOp::Product);

  nb::class_<dist::Work>(m, "Work", "The handle of a started collective (async_op=True).")
      .def("wait", [](dist::Work& w) { released([&] { w.wait(); return 0; }); return true; },
           "Blocks until the op has finished (raises on failure or timeout); returns True.")
      .def("is_completed", [](dist::Work& w) { return released([&] { return w.is_completed(); }); },
           "True when the op has finished; never blocks.");

  using PG = dist::ProcessGroup;
  nb::class_<PG>(m, "ProcessGroup", "A group of ranks that run collectives together; ranks are group ranks.")
      .def("rank", &PG::rank)
      .def("size", &PG::size)
      .def("backend_name", &PG::backend_name)
      .def("sequence_number", &PG::sequence_number)
      .def("timeout_ms", [](const PG& g) { return static_cast<int64_t>(g.options().timeout.count()); })
      .def("all_reduce", [](PG& g, const Tensor& t, dist::ReduceOp op) {
        return released([&] { return g.all_reduce(t, op); });
      }, nb::arg("tensor"), nb::arg("op"))
      .def("broadcast", [](PG& g, const Tensor& t, int root) { return released([&] { return g.broadcast(t, root); }); },
           nb::arg("tensor"), nb::arg("root"))
      .def("reduce", [](PG& g, const Tensor& t, int root, dist::ReduceOp op) {
        return released([&] { return g.reduce(t, root, op); });
      }, nb::arg("tensor"), nb::arg("root"), nb::arg("op"))
      .def("all_gather", [](PG& g, const std::vector<Tensor>& out, const Tensor& in) {
        return released([&] { return g.all_gather(out, in); });
      }, nb::arg("outputs"), nb::arg("input"))
      .def("all_gather_into_tensor", [](PG& g, const Tensor& out, const Tensor& in) {
        return released([&] { return g.all_gather_into_tensor(out, in); });
      }, nb::arg("output"), nb::arg("input"))
      .def("reduce_scatter", [](PG& g, const Tensor& out, const std::vector<Tensor>& in, dist::ReduceOp op) {
        return released([&] { return g.reduce_scatter(out, in, op); });
      }, nb::arg("output"), nb::arg("inputs"), nb::arg("op"))
      .def("reduce_scatter_tensor", [](PG& g, const Tensor& out, const Tensor& in, dist::ReduceOp op) {
        return released([&] { return g.reduce_scatter_tensor(out, in, op); });
      }, nb::arg("output"), nb::arg("input"), nb::arg("op"))
      .def("all_to_all", [](PG& g, const std::vector<Tensor>& out, const std::vector<Tensor>& in) {
        return released([&] { return g.all_to_all(out, in); });
      }, nb::arg("outputs"), nb::arg("inputs"))
      .def("gather", [](PG& g, const std::vector<Tensor>& out, const Tensor& in, int root) {
        return released([&] { return g.gather(out, in, root); });
      }, nb::arg("outputs"), nb::arg("input"), nb::arg("root"))
      .def("scatter", [](PG& g, const Tensor& out, const std::vector<Tensor>& in, int root) {
        return released([&] { return g.scatter(out, in, root); });
      }, nb::arg("output"), nb::arg("inputs"), nb::arg("root"))
      .def("send", [](PG& g, const Tensor& t, int dst, int tag) { return released([&] { return g.send(t, dst, tag); }); },
           nb::arg("tensor"), nb::arg("dst"), nb::arg("tag"))
      .def("recv", [](PG& g, const Tensor& t, int src, int tag) { return released([&] { return g.recv(t, src, tag); }); },
           nb::arg("tensor"), nb::arg("src"), nb::arg("tag"))
      .def("abort", [](PG& g, int code) { g.abort(code); }, nb::arg("exit_code"),
           "Ends every process of the job now; does not return.")
      .def("barrier", [](PG& g) { return released([&] { return g.barrier(); }); })
      .def("new_group", [](PG& g, const std::vector<int>& ranks) {
        return released([&] { return g.new_group(ranks); });
      }, nb::arg("ranks"), "A sub-group (collective over this group); None on ranks that are not members.");

  m.def("create_process_group", [](const std::string& backend, int64_t timeout_ms) {
    dist::ProcessGroupOptions options;
    options.timeout = std::chrono::milliseconds(timeout_ms);
    return released([&] { return dist::create_process_group(backend, options); });
  }, nb::arg("backend"), nb::arg("timeout_ms"), "The world group of a process-group backend.");
  m.def("process_group_backends", &dist::process_group_backends, "Names of the registered process-group backends.");
  m.def("mpi_available", &dist::mpi_available, "Whether this build of loom has the MPI backend.");
}

}  // namespace loom::python
