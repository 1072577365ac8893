#include "loom/core/backend.h"

#include <atomic>
#include <cstring>
#include <mutex>
#include <vector>

#include "loom/core/error.h"

namespace loom {

namespace {

// Backends are published once through atomics, so dispatching threads read them without a lock while a plugin loads.
std::atomic<DeviceBackend*> g_backends[kNumDeviceTypes] = {};
std::atomic<int> g_backend_count{0};
std::mutex g_register_mutex;

// The calling thread's current stream per device index, per device type (empty: every device on stream 0).
thread_local std::vector<uint64_t> t_current_streams[kNumDeviceTypes];

}  // namespace

void register_backend(DeviceType type, std::unique_ptr<DeviceBackend> backend) {
  LOOM_CHECK(type != DeviceType::CPU && type != DeviceType::Any, Value,
             "register_backend: the device type '", device_type_name(type), "' cannot take a backend");
  LOOM_CHECK(backend != nullptr, Value, "register_backend: no backend given for '", device_type_name(type), "'");
  std::lock_guard<std::mutex> lock(g_register_mutex);
  const int slot = static_cast<int>(type);
  LOOM_CHECK(g_backends[slot].load() == nullptr, Runtime, "register_backend: device type '", device_type_name(type),
             "' already has a backend");
  DeviceBackend* raw = backend.release();  // lives until the process ends: tensors may outlive any unload
  set_allocator(type, &raw->allocator());
  g_backends[slot].store(raw, std::memory_order_release);
  g_backend_count.fetch_add(1);
}

bool has_backend(DeviceType type) {
  return g_backends[static_cast<int>(type)].load(std::memory_order_acquire) != nullptr;
}

DeviceBackend& backend_for(DeviceType type) {
  DeviceBackend* backend = g_backends[static_cast<int>(type)].load(std::memory_order_acquire);
  LOOM_CHECK(backend != nullptr, NotImplemented, "no backend is registered for device type '", device_type_name(type),
             "' (load one with loom.backends.load)");
  return *backend;
}

int registered_backend_count() { return g_backend_count.load(); }

Device resolve_device_index(Device device) {
  if (device.type == DeviceType::CPU) return Device();
  LOOM_CHECK(device.type != DeviceType::Any, Value, "device: 'any' is not a device");
  DeviceBackend& backend = backend_for(device.type);
  if (device.index == Device::kCurrentIndex) device.index = backend.current_device();
  const int count = backend.device_count();
  LOOM_CHECK(device.index >= 0 && device.index < count, Value, "device: ", device.str(), " does not exist (",
             count, " ", device_type_name(device.type), " device", count == 1 ? "" : "s", " available)");
  return device;
}

// ---- current streams ----

Stream current_stream(Device device) {
  if (device.type == DeviceType::CPU) return Stream{Device(), 0};
  device = resolve_device_index(device);
  const auto& streams = t_current_streams[static_cast<int>(device.type)];
  const uint64_t id = device.index < static_cast<int>(streams.size()) ? streams[device.index] : 0;
  return Stream{device, id};
}

void set_current_stream(const Stream& stream) {
  if (stream.device.type == DeviceType::CPU) {
    LOOM_CHECK(stream.id == 0, Value, "set_current_stream: the CPU has only its default stream");
    return;
  }
  const Device device = resolve_device_index(stream.device);
  auto& streams = t_current_streams[static_cast<int>(device.type)];
  if (device.index >= static_cast<int>(streams.size())) streams.resize(device.index + 1, 0);
  streams[device.index] = stream.id;
}

DeviceGuard::DeviceGuard(Device device) : type_(device.type) {
  if (type_ == DeviceType::CPU || device.index == Device::kCurrentIndex) return;
  DeviceBackend& backend = backend_for(type_);
  const int current = backend.current_device();
  if (current == device.index) return;
  backend.set_device(device.index);
  previous_ = current;
}

DeviceGuard::~DeviceGuard() {
  if (previous_ >= 0) backend_for(type_).set_device(previous_);
}

StreamGuard::StreamGuard(const Stream& stream) : previous_(current_stream(stream.device)) { set_current_stream(stream); }
StreamGuard::~StreamGuard() { set_current_stream(previous_); }

// ---- copies ----

namespace {

// Two devices of one backend: the copy runs on the destination's current stream once the source's current stream has
// produced the data, and the source's stream waits for the copy before it reuses that memory (as PyTorch's copy
// between two GPUs orders both streams).
void copy_between_devices(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes,
                          bool non_blocking) {
  DeviceBackend& backend = backend_for(dst_device.type);
  const Stream src_stream = current_stream(src_device), dst_stream = current_stream(dst_device);
  EventHandle ready = backend.create_event(src_device.index, false);
  backend.record_event(ready, src_stream);
  backend.stream_wait_event(dst_stream, ready);
  backend.copy(dst, dst_device, src, src_device, nbytes, dst_stream, non_blocking);
  EventHandle done = backend.create_event(dst_device.index, false);
  backend.record_event(done, dst_stream);
  backend.stream_wait_event(src_stream, done);
  backend.destroy_event(ready);
  backend.destroy_event(done);
}

}  // namespace

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes, bool non_blocking) {
  if (nbytes == 0) return;
  const bool dst_host = dst_device.type == DeviceType::CPU;
  const bool src_host = src_device.type == DeviceType::CPU;
  if (dst_host && src_host) {
    std::memcpy(dst, src, nbytes);
    return;
  }
  if (dst_host || src_host || dst_device == src_device) {
    const Device device = dst_host ? src_device : dst_device;  // the non-host side orders the copy
    backend_for(device.type).copy(dst, dst_device, src, src_device, nbytes, current_stream(device), non_blocking);
    return;
  }
  if (dst_device.type == src_device.type) {
    copy_between_devices(dst, dst_device, src, src_device, nbytes, non_blocking);
    return;
  }
  // Two different backends know nothing of each other's memory: stage through the host, synchronously.
  std::vector<unsigned char> staging(nbytes);
  copy_bytes(staging.data(), Device(), src, src_device, nbytes, false);
  copy_bytes(dst, dst_device, staging.data(), Device(), nbytes, false);
}

void synchronize(Device device) {
  if (device.type == DeviceType::CPU) return;
  backend_for(device.type).synchronize_stream(current_stream(device));
}

}  // namespace loom
