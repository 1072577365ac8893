#include "loom/core/storage.h"

#include "loom/core/allocator.h"
#include "loom/core/backend.h"

namespace loom {

std::shared_ptr<Storage> Storage::allocate(size_t nbytes, Device device) {
  if (device.type == DeviceType::CPU) return allocate_with(allocator_for(device.type), nbytes, device);
  device = resolve_device_index(device);
  return allocate_with(allocator_for(device.type), nbytes, device);
}

std::shared_ptr<Storage> Storage::allocate_with(Allocator& allocator, size_t nbytes, Device device) {
  void* data = allocator.allocate(nbytes, device.index);
  try {
    return std::make_shared<Storage>(Key{}, data, nbytes, device, &allocator, nullptr);
  } catch (...) {
    allocator.deallocate(data, nbytes, device.index);
    throw;
  }
}

std::shared_ptr<Storage> Storage::wrap(void* data, size_t nbytes, Device device, std::function<void()> release) {
  return std::make_shared<Storage>(Key{}, data, nbytes, device, nullptr, std::move(release));
}

Storage::~Storage() {
  if (allocator_) allocator_->deallocate(data_, nbytes_, device_.index);
  else if (release_) release_();
}

}  // namespace loom
