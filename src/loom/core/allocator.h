// Allocators: one per device type. The CPU one caches freed blocks (64-byte aligned) by size.
#pragma once
#include <cstddef>

#include "loom/core/device.h"

namespace loom {

class Allocator {
 public:
  virtual ~Allocator() = default;
  // Returns nbytes (nbytes may be 0) of device memory; raises loom::Error (Runtime) when out of memory.
  virtual void* allocate(size_t nbytes, int device_index) = 0;
  virtual void deallocate(void* ptr, size_t nbytes, int device_index) = 0;
  // Gives cached blocks back to the system.
  virtual void empty_cache() {}
};

// Backends install their allocator here at registration; the CPU one is built in.
void set_allocator(DeviceType type, Allocator* allocator);
Allocator& allocator_for(DeviceType type);

struct HostAllocatorStats {
  size_t bytes_in_use = 0;     // handed out and not yet freed
  size_t bytes_cached = 0;     // freed, kept for reuse
  size_t peak_bytes_in_use = 0;
};
HostAllocatorStats host_allocator_stats();

}  // namespace loom
