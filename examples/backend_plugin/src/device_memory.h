// Device memory of the simulated device: an arena the host cannot read.
//
// The arena is one memfd mapped twice: the *device* view (PROT_NONE) is what loom sees as data pointers, so any host
// code that dereferences a vdev tensor's data_ptr() dies with SIGSEGV at once instead of silently working; the
// *private* view (read-write) is where this backend's stream threads do the work. to_private() translates.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "loom/core/backend.h"

namespace vdev {

class DeviceArena {
 public:
  DeviceArena(int device_index, size_t capacity);
  ~DeviceArena();

  // The private (read-write) address behind a device address of this arena.
  void* to_private(const void* device_ptr) const;
  bool contains(const void* device_ptr) const;

  // A stream-ordered caching allocator over the arena (loom's contract, core/backend.h): a freed block goes back to
  // the pool of the stream it was allocated on and is reused at once by that stream; a block recorded on other streams
  // waits until those streams have passed the free.
  void* allocate(size_t nbytes, uint64_t stream);
  void deallocate(void* ptr, uint64_t stream_of_free);
  void record_stream(void* ptr, uint64_t stream);
  void empty_cache();
  loom::DeviceMemoryStats stats();
  void reset_peak();

 private:
  struct Block {
    size_t size;
    uint64_t stream;
    std::vector<uint64_t> other_streams;
  };
  static size_t round_up(size_t nbytes);

  int device_index_;
  int fd_ = -1;
  size_t capacity_;
  char* device_base_ = nullptr;
  char* private_base_ = nullptr;
  std::mutex mutex_;
  size_t bump_ = 0;                                                     // arena bytes ever carved out
  std::unordered_map<void*, Block> live_;                               // handed out
  std::map<std::pair<uint64_t, size_t>, std::vector<void*>> free_;      // (stream, size) -> blocks
  std::unordered_map<void*, size_t> released_;  // free blocks whose pages empty_cache gave back (not reserved)
  loom::DeviceMemoryStats stats_;
};

}  // namespace vdev
