#include "device_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>

#include "loom/core/error.h"
#include "work_queue.h"

namespace vdev {

DeviceArena::DeviceArena(int device_index, size_t capacity) : device_index_(device_index), capacity_(capacity) {
  const std::string name = "loom-vdev-" + std::to_string(device_index);
  fd_ = memfd_create(name.c_str(), MFD_CLOEXEC);
  LOOM_CHECK(fd_ >= 0 && ftruncate(fd_, static_cast<off_t>(capacity)) == 0, Runtime,
             "vdev: cannot create the device memory of vdev:", device_index);
  // MAP_NORESERVE: the arena is sparse; pages exist only once written.
  void* device = mmap(nullptr, capacity, PROT_NONE, MAP_SHARED | MAP_NORESERVE, fd_, 0);
  void* priv = mmap(nullptr, capacity, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd_, 0);
  LOOM_CHECK(device != MAP_FAILED && priv != MAP_FAILED, Runtime, "vdev: cannot map the memory of vdev:", device_index);
  device_base_ = static_cast<char*>(device);
  private_base_ = static_cast<char*>(priv);
}

DeviceArena::~DeviceArena() {
  munmap(device_base_, capacity_);
  munmap(private_base_, capacity_);
  close(fd_);
}

bool DeviceArena::contains(const void* p) const {
  const char* c = static_cast<const char*>(p);
  return c >= device_base_ && c < device_base_ + capacity_;
}

void* DeviceArena::to_private(const void* device_ptr) const {
  return private_base_ + (static_cast<const char*>(device_ptr) - device_base_);
}

size_t DeviceArena::round_up(size_t nbytes) {
  size_t size = nbytes < 512 ? 512 : (nbytes + 511) / 512 * 512;
  if (size > (size_t(1) << 20)) {  // large blocks: quarter powers of two, so sizes cluster and get reused
    size_t step = size_t(1) << (63 - __builtin_clzll(size) - 2);
    size = (size + step - 1) / step * step;
  }
  return size;
}

void* DeviceArena::allocate(size_t nbytes, uint64_t stream) {
  const size_t size = round_up(nbytes);
  std::lock_guard<std::mutex> lock(mutex_);
  void* ptr = nullptr;
  auto it = free_.find({stream, size});
  if (it != free_.end() && !it->second.empty()) {
    ptr = it->second.back();
    it->second.pop_back();
    if (released_.erase(ptr)) stats_.reserved_bytes += static_cast<int64_t>(size);  // its pages come back on use
  } else {
    LOOM_CHECK(size <= capacity_ - bump_, Runtime, "vdev: out of memory on vdev:", device_index_, ": tried to allocate ",
               nbytes, " bytes; ", stats_.allocated_bytes, " allocated, ", bump_, " reserved, ", capacity_ - bump_,
               " free of ", capacity_);
    ptr = device_base_ + bump_;
    bump_ += size;
    stats_.reserved_bytes += static_cast<int64_t>(size);
    stats_.peak_reserved_bytes = std::max(stats_.peak_reserved_bytes, stats_.reserved_bytes);
  }
  live_[ptr] = Block{size, stream, {}};
  stats_.allocated_bytes += static_cast<int64_t>(size);
  stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
  ++stats_.num_allocs;
  return ptr;
}

void DeviceArena::record_stream(void* ptr, uint64_t stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(ptr);
  if (it != live_.end() && it->second.stream != stream) it->second.other_streams.push_back(stream);
}

void DeviceArena::deallocate(void* ptr, uint64_t) {
  Block block;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(ptr);
    if (it == live_.end()) return;
    block = it->second;
    live_.erase(it);
    stats_.allocated_bytes -= static_cast<int64_t>(block.size);
    ++stats_.num_frees;
    if (block.other_streams.empty()) {
      free_[{block.stream, block.size}].push_back(ptr);
      return;
    }
  }
  // Used on other streams too: the block returns to its pool only once they have all reached this point.
  for (uint64_t other : block.other_streams) streams().get(device_index_, other).synchronize();
  std::lock_guard<std::mutex> lock(mutex_);
  free_[{block.stream, block.size}].push_back(ptr);
}

void DeviceArena::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  // Pages of cached blocks go back to the system; the address range stays reserved for reuse.
  for (auto& [key, blocks] : free_)
    for (void* p : blocks) {
      if (released_.count(p)) continue;
      fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<char*>(p) - device_base_,
                static_cast<off_t>(key.second));
      released_[p] = key.second;
      stats_.reserved_bytes -= static_cast<int64_t>(key.second);
    }
}

loom::DeviceMemoryStats DeviceArena::stats() {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void DeviceArena::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_allocated_bytes = stats_.allocated_bytes;
  stats_.peak_reserved_bytes = stats_.reserved_bytes;
}

}  // namespace vdev
