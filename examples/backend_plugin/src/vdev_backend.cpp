#include "vdev_backend.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <map>

#include "loom/core/error.h"
#include "work_queue.h"

namespace vdev {

namespace {

std::unique_ptr<DeviceArena> g_arenas[kDeviceCount];
thread_local int t_current_device = 0;

size_t arena_capacity() {
  const char* gib = std::getenv("LOOM_VDEV_MEMORY_GB");
  return (gib ? std::strtoull(gib, nullptr, 10) : 16) << 30;
}

Event* as_event(loom::EventHandle e) { return static_cast<Event*>(e); }

// Page-aligned host memory handed out as "pinned": copies from and to it may run asynchronously. Blocks are freed
// only after every device has drained, since an in-flight copy may still read them.
class PinnedAllocator final : public loom::Allocator {
 public:
  void* allocate(size_t nbytes, int) override {
    void* p = std::aligned_alloc(4096, (nbytes + 4095) / 4096 * 4096 + 4096);
    LOOM_CHECK(p != nullptr, Runtime, "vdev: out of pinned host memory allocating ", nbytes, " bytes");
    std::lock_guard<std::mutex> lock(mutex_);
    blocks_[p] = nbytes;
    return p;
  }
  void deallocate(void* p, size_t, int) override {
    for (int d = 0; d < kDeviceCount; ++d) streams().synchronize_device(d);
    std::lock_guard<std::mutex> lock(mutex_);
    blocks_.erase(p);
    std::free(p);
  }
  // Whether p lies inside a pinned block.
  bool owns(const void* p) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = blocks_.upper_bound(const_cast<void*>(p));
    if (it == blocks_.begin()) return false;
    --it;
    return static_cast<const char*>(p) <= static_cast<const char*>(it->first) + it->second;
  }

 private:
  std::mutex mutex_;
  std::map<void*, size_t> blocks_;  // start -> size
};

class DeviceAllocator final : public loom::Allocator {
 public:
  void* allocate(size_t nbytes, int index) override {
    const uint64_t stream = loom::current_stream(loom::Device(type, index)).id;
    return arena(index).allocate(nbytes, stream);
  }
  void deallocate(void* ptr, size_t, int index) override { arena(index).deallocate(ptr, 0); }
  void empty_cache() override {
    for (int d = 0; d < kDeviceCount; ++d) arena(d).empty_cache();
  }
  void record_stream(void* ptr, const loom::Stream& stream) override {
    arena(stream.device.index).record_stream(ptr, stream.id);
  }
  loom::DeviceType type = loom::DeviceType::CPU;
};

class VdevBackend final : public loom::DeviceBackend {
 public:
  explicit VdevBackend(loom::DeviceType type) { allocator_.type = type; }

  bool is_available() const override { return true; }
  int device_count() const override { return kDeviceCount; }
  int current_device() const override { return t_current_device; }
  void set_device(int index) override {
    LOOM_CHECK(index >= 0 && index < kDeviceCount, Value, "vdev: no device ", index);
    t_current_device = index;
  }

  loom::Stream create_stream(int index, int) override {
    return loom::Stream{loom::Device(allocator_.type, index), streams().create(index)};
  }
  void destroy_stream(const loom::Stream& s) override { streams().destroy(s.device.index, s.id); }
  void synchronize_stream(const loom::Stream& s) override { streams().get(s.device.index, s.id).synchronize(); }
  bool query_stream(const loom::Stream& s) override { return streams().get(s.device.index, s.id).idle(); }
  void synchronize_device(int index) override { streams().synchronize_device(index); }

