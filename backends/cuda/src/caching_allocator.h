// The CUDA device allocator: a caching, stream-ordered allocator in the manner of PyTorch's.
//
// Memory comes from cudaMalloc in segments (2 MiB for requests up to 1 MiB, 20 MiB for requests up to 10 MiB,
// otherwise the request rounded to 2 MiB) and is handed out as blocks split from them. A freed block goes back to the
// pool of the stream it was allocated on (the calling thread's current stream at allocate time), merges with free
// neighbours of its segment, and is reused at once by that stream: work queued on one stream runs in order, so the
// next user cannot overtake the last. A block that record_stream() marked as used by other streams returns to the
// pool only once an event recorded on each of those streams at free time has completed. Small and large requests
// use separate pools so that small blocks do not fragment large segments. empty_cache() returns whole free segments
// to the driver; an allocation that cudaMalloc cannot satisfy first empties the cache and retries, then raises an
// error saying how much was asked, allocated, reserved and free.
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <set>
#include <unordered_map>
#include <vector>

#include "loom/core/allocator.h"
#include "loom/core/backend.h"

namespace loom_cuda {

class CachingAllocator final : public loom::Allocator {
 public:
  explicit CachingAllocator(int device_count);
  void* allocate(size_t nbytes, int device_index) override;
  void deallocate(void* ptr, size_t nbytes, int device_index) override;
  void empty_cache() override;
  void record_stream(void* ptr, const loom::Stream& stream) override;

  loom::DeviceMemoryStats stats(int device_index);
  void reset_peak(int device_index);

 private:
  struct Block {
    int device = 0;
    uint64_t stream = 0;  // the pool it belongs to
    bool small = false;   // from the small pool
    size_t size = 0;
    char* ptr = nullptr;
    bool allocated = false;
    int pending_events = 0;               // events still to complete before it may be reused
    std::vector<uint64_t> other_streams;  // record_stream
    Block* prev = nullptr;                // neighbours within the segment
    Block* next = nullptr;
  };
  struct BlockOrder {
    bool operator()(const Block* a, const Block* b) const;
  };
  struct PendingEvent {
    void* event;  // cudaEvent_t
    Block* block;
  };
  struct DeviceState {
    std::set<Block*, BlockOrder> free_blocks;
    std::unordered_map<void*, Block*> live;  // by pointer: handed out, or waiting for events
    std::vector<PendingEvent> pending;
    loom::DeviceMemoryStats stats;
  };

  Block* find_free(DeviceState& state, uint64_t stream, bool small, size_t size);
  Block* new_segment(DeviceState& state, int device, uint64_t stream, bool small, size_t size, size_t asked);
  void release_free_segments(DeviceState& state, int device);
  void return_block(DeviceState& state, Block* block);
  void process_events(DeviceState& state);

  std::mutex mutex_;
  std::vector<DeviceState> devices_;
};

// Page-locked host memory (cudaHostAlloc) for Tensor.pin_memory() and overlapped copies. owns() tells the copy path
// whether a host pointer lies in pinned memory, which is what may be copied asynchronously.
class PinnedAllocator final : public loom::Allocator {
 public:
  void* allocate(size_t nbytes, int device_index) override;
  void deallocate(void* ptr, size_t nbytes, int device_index) override;
  bool owns(const void* ptr);

 private:
  std::mutex mutex_;
  std::set<std::pair<const char*, size_t>> blocks_;  // (start, size)
};

}  // namespace loom_cuda
