#include "loom/core/storage.h"

#include "loom/core/allocator.h"

namespace loom {

std::shared_ptr<Storage> Storage::allocate(size_t nbytes, Device device) {
  Allocator& allocator = allocator_for(device.type);
  void* data = allocator.allocate(nbytes, device.index);
  auto release = [&allocator, data, nbytes, index = device.index] { allocator.deallocate(data, nbytes, index); };
  return std::shared_ptr<Storage>(new Storage(data, nbytes, device, release));
}

std::shared_ptr<Storage> Storage::wrap(void* data, size_t nbytes, Device device, std::function<void()> release) {
  return std::shared_ptr<Storage>(new Storage(data, nbytes, device, std::move(release)));
}

Storage::~Storage() {
  if (release_) release_();
}

}  // namespace loom
