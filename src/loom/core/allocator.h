// Allocators: one per device type. The CPU one caches freed blocks (64-byte aligned) by size.
#pragma once
#include <cstddef>

#include "loom/core/device.h"

namespace loom {

struct Stream;

class Allocator {
 public:
  virtual ~Allocator() = default;
  // Returns nbytes (nbytes may be 0) of device memory; raises loom::Error (Runtime) when out of memory.
  virtual void* allocate(size_t nbytes, int device_index) = 0;
  virtual void deallocate(void* ptr, size_t nbytes, int device_index) = 0;
  // Gives cached blocks back to the system.
  virtual void empty_cache() {}
  // Stream-ordered allocators (docs/backends.md): the block at ptr is also used by work on `stream`, so it must not be
  // reused until that work is done, even after it is freed. Host memory is used synchronously: nothing to do.
  virtual void record_stream(void* /*ptr*/, const Stream& /*stream*/) {}
};

// register_backend installs a backend's allocator here; the CPU's is built in. Thread-safe.
void set_allocator(DeviceType type, Allocator* allocator);
Allocator& allocator_for(DeviceType type);

struct HostAllocatorStats {
  size_t bytes_in_use = 0;     // handed out and not yet freed
  size_t bytes_cached = 0;     // freed, kept for reuse
  size_t peak_bytes_in_use = 0;
};
HostAllocatorStats host_allocator_stats();

}  // namespace loom
