#include "caching_allocator.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <tuple>

#include "cuda_check.h"
#include "device_guard.h"

namespace loom_cuda {

namespace {

constexpr size_t kMinBlock = 512;                 // every block is a multiple of this
constexpr size_t kSmallRequest = size_t(1) << 20;  // up to 1 MiB: the small pool
constexpr size_t kSmallSegment = size_t(2) << 20;  // segments of the small pool
constexpr size_t kMediumRequest = size_t(10) << 20;
constexpr size_t kMediumSegment = size_t(20) << 20;
constexpr size_t kSegmentRound = size_t(2) << 20;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

std::string mib(size_t bytes) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.2f MiB", static_cast<double>(bytes) / (1 << 20));
  return text;
}

}  // namespace

bool CachingAllocator::BlockOrder::operator()(const Block* a, const Block* b) const {
  return std::tie(a->stream, a->small, a->size, a->ptr) < std::tie(b->stream, b->small, b->size, b->ptr);
}

CachingAllocator::CachingAllocator(int device_count) : devices_(std::max(device_count, 0)) {}

CachingAllocator::Block* CachingAllocator::find_free(DeviceState& state, uint64_t stream, bool small, size_t size) {
  Block key;
  key.stream = stream;
  key.small = small;
  key.size = size;
  auto it = state.free_blocks.lower_bound(&key);
  if (it == state.free_blocks.end() || (*it)->stream != stream || (*it)->small != small) return nullptr;
  Block* block = *it;
  state.free_blocks.erase(it);
  return block;
}

CachingAllocator::Block* CachingAllocator::new_segment(DeviceState& state, int device, uint64_t stream, bool small,
                                                       size_t size, size_t asked) {
  const size_t segment = small ? kSmallSegment : size < kMediumRequest ? kMediumSegment : round_up(size, kSegmentRound);
  DeviceGuard guard(device);
  void* ptr = nullptr;
  cudaError_t status = cudaMalloc(&ptr, segment);
  if (status == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    release_free_segments(state, device);  // cached memory may be what stands in the way
    status = cudaMalloc(&ptr, segment);
  }
  if (status == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    size_t free_bytes = 0, total_bytes = 0;
    (void)cudaMemGetInfo(&free_bytes, &total_bytes);
    loom::fail(loom::ErrorKind::Runtime, "cuda: out of memory on cuda:", device, ": tried to allocate ", mib(asked),
               " (a segment of ", mib(segment), "); ", mib(state.stats.allocated_bytes), " allocated by loom, ",
               mib(state.stats.reserved_bytes), " reserved by loom, ", mib(free_bytes), " free of ",
               mib(total_bytes), " on the device");
  }
  check(status, "cudaMalloc");
  auto* block = new Block();
  block->device = device;
  block->stream = stream;
  block->small = small;
  block->size = segment;
  block->ptr = static_cast<char*>(ptr);
  state.stats.reserved_bytes += static_cast<int64_t>(segment);
  state.stats.peak_reserved_bytes = std::max(state.stats.peak_reserved_bytes, state.stats.reserved_bytes);
  return block;
}

void* CachingAllocator::allocate(size_t nbytes, int device) {
  LOOM_CHECK(device >= 0 && device < static_cast<int>(devices_.size()), Value, "cuda: no device ", device);
  const size_t size = round_up(std::max(nbytes, kMinBlock), kMinBlock);
  const bool small = size <= kSmallRequest;
  const uint64_t stream = loom::current_stream(loom::Device(loom::DeviceType::CUDA, device)).id;
  std::lock_guard<std::mutex> lock(mutex_);
  DeviceState& state = devices_[device];
  process_events(state);
  Block* block = find_free(state, stream, small, size);
  if (!block) block = new_segment(state, device, stream, small, size, nbytes);
  // Split off the rest when it is worth keeping as a block of its own.
  const size_t rest = block->size - size;
  if (small ? rest >= kMinBlock : rest > kSmallRequest) {
    auto* tail = new Block(*block);
    tail->ptr = block->ptr + size;
    tail->size = rest;
    tail->prev = block;
    tail->next = block->next;
    if (tail->next) tail->next->prev = tail;
    block->next = tail;
    block->size = size;
    state.free_blocks.insert(tail);
  }
  block->allocated = true;
  state.live[block->ptr] = block;
  state.stats.allocated_bytes += static_cast<int64_t>(block->size);
  state.stats.peak_allocated_bytes = std::max(state.stats.peak_allocated_bytes, state.stats.allocated_bytes);
  ++state.stats.num_allocs;
  return block->ptr;
}

void CachingAllocator::record_stream(void* ptr, const loom::Stream& stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  DeviceState& state = devices_.at(stream.device.index);
  auto it = state.live.find(ptr);
  if (it == state.live.end()) return;
  Block* block = it->second;
  if (block->stream != stream.id &&
      std::find(block->other_streams.begin(), block->other_streams.end(), stream.id) == block->other_streams.end())
    block->other_streams.push_back(stream.id);
}

