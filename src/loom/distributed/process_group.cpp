// The registry of process-group backends and the names of reduce ops.
#include "loom/distributed/process_group.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "loom/core/error.h"

namespace loom::distributed {

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return "SUM";
    case ReduceOp::Avg: return "AVG";
    case ReduceOp::Max: return "MAX";
    case ReduceOp::Min: return "MIN";
    case ReduceOp::Product: return "PRODUCT";
  }
  return "?";
}

namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, ProcessGroupFactory> factories;
  bool builtins_registered = false;
};

Registry& registry() {
  static Registry instance;
  return instance;
}

// Registers the built-in backends once, outside the registry's lock (they call register_process_group_backend).
void ensure_builtins() {
  static std::once_flag once;
  std::call_once(once, [] { detail::register_builtin_process_groups(); });
}

std::string joined_names(const std::map<std::string, ProcessGroupFactory>& factories) {
  std::string out;
  for (const auto& [name, factory] : factories) out += (out.empty() ? "" : ", ") + name;
  return out.empty() ? "none" : out;
}

}  // namespace

void register_process_group_backend(const std::string& name, ProcessGroupFactory factory) {
  LOOM_CHECK(!name.empty() && std::all_of(name.begin(), name.end(),
                                          [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }),
             Value, "register_process_group_backend: the name must be a lowercase identifier, got '", name, "'");
  LOOM_CHECK(factory != nullptr, Value, "register_process_group_backend: no factory given for '", name, "'");
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  LOOM_CHECK(r.factories.count(name) == 0, Value, "register_process_group_backend: a backend named '", name,
             "' is already registered");
  r.factories.emplace(name, std::move(factory));
}

bool has_process_group_backend(const std::string& name) {
  ensure_builtins();
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.factories.count(name) != 0;
}

std::vector<std::string> process_group_backends() {
  ensure_builtins();
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& [name, factory] : r.factories) names.push_back(name);
  return names;
}

std::shared_ptr<ProcessGroup> create_process_group(const std::string& name, const ProcessGroupOptions& options) {
  ensure_builtins();
  LOOM_CHECK(options.timeout.count() > 0, Value, "init_process_group: the timeout must be positive, got ",
             options.timeout.count(), " ms");
  ProcessGroupFactory factory;
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = r.factories.find(name);
    if (it == r.factories.end()) {
      if (name == "mpi")
        fail(ErrorKind::NotImplemented, "init_process_group: this build of loom has no MPI backend (CMake did not find ",
             "MPI; install libopenmpi-dev and rebuild). Registered backends: ", joined_names(r.factories));
      fail(ErrorKind::Value, "init_process_group: no process-group backend named '", name,
           "' (registered: ", joined_names(r.factories), ")");
    }
    factory = it->second;
  }
  return factory(options);
}

}  // namespace loom::distributed
