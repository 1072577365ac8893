// The runtime interface of a device backend: what loom needs from a device besides its kernels (docs/backends.md).
// A backend (CPU and CUDA built in, a vendor GPU as a plugin) implements DeviceBackend once and registers it for its
// device type; tensors, copies, streams, events, memory statistics and the Python device modules all go through it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "loom/core/allocator.h"
#include "loom/core/device.h"

namespace loom {

// An ordered queue of work on one device. id 0 is the device's default stream; other ids are handles the backend
// gave out in create_stream. The CPU runs everything synchronously, so it only has stream 0.
struct Stream {
  Device device;
  uint64_t id = 0;
  bool operator==(const Stream& other) const = default;
};

// An event, owned by the backend that created it.
using EventHandle = void*;

struct DeviceMemoryStats {
  int64_t allocated_bytes = 0;       // handed out to tensors and not yet freed
  int64_t peak_allocated_bytes = 0;  // since the start or the last reset_peak_memory_stats
  int64_t reserved_bytes = 0;        // held by the allocator (allocated plus cached)
  int64_t peak_reserved_bytes = 0;
  int64_t num_allocs = 0;
  int64_t num_frees = 0;
};

class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;

  // ---- devices ----
  // False when the backend is registered but its hardware or driver is missing (device_count() is then 0).
  virtual bool is_available() const = 0;
  virtual int device_count() const = 0;
  // The calling thread's current device, and changing it (for this thread). DeviceGuard uses these.
  virtual int current_device() const = 0;
  virtual void set_device(int index) = 0;

  // ---- streams ----
  virtual Stream create_stream(int device_index, int priority) = 0;
  virtual void destroy_stream(const Stream& stream) = 0;
  // Blocks until all work queued on the stream so far has finished; raises the first error that work hit.
  virtual void synchronize_stream(const Stream& stream) = 0;
  virtual bool query_stream(const Stream& stream) = 0;  // true when all its work has finished
  virtual void synchronize_device(int device_index) = 0;

  // ---- events ----
  virtual EventHandle create_event(int device_index, bool enable_timing) = 0;
  // May be called while the event is still pending (as cudaEventDestroy): the backend frees it once it has completed.
  virtual void destroy_event(EventHandle event) = 0;
  virtual void record_event(EventHandle event, const Stream& stream) = 0;
  // Work queued on `stream` after this call starts only once the event's recorded work has finished.
  virtual void stream_wait_event(const Stream& stream, EventHandle event) = 0;
  virtual void synchronize_event(EventHandle event) = 0;
  virtual bool query_event(EventHandle event) = 0;
  // Milliseconds between two recorded, finished events created with enable_timing.
  virtual double elapsed_ms(EventHandle start, EventHandle end) = 0;

  // ---- memory ----
  // The device allocator. Its contract is stream-ordered (as CUDA's caching allocator): memory from allocate() may be
  // used at once by work on the device's current stream; a block freed by deallocate() may be reused at once by work
  // on that same stream, and by other streams only after the work recorded with Allocator::record_stream is done.
  virtual Allocator& allocator() = 0;
  // Page-locked host memory for overlapped copies (Tensor.pin_memory()); nullptr when the device has none.
  virtual Allocator* pinned_host_allocator() { return nullptr; }
  // Copies nbytes between this device and the host (a side whose type is CPU) or within this backend's devices,
  // ordered on `stream` (a stream of this backend). non_blocking: may return before the copy has run, and the host
  // memory must then stay valid and unchanged until the stream reaches the copy; otherwise returns when it is done.
  virtual void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes,
                    const Stream& stream, bool non_blocking) = 0;
  // Sets nbytes of device memory to `byte`, ordered on `stream`.
  virtual void memset(void* dst, int byte, size_t nbytes, const Stream& stream) = 0;
  virtual DeviceMemoryStats memory_stats(int device_index) = 0;
  virtual void reset_peak_memory_stats(int /*device_index*/) {}
};

// Registers the backend of a device type and installs its allocator. Each type gets one backend, once: registering a
// second for the same type raises. The backend lives until the process ends. Thread-safe.
void register_backend(DeviceType type, std::unique_ptr<DeviceBackend> backend);
bool has_backend(DeviceType type);
// The backend of a type; raises NotImplementedError naming the type when none is registered.
DeviceBackend& backend_for(DeviceType type);
// How many backends have been registered so far (the plugin loader uses it to see what a plugin registered).
int registered_backend_count();

// `device` with kCurrentIndex replaced by the backend's current device; checks the index against device_count().
Device resolve_device_index(Device device);

// ---- the calling thread's current stream, per device ----
Stream current_stream(Device device);
void set_current_stream(const Stream& stream);

// Makes `device` current for the guard's lifetime (a no-op for the CPU), like c10::DeviceGuard.
class DeviceGuard {
 public:
  explicit DeviceGuard(Device device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  DeviceType type_;
  int previous_ = -1;
};

// Makes `stream` current on its device for the guard's lifetime.
class StreamGuard {
 public:
  explicit StreamGuard(const Stream& stream);
  ~StreamGuard();
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  Stream previous_;
};

// ---- copies between any two devices ----
// Copies nbytes from src (on src_device) to dst (on dst_device): host to host by memcpy, host<->device and within one
// device by that backend's copy on the device's current stream; between two devices of one backend on the
// destination's current stream, ordered after the source's current stream with events; between two different
// backends through the host.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes,
                bool non_blocking = false);
// Waits for all work on the device's current stream (a no-op for the CPU).
void synchronize(Device device);

}  // namespace loom
