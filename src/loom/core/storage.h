// Storage: a reference-counted buffer on one device, shared by a tensor and all of its views.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "loom/core/device.h"

namespace loom {

class Allocator;

class Storage {
 public:
  // Allocates nbytes through the device's allocator (a device without an index: the backend's current device).
  static std::shared_ptr<Storage> allocate(size_t nbytes, Device device);
  // Allocates through a given allocator, e.g. a backend's pinned host allocator for a CPU storage.
  static std::shared_ptr<Storage> allocate_with(Allocator& allocator, size_t nbytes, Device device);
  // Wraps memory owned elsewhere (a NumPy array, a DLPack tensor); `release` runs when the last user is gone.
  static std::shared_ptr<Storage> wrap(void* data, size_t nbytes, Device device, std::function<void()> release);

  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage();

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  // The allocator the memory came from; nullptr for wrapped memory.
  Allocator* allocator() const { return allocator_; }

  // Version counter shared by every view of this storage; bumped by each in-place write so autograd can
  // detect a saved tensor that was modified after it was saved.
  uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  // Lets allocate()/wrap() build a Storage in one allocation with its reference count (allocate_shared)
  // while the constructor stays closed to everyone else.
  struct Key {};

 public:
  Storage(Key, void* data, size_t nbytes, Device device, Allocator* allocator, std::function<void()> release)
      : data_(data), nbytes_(nbytes), device_(device), allocator_(allocator), release_(std::move(release)) {}

 private:
  void* data_;
  size_t nbytes_;
  Device device_;
  Allocator* allocator_;           // memory from a device allocator goes back to it; no std::function needed
  std::function<void()> release_;  // memory owned elsewhere (wrap)
  uint64_t version_ = 0;
};

}  // namespace loom
