// Bindings for autocast: the guard behind loom.autocast and the thread-local state queries.
#include <memory>

#include <nanobind/stl/pair.h>

#include "convert.h"

namespace loom::python {
namespace {

DeviceType autocast_device(const std::string& device_type) {
  DeviceType type;
  if (find_device_type(device_type, &type) && autocast_supported(type)) return type;
  fail(ErrorKind::Value, "autocast: unsupported device_type '", device_type,
       "' (autocast has op lists for cpu, cuda and backends that registered them)");
}

// Holds one AutocastGuard between __enter__ and __exit__ of loom.autocast.
struct PyAutocastGuard {
  std::unique_ptr<AutocastGuard> guard;
};

}  // namespace

void bind_autocast(nb::module_& m) {
  nb::class_<PyAutocastGuard>(m, "_AutocastGuard")
      .def("__init__",
           [](PyAutocastGuard* self, const std::string& device_type, std::optional<DType> dtype, bool enabled,
              std::optional<bool> cache_enabled) {
             new (self) PyAutocastGuard{
                 std::make_unique<AutocastGuard>(autocast_device(device_type), dtype, enabled, cache_enabled)};
           },
           nb::arg("device_type"), nb::arg("dtype").none(), nb::arg("enabled"), nb::arg("cache_enabled").none())
      .def("exit", [](PyAutocastGuard& self) { self.guard.reset(); });
  m.def(
      "is_autocast_enabled",
      [](const std::string& device_type) { return is_autocast_enabled(autocast_device(device_type)); },
      nb::arg("device_type") = "cpu", "Whether autocast is enabled for device_type on this thread.");
  m.def(
      "get_autocast_dtype",
      [](const std::string& device_type) { return get_autocast_dtype(autocast_device(device_type)); },
      nb::arg("device_type") = "cpu", "The dtype autocast casts to on device_type (bfloat16 on CPU by default).");
  m.def("_autocast_supported", [](const std::string& device_type) {
    DeviceType type;
    return find_device_type(device_type, &type) && autocast_supported(type);
  }, nb::arg("device_type"));
  m.def("is_autocast_cache_enabled", &is_autocast_cache_enabled);
  m.def("clear_autocast_cache", &clear_autocast_cache);
  m.def("_autocast_cache_size", &autocast_cache_size);
  m.def(
      "_autocast_policy",
      [](const std::string& op, const std::string& device_type) {
        return std::string(autocast_policy_name(autocast_policy(op, autocast_device(device_type))));
      },
      nb::arg("op"), nb::arg("device_type") = "cpu");
  m.def(
      "_autocast_op_list",
      [](const std::string& device_type) {
        std::vector<std::pair<std::string, std::string>> out;
        for (auto& [name, policy] : autocast_op_list(autocast_device(device_type)))
          out.emplace_back(std::string(name), autocast_policy_name(policy));
        return out;
      },
      nb::arg("device_type") = "cpu");
}

}  // namespace loom::python