void CachingAllocator::deallocate(void* ptr, size_t, int device) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  DeviceState& state = devices_.at(device);
  auto it = state.live.find(ptr);
  if (it == state.live.end()) return;
  Block* block = it->second;
  block->allocated = false;
  state.stats.allocated_bytes -= static_cast<int64_t>(block->size);
  ++state.stats.num_frees;
  if (block->other_streams.empty()) {
    state.live.erase(it);
    return_block(state, block);
    return;
  }
  // Used on other streams too: reusable once each of them has reached this point.
  DeviceGuard guard(device);
  for (uint64_t other : block->other_streams) {
    cudaEvent_t event = nullptr;
    check(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), "cudaEventCreate (allocator)");
    check(cudaEventRecord(event, reinterpret_cast<cudaStream_t>(other)), "cudaEventRecord (allocator)");
    state.pending.push_back({event, block});
    ++block->pending_events;
  }
  block->other_streams.clear();
}

void CachingAllocator::process_events(DeviceState& state) {
  for (size_t i = 0; i < state.pending.size();) {
    PendingEvent& p = state.pending[i];
    cudaError_t status = cudaEventQuery(static_cast<cudaEvent_t>(p.event));
    if (status == cudaErrorNotReady) {
      ++i;
      continue;
    }
    check(status, "cudaEventQuery (allocator)");
    cudaEventDestroy(static_cast<cudaEvent_t>(p.event));
    Block* block = p.block;
    p = state.pending.back();
    state.pending.pop_back();
    if (--block->pending_events == 0) {
      state.live.erase(block->ptr);
      return_block(state, block);
    }
  }
}

// A block back in its pool, merged with free neighbours of its segment (blocks waiting for events are not free).
void CachingAllocator::return_block(DeviceState& state, Block* block) {
  auto is_free = [&](Block* b) { return b && !b->allocated && b->pending_events == 0 && state.free_blocks.count(b); };
  if (is_free(block->prev)) {
    Block* prev = block->prev;
    state.free_blocks.erase(prev);
    prev->size += block->size;
    prev->next = block->next;
    if (prev->next) prev->next->prev = prev;
    delete block;
    block = prev;
  }
  if (is_free(block->next)) {
    Block* next = block->next;
    state.free_blocks.erase(next);
    block->size += next->size;
    block->next = next->next;
    if (block->next) block->next->prev = block;
    delete next;
  }
  state.free_blocks.insert(block);
}

// Whole free segments (blocks with no neighbours) go back to the driver. cudaFree waits for the device.
void CachingAllocator::release_free_segments(DeviceState& state, int device) {
  DeviceGuard guard(device);
  for (auto it = state.free_blocks.begin(); it != state.free_blocks.end();) {
    Block* block = *it;
    if (block->prev || block->next) {
      ++it;
      continue;
    }
    check(cudaFree(block->ptr), "cudaFree");
    state.stats.reserved_bytes -= static_cast<int64_t>(block->size);
    it = state.free_blocks.erase(it);
    delete block;
  }
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (int d = 0; d < static_cast<int>(devices_.size()); ++d) {
    process_events(devices_[d]);
    release_free_segments(devices_[d], d);
  }
}

loom::DeviceMemoryStats CachingAllocator::stats(int device) {
  std::lock_guard<std::mutex> lock(mutex_);
  return devices_.at(device).stats;
}

void CachingAllocator::reset_peak(int device) {
  std::lock_guard<std::mutex> lock(mutex_);
  loom::DeviceMemoryStats& s = devices_.at(device).stats;
  s.peak_allocated_bytes = s.allocated_bytes;
  s.peak_reserved_bytes = s.reserved_bytes;
}

// ---- pinned host memory ----

void* PinnedAllocator::allocate(size_t nbytes, int) {
  void* ptr = nullptr;
  cudaError_t status = cudaHostAlloc(&ptr, std::max<size_t>(nbytes, 1), cudaHostAllocDefault);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    loom::fail(loom::ErrorKind::Runtime, "cuda: cannot allocate ", mib(nbytes), " of pinned host memory: ",
               cudaGetErrorString(status));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  blocks_.insert({static_cast<const char*>(ptr), std::max<size_t>(nbytes, 1)});
  return ptr;
}

void PinnedAllocator::deallocate(void* ptr, size_t, int) {
  if (!ptr) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = blocks_.lower_bound({static_cast<const char*>(ptr), 0});
    if (it != blocks_.end() && it->first == ptr) blocks_.erase(it);
  }
  // An asynchronous copy may still read the block: cudaFreeHost waits for the device before it frees.
  check(cudaFreeHost(ptr), "cudaFreeHost");
}

bool PinnedAllocator::owns(const void* ptr) {
  const char* p = static_cast<const char*>(ptr);
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = blocks_.upper_bound({p, SIZE_MAX});
  if (it == blocks_.begin()) return false;
  --it;
  return p < it->first + it->second;
}

}  // namespace loom_cuda