  loom::EventHandle create_event(int, bool timing) override {
    auto* e = new Event();
    e->timing = timing;
    return e;
  }
  void destroy_event(loom::EventHandle handle) override {
    // A recorded event may still be signalled by its stream, and read by streams waiting on it (CUDA allows destroying
    // an event in use): wait for both before freeing it.
    Event* e = as_event(handle);
    {
      std::unique_lock<std::mutex> lock(e->mutex);
      e->done_cv.wait(lock, [&] { return e->completed >= e->recorded && e->waiters == 0; });
    }
    delete e;
  }
  void record_event(loom::EventHandle handle, const loom::Stream& s) override {
    Event* e = as_event(handle);
    uint64_t generation;
    {
      std::lock_guard<std::mutex> lock(e->mutex);
      generation = ++e->recorded;
    }
    streams().get(s.device.index, s.id).push([e, generation] {
      std::lock_guard<std::mutex> lock(e->mutex);
      e->completed = std::max(e->completed, generation);
      e->time = std::chrono::steady_clock::now();
      e->done_cv.notify_all();
    });
  }
  void stream_wait_event(const loom::Stream& s, loom::EventHandle handle) override {
    Event* e = as_event(handle);
    WorkQueue& queue = streams().get(s.device.index, s.id);
    uint64_t generation;
    {
      std::lock_guard<std::mutex> lock(e->mutex);
      generation = e->recorded;
      ++e->waiters;
    }
    queue.push([e, generation] {
      std::unique_lock<std::mutex> lock(e->mutex);
      e->done_cv.wait(lock, [&] { return e->completed >= generation; });
      --e->waiters;
      e->done_cv.notify_all();
    });
  }
  void synchronize_event(loom::EventHandle e) override { as_event(e)->wait(); }
  bool query_event(loom::EventHandle e) override { return as_event(e)->done(); }
  double elapsed_ms(loom::EventHandle a, loom::EventHandle b) override {
    LOOM_CHECK(as_event(a)->timing && as_event(b)->timing, Runtime,
               "vdev: elapsed_time needs events created with enable_timing=True");
    LOOM_CHECK(as_event(a)->done() && as_event(b)->done(), Runtime, "vdev: elapsed_time of an event not yet done");
    return std::chrono::duration<double, std::milli>(as_event(b)->time - as_event(a)->time).count();
  }

  loom::Allocator& allocator() override { return allocator_; }
  loom::Allocator* pinned_host_allocator() override { return &pinned_; }

  void copy(void* dst, loom::Device dst_device, const void* src, loom::Device src_device, size_t nbytes,
            const loom::Stream& stream, bool non_blocking) override {
    void* to = dst_device.is_cpu() ? dst : to_private(dst);
    const void* from = src_device.is_cpu() ? src : to_private(src);
    // As CUDA: a copy involving pageable host memory is synchronous whatever non_blocking says, since the caller
    // may free or reuse that memory as soon as we return. Only pinned memory (and device-to-device) can overlap.
    const void* host = dst_device.is_cpu() ? dst : src_device.is_cpu() ? src : nullptr;
    const bool async = non_blocking && (host == nullptr || pinned_.owns(host));
    WorkQueue& queue = streams().get(stream.device.index, stream.id);
    queue.push([to, from, nbytes] { std::memcpy(to, from, nbytes); });
    if (!async) queue.synchronize();
  }
  void memset(void* dst, int byte, size_t nbytes, const loom::Stream& stream) override {
    void* to = to_private(dst);
    streams().get(stream.device.index, stream.id).push([to, byte, nbytes] { std::memset(to, byte, nbytes); });
  }
  loom::DeviceMemoryStats memory_stats(int index) override { return arena(index).stats(); }
  void reset_peak_memory_stats(int index) override { arena(index).reset_peak(); }

 private:
  DeviceAllocator allocator_;
  PinnedAllocator pinned_;
};

}  // namespace

DeviceArena& arena(int device_index) { return *g_arenas[device_index]; }

void* to_private(const void* device_ptr) {
  for (int d = 0; d < kDeviceCount; ++d)
    if (g_arenas[d]->contains(device_ptr)) return g_arenas[d]->to_private(device_ptr);
  loom::fail(loom::ErrorKind::Runtime, "vdev: address ", device_ptr, " is not vdev device memory");
}

std::unique_ptr<loom::DeviceBackend> make_backend(loom::DeviceType type) {
  for (int d = 0; d < kDeviceCount; ++d) g_arenas[d] = std::make_unique<DeviceArena>(d, arena_capacity());
  return std::make_unique<VdevBackend>(type);
}

}  // namespace vdev
