// loom::load_backend (backends/plugin.h): dlopen, the ABI handshake, then the plugin's init function.
#include <dlfcn.h>

#include <map>
#include <mutex>
#include <sstream>

#include "loom/backends/plugin.h"

namespace loom {

LoomAbiInfo loom_abi_info() { return abi_info_of_these_headers(); }

namespace {

using AbiFn = const LoomAbiInfo* (*)();
using InitFn = int (*)(char*, size_t);

// What differs between the plugin's ABI and ours, in words; empty when they match.
std::string abi_mismatch(const LoomAbiInfo& plugin, const LoomAbiInfo& host) {
  std::ostringstream out;
  if (plugin.struct_size < sizeof(uint32_t) * 2) return "its ABI record is truncated";
  if (plugin.abi_version != host.abi_version) {
    out << "it was built for loom backend ABI " << plugin.abi_version << ", this loom has ABI " << host.abi_version;
    return out.str();
  }
  if (plugin.struct_size != host.struct_size) {
    out << "its ABI record has " << plugin.struct_size << " bytes, expected " << host.struct_size;
    return out.str();
  }
  auto field = [&](const char* name, uint32_t theirs, uint32_t ours) {
    if (theirs != ours) out << (out.tellp() > 0 ? "; " : "") << name << " is " << theirs << " there, " << ours << " here";
  };
  field("_GLIBCXX_USE_CXX11_ABI", plugin.cxx11_abi, host.cxx11_abi);
  field("sizeof(TensorImpl)", plugin.sizeof_tensor_impl, host.sizeof_tensor_impl);
  field("sizeof(Attrs)", plugin.sizeof_attrs, host.sizeof_attrs);
  field("sizeof(KernelContext)", plugin.sizeof_kernel_context, host.sizeof_kernel_context);
  field("sizeof(OpDef)", plugin.sizeof_op_def, host.sizeof_op_def);
  field("sizeof(DeviceBackend)", plugin.sizeof_device_backend, host.sizeof_device_backend);
  field("the number of device types", plugin.num_device_types, host.num_device_types);
  return out.str();
}

std::mutex g_load_mutex;
std::map<std::string, std::vector<std::string>> g_loaded;  // by path (and by library handle below)
std::map<void*, std::vector<std::string>> g_loaded_handles;

}  // namespace

std::vector<std::string> load_backend(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_load_mutex);
  if (auto it = g_loaded.find(path); it != g_loaded.end()) return it->second;
  Registry::instance();  // loom's own ops and backends first, so the plugin registers against a complete registry

  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  LOOM_CHECK(handle != nullptr, Runtime, "loom.backends.load: cannot load '", path, "': ", dlerror());
  if (auto it = g_loaded_handles.find(handle); it != g_loaded_handles.end()) {  // same library, another path
    g_loaded[path] = it->second;
    return it->second;
  }
  auto abi = reinterpret_cast<AbiFn>(dlsym(handle, "loom_backend_abi"));
  auto init = reinterpret_cast<InitFn>(dlsym(handle, "loom_backend_init"));
  if (!abi || !init) {
    dlclose(handle);
    fail(ErrorKind::Runtime, "loom.backends.load: '", path,
         "' is not a loom backend (no loom_backend_abi/loom_backend_init; define them with LOOM_BACKEND_PLUGIN)");
  }
  const std::string mismatch = abi_mismatch(*abi(), loom_abi_info());
  if (!mismatch.empty()) {
    dlclose(handle);
    fail(ErrorKind::Runtime, "loom.backends.load: '", path, "' does not match this loom: ", mismatch,
         ". Rebuild it against this loom's headers (loom.utils.cmake_prefix_path).");
  }

  bool had[kNumDeviceTypes];
  for (int d = 0; d < kNumDeviceTypes; ++d) had[d] = has_backend(static_cast<DeviceType>(d));
  char error[1024] = {};
  // The library stays loaded even when init fails: it may have registered kernels whose code must stay mapped.
  LOOM_CHECK(init(error, sizeof(error)) == 0, Runtime, "loom.backends.load: the init function of '", path,
             "' failed: ", error);
  std::vector<std::string> names;
  for (int d = 0; d < kNumDeviceTypes; ++d)
    if (!had[d] && has_backend(static_cast<DeviceType>(d))) names.emplace_back(device_type_name(static_cast<DeviceType>(d)));
  LOOM_CHECK(!names.empty(), Runtime, "loom.backends.load: '", path, "' registered no backend (its init function must call loom::register_backend)");
  g_loaded[path] = names;
  g_loaded_handles[handle] = names;
  return names;
}

}  // namespace loom
