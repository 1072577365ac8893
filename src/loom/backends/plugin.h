// Loading out-of-tree backends (docs/backends.md). A backend is a shared library built against loom's installed headers
// that defines its entry point with LOOM_BACKEND_PLUGIN; loom::load_backend (Python: loom.backends.load) dlopens it,
// checks that it was built for this loom's ABI, and runs its init function, which registers a device type, its
// DeviceBackend and its kernels.
//
// ABI policy: a plugin is C++ built against the same loom headers, with the same C++ standard library ABI. Everything
// that must match is in LoomAbiInfo and is checked before any plugin code runs; a mismatch is a clear error, never a
// crash. LOOM_BACKEND_ABI_VERSION changes whenever a type a kernel or backend sees (Tensor, TensorImpl, Attrs,
// KernelContext, OpDef, DeviceBackend, Allocator) changes layout or virtual functions.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "loom/core/allocator.h"
#include "loom/core/backend.h"
#include "loom/core/tensor.h"
#include "loom/ops/registry.h"

#define LOOM_BACKEND_ABI_VERSION 1

extern "C" {
// Filled from the headers a side was compiled with; the loader compares the plugin's with libloom's field by field.
struct LoomAbiInfo {
  uint32_t struct_size;  // sizeof(LoomAbiInfo): lets a later loom read an older plugin's info safely
  uint32_t abi_version;  // LOOM_BACKEND_ABI_VERSION
  uint32_t cxx11_abi;    // libstdc++'s _GLIBCXX_USE_CXX11_ABI (std::string layout)
  uint32_t sizeof_tensor_impl;
  uint32_t sizeof_attrs;
  uint32_t sizeof_kernel_context;
  uint32_t sizeof_op_def;
  uint32_t sizeof_device_backend;
  uint32_t num_device_types;
};
}

namespace loom {

// The ABI this translation unit sees (libloom's own copy is what plugins are checked against).
inline LoomAbiInfo abi_info_of_these_headers() {
  LoomAbiInfo info{};
  info.struct_size = sizeof(LoomAbiInfo);
  info.abi_version = LOOM_BACKEND_ABI_VERSION;
#ifdef _GLIBCXX_USE_CXX11_ABI
  info.cxx11_abi = _GLIBCXX_USE_CXX11_ABI;
#else
  info.cxx11_abi = 2;
#endif
  info.sizeof_tensor_impl = sizeof(TensorImpl);
  info.sizeof_attrs = sizeof(Attrs);
  info.sizeof_kernel_context = sizeof(KernelContext);
  info.sizeof_op_def = sizeof(OpDef);
  info.sizeof_device_backend = sizeof(DeviceBackend);
  info.num_device_types = kNumDeviceTypes;
  return info;
}

// The ABI libloom was built with.
LoomAbiInfo loom_abi_info();

// Loads the backend library at `path` and returns the names of the device types it registered (usually one).
// Loading the same library again returns the same names. Safe while other threads dispatch ops: kernels and
// backends are published atomically, and loads are serialised. Raises RuntimeError when the file cannot be loaded,
// has no entry point, was built for another ABI (naming what differs), or its init function fails.
std::vector<std::string> load_backend(const std::string& path);

namespace backends {
// The C++ spelling of Python's loom.backends.load: loads the library and returns the name of the device type it
// registered (the first, for a library that registers several).
inline std::string load(const std::string& path) { return load_backend(path).front(); }
}  // namespace backends

}  // namespace loom

// Defines the plugin's entry points around `init_function` (a `void()` that registers the device type, backend and
// kernels). Use it once, in one source file of the plugin.
// The ABI version is read where the macro expands.
#define LOOM_BACKEND_PLUGIN(init_function)                                                            \
  extern "C" __attribute__((visibility("default"))) const LoomAbiInfo* loom_backend_abi(void) {      \
    static const LoomAbiInfo info = [] {                                                              \
      LoomAbiInfo i = ::loom::abi_info_of_these_headers();                                            \
      i.abi_version = LOOM_BACKEND_ABI_VERSION;                                                       \
      return i;                                                                                       \
    }();                                                                                              \
    return &info;                                                                                     \
  }                                                                                                   \
  extern "C" __attribute__((visibility("default"))) int loom_backend_init(char* error, size_t size) { \
    try {                                                                                             \
      init_function();                                                                                \
      return 0;                                                                                       \
    } catch (const std::exception& e) {                                                               \
      std::snprintf(error, size, "%s", e.what());                                                     \
    } catch (...) {                                                                                   \
      std::snprintf(error, size, "unknown exception");                                                \
    }                                                                                                 \
    return 1;                                                                                         \
  }
