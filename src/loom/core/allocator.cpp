#include "loom/core/allocator.h"

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

#include "loom/core/error.h"

namespace loom {

namespace {

// Caches freed blocks keyed by their rounded size; blocks above kMaxCachedBlock go straight back to
// the system so one huge tensor cannot pin memory. Cache size is capped at kMaxCachedTotal.
class CachingHostAllocator final : public Allocator {
 public:
  static constexpr size_t kAlignment = 64;
  static constexpr size_t kMaxCachedBlock = size_t(256) << 20;
  static constexpr size_t kMaxCachedTotal = size_t(1) << 30;
  static constexpr size_t kMaxBytes = size_t(1) << 62;

  void* allocate(size_t nbytes, int) override {
    // No machine has 2^62 bytes; refusing such a request up front also keeps round_up from wrapping around.
    LOOM_CHECK(nbytes <= kMaxBytes, Runtime, "allocator: out of memory allocating ", nbytes, " bytes on the CPU");
    size_t size = round_up(nbytes);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_blocks_.find(size);
      if (it != free_blocks_.end() && !it->second.empty()) {
        void* ptr = it->second.back();
        it->second.pop_back();
        stats_.bytes_cached -= size;
        note_in_use(size);
        return ptr;
      }
    }
    void* ptr = std::aligned_alloc(kAlignment, size);
    if (!ptr) {
      empty_cache();
      ptr = std::aligned_alloc(kAlignment, size);
    }
    LOOM_CHECK(ptr != nullptr, Runtime, "allocator: out of memory allocating ", nbytes, " bytes on the CPU");
    std::lock_guard<std::mutex> lock(mutex_);
    note_in_use(size);
    return ptr;
  }

  void deallocate(void* ptr, size_t nbytes, int) override {
    size_t size = round_up(nbytes);
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.bytes_in_use -= size;
    if (size > kMaxCachedBlock || stats_.bytes_cached + size > kMaxCachedTotal) {
      std::free(ptr);
      return;
    }
    free_blocks_[size].push_back(ptr);
    stats_.bytes_cached += size;
  }

  void empty_cache() override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [size, blocks] : free_blocks_)
      for (void* p : blocks) std::free(p);
    free_blocks_.clear();
    stats_.bytes_cached = 0;
  }

  HostAllocatorStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

 private:
  static size_t round_up(size_t nbytes) {
    size_t size = nbytes < kAlignment ? kAlignment : nbytes;
    // Round to a multiple of the alignment, then to 1/4 of the next power of two so sizes cluster.
    size = (size + kAlignment - 1) / kAlignment * kAlignment;
    if (size > 4096) {
      size_t step = size_t(1) << (63 - __builtin_clzll(size) - 2);
      size = (size + step - 1) / step * step;
    }
    return size;
  }
  void note_in_use(size_t size) {
    stats_.bytes_in_use += size;
    if (stats_.bytes_in_use > stats_.peak_bytes_in_use) stats_.peak_bytes_in_use = stats_.bytes_in_use;
  }

  std::mutex mutex_;
  std::map<size_t, std::vector<void*>> free_blocks_;
  HostAllocatorStats stats_;
};

CachingHostAllocator& host_allocator() {
  static CachingHostAllocator* allocator = new CachingHostAllocator();  // never destroyed: outlives all tensors
  return *allocator;
}

// Written when a backend registers (possibly while other threads allocate), hence atomic.
std::atomic<Allocator*> g_allocators[kNumDeviceTypes] = {};

}  // namespace

void set_allocator(DeviceType type, Allocator* allocator) {
  g_allocators[static_cast<int>(type)].store(allocator, std::memory_order_release);
}

Allocator& allocator_for(DeviceType type) {
  if (type == DeviceType::CPU) return host_allocator();
  Allocator* allocator = g_allocators[static_cast<int>(type)].load(std::memory_order_acquire);
  LOOM_CHECK(allocator != nullptr, NotImplemented, "allocator: no backend is registered for device type '",
             device_type_name(type), "'");
  return *allocator;
}

HostAllocatorStats host_allocator_stats() { return host_allocator().stats(); }

}  // namespace loom
