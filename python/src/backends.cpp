// The device layer for Python: loading backends, the CPU fallback, and each backend's runtime (devices, streams,
// events, memory statistics). python/loom/backends/ and the per-device modules (loom.cuda, loom.<name>) build on these.
#include <nanobind/stl/pair.h>
#include <nanobind/stl/vector.h>

#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "convert.h"
#include "loom/backends/plugin.h"
#include "loom/core/backend.h"

namespace loom::python {

namespace {

DeviceType device_type_arg(const std::string& name) {
  DeviceType type;
  LOOM_CHECK(find_device_type(name, &type), Value, "unknown device type '", name, "'");
  return type;
}

// The backend of a registered, non-CPU device type.
DeviceBackend& backend_arg(const std::string& name) {
  DeviceType type = device_type_arg(name);
  LOOM_CHECK(type != DeviceType::CPU, Value, "the CPU has no device backend to query");
  return backend_for(type);
}

// Warnings from the dispatcher (the CPU fallback) become Python UserWarnings.
void python_warning(const std::string& message) {
  nb::gil_scoped_acquire gil;
  if (PyErr_WarnEx(PyExc_UserWarning, message.c_str(), 1) < 0) PyErr_Clear();  // a filter set to "error": keep going
}

void bind_streams_and_events(nb::module_& m) {
  m.def("_current_stream", [](const Device& d) {
    Stream s = current_stream(d);
    return std::make_pair(s.device, s.id);
  }, nb::arg("device"));
  m.def("_set_current_stream", [](const Device& d, uint64_t id) { set_current_stream(Stream{resolve_device_index(d), id}); },
        nb::arg("device"), nb::arg("id"));
  m.def("_create_stream", [](const Device& d, int priority) {
    Device device = resolve_device_index(d);
    return backend_for(device.type).create_stream(device.index, priority).id;
  }, nb::arg("device"), nb::arg("priority") = 0);
  m.def("_destroy_stream", [](const Device& d, uint64_t id) {
    backend_for(d.type).destroy_stream(Stream{resolve_device_index(d), id});
  }, nb::arg("device"), nb::arg("id"));
  m.def("_synchronize_stream", [](const Device& d, uint64_t id) {
    nb::gil_scoped_release release;
    backend_for(d.type).synchronize_stream(Stream{resolve_device_index(d), id});
  }, nb::arg("device"), nb::arg("id"));
  m.def("_query_stream", [](const Device& d, uint64_t id) {
    return backend_for(d.type).query_stream(Stream{resolve_device_index(d), id});
  }, nb::arg("device"), nb::arg("id"));
  // Events are handles (integers) owned by the backend; python/loom/_device_module.py wraps them in Event objects.
  m.def("_create_event", [](const Device& d, bool timing) {
    Device device = resolve_device_index(d);
    return reinterpret_cast<uintptr_t>(backend_for(device.type).create_event(device.index, timing));
  }, nb::arg("device"), nb::arg("enable_timing") = false);
  m.def("_destroy_event", [](const std::string& type, uintptr_t e) {
    backend_arg(type).destroy_event(reinterpret_cast<EventHandle>(e));
  });
  m.def("_record_event", [](uintptr_t e, const Device& d, uint64_t id) {
    backend_for(d.type).record_event(reinterpret_cast<EventHandle>(e), Stream{resolve_device_index(d), id});
  });
  m.def("_stream_wait_event", [](const Device& d, uint64_t id, uintptr_t e) {
    backend_for(d.type).stream_wait_event(Stream{resolve_device_index(d), id}, reinterpret_cast<EventHandle>(e));
  });
  m.def("_synchronize_event", [](const std::string& type, uintptr_t e) {
    DeviceBackend& backend = backend_arg(type);
    nb::gil_scoped_release release;
    backend.synchronize_event(reinterpret_cast<EventHandle>(e));
  });
  m.def("_query_event", [](const std::string& type, uintptr_t e) {
    return backend_arg(type).query_event(reinterpret_cast<EventHandle>(e));
  });
  m.def("_elapsed_ms", [](const std::string& type, uintptr_t a, uintptr_t b) {
    return backend_arg(type).elapsed_ms(reinterpret_cast<EventHandle>(a), reinterpret_cast<EventHandle>(b));
  });
}

void bind_memory(nb::module_& m) {
  m.def("_memory_stats", [](const Device& d) {
    Device device = resolve_device_index(d);
    DeviceMemoryStats s = backend_for(device.type).memory_stats(device.index);
    nb::dict out;
    out["allocated_bytes"] = s.allocated_bytes;
    out["peak_allocated_bytes"] = s.peak_allocated_bytes;
    out["reserved_bytes"] = s.reserved_bytes;
    out["peak_reserved_bytes"] = s.peak_reserved_bytes;
    out["num_allocs"] = s.num_allocs;
    out["num_frees"] = s.num_frees;
    return out;
  }, nb::arg("device"));
  m.def("_reset_peak_memory_stats", [](const Device& d) {
    Device device = resolve_device_index(d);
    backend_for(device.type).reset_peak_memory_stats(device.index);
  }, nb::arg("device"));
  m.def("_empty_cache", [](const std::string& type) { backend_arg(type).allocator().empty_cache(); });
  m.def("_has_pinned_memory", [](const std::string& type) { return backend_arg(type).pinned_host_allocator() != nullptr; });
}

// ---- the op reference for backend writers (tools/op_reference.py): what each op is called with ----

struct OpUse {
  int64_t calls = 0;
  std::set<size_t> input_counts;
  std::set<std::string> input_dtypes;  // of input 0
  std::set<std::string> attributes;    // "name: type"
};

const char* attr_type_name(const AttrValue& v) {
  static const char* names[] = {"none", "bool", "int", "float", "Scalar", "int[]", "dtype", "Device", "str"};
  return names[v.index()];
}

class OpRecorder final : public Mode {
 public:
  std::optional<std::vector<Tensor>> on_call(const OpDef& op, std::vector<Tensor>& inputs, Attrs& attrs) override {
    std::lock_guard<std::mutex> lock(mutex);
    OpUse& use = uses[op.name];
    ++use.calls;
    use.input_counts.insert(inputs.size());
    if (!inputs.empty() && inputs[0].defined()) use.input_dtypes.insert(dtype_name(inputs[0].dtype()));
    for (const auto& [name, value] : attrs.items()) use.attributes.insert(std::string(name) + ": " + attr_type_name(value));
    return std::nullopt;  // the op runs as usual
  }
  std::mutex mutex;
  std::map<std::string, OpUse> uses;
};

OpRecorder g_recorder;
thread_local std::unique_ptr<ModeGuard> t_recording;

void bind_op_reference(nb::module_& m) {
  m.def("_start_op_recording", [] {
    LOOM_CHECK(!t_recording, Runtime, "op recording is already on");
    t_recording = std::make_unique<ModeGuard>(&g_recorder);
  });
  m.def("_stop_op_recording", [] {
    t_recording.reset();
    std::lock_guard<std::mutex> lock(g_recorder.mutex);
    nb::dict out;
    for (const auto& [name, use] : g_recorder.uses) {
      nb::dict entry;
      entry["calls"] = use.calls;
      entry["input_counts"] = std::vector<size_t>(use.input_counts.begin(), use.input_counts.end());
      entry["input_dtypes"] = std::vector<std::string>(use.input_dtypes.begin(), use.input_dtypes.end());
      entry["attributes"] = std::vector<std::string>(use.attributes.begin(), use.attributes.end());
      out[name.c_str()] = entry;
    }
    g_recorder.uses.clear();
    return out;
  }, "Stops recording op calls on this thread and returns, per op: calls, input counts, input dtypes, attributes.");
  m.def("_op_info", [](const std::string& name) {
    const OpDef& op = Registry::instance().op(name);
    nb::dict out;
    std::vector<std::string> kernels;
    for (int d = 0; d < kNumDeviceTypes; ++d)
      if (op.own_kernel(static_cast<DeviceType>(d))) kernels.emplace_back(device_type_name(static_cast<DeviceType>(d)));
    out["kernels"] = kernels;
    out["composite"] = op.composite != nullptr;
    out["differentiable"] = op.backward != nullptr;
    out["is_view"] = op.is_view;
    out["mutates_inputs"] = op.mutates_inputs;
    return out;
  }, nb::arg("name"), "Which devices have kernels for an op, and whether it has a composite, a backward, is a view.");
}

}  // namespace

void bind_backends(nb::module_& m) {
  set_warning_handler(python_warning);
  m.def("_load_backend", [](const std::string& path) {
    nb::gil_scoped_release release;  // a plugin's init may start threads that need the GIL
    return load_backend(path);
  }, nb::arg("path"));
  m.def("_backend_abi", [] {
    LoomAbiInfo info = loom_abi_info();
    nb::dict out;
    out["abi_version"] = info.abi_version;
    out["cxx11_abi"] = info.cxx11_abi;
    return out;
  });
  m.def("_device_types", [] {
    std::vector<std::string> names;
    for (int d = 0; d < static_cast<int>(DeviceType::Any); ++d)
      if (d == 0 || has_backend(static_cast<DeviceType>(d))) names.emplace_back(device_type_name(static_cast<DeviceType>(d)));
    return names;
  }, "Names of the device types that have a backend (cpu first).");
  m.def("_has_backend", [](const std::string& name) {
    DeviceType type;
    return find_device_type(name, &type) && (type == DeviceType::CPU || has_backend(type));
  });
  m.def("_is_available", [](const std::string& name) {
    DeviceType type;
    if (!find_device_type(name, &type)) return false;
    if (type == DeviceType::CPU) return true;
    return has_backend(type) && backend_for(type).is_available();
  });
  m.def("_device_count", [](const std::string& name) {
    DeviceType type;
    if (!find_device_type(name, &type)) return 0;
    if (type == DeviceType::CPU) return 1;
    return has_backend(type) ? backend_for(type).device_count() : 0;
  });
  m.def("_current_device", [](const std::string& name) { return backend_arg(name).current_device(); });
  m.def("_set_device", [](const Device& d) {
    Device device = resolve_device_index(d);
    if (device.type != DeviceType::CPU) backend_for(device.type).set_device(device.index);
  }, nb::arg("device"));
  m.def("_synchronize", [](const Device& d) {
    nb::gil_scoped_release release;
    Device device = d.type == DeviceType::CPU ? d : resolve_device_index(d);
    if (device.type != DeviceType::CPU) backend_for(device.type).synchronize_device(device.index);
  }, nb::arg("device"));
  m.def("_set_cpu_fallback", [](const std::string& name, bool on) { Registry::instance().set_cpu_fallback(device_type_arg(name), on); },
        nb::arg("device_type"), nb::arg("enabled"));
  m.def("_cpu_fallback", [](const std::string& name) { return Registry::instance().cpu_fallback(device_type_arg(name)); });
  m.def("_has_kernel", [](const std::string& op, const Device& device) {
    return has_kernel(Registry::instance().op(op), device);
  }, nb::arg("op"), nb::arg("device"));
  m.def("_set_kernel_masked", [](const std::string& op, const std::string& type, bool masked) {
    Registry::instance().set_kernel_masked(op, device_type_arg(type), masked);
  }, nb::arg("op"), nb::arg("device_type"), nb::arg("masked"),
     "Testing aid: while masked, the op's own kernel for device_type is ignored and dispatch takes its composite.");
  bind_streams_and_events(m);
  bind_memory(m);
  bind_op_reference(m);
}

}  // namespace loom::python
