#include "loom/core/device.h"

#include <array>
#include <atomic>
#include <mutex>

#include "loom/core/error.h"

namespace loom {

namespace {

// Names are written once under the mutex and published through `named` (release); readers take no lock.
struct DeviceNames {
  std::mutex mutex;
  std::array<std::string, kNumDeviceTypes> names = {"cpu", "cuda", "plugin0", "plugin1", "plugin2", "plugin3", "any"};
  std::array<std::atomic<bool>, kNumDeviceTypes> named = {true, false, false, false, false, false, false};
};

DeviceNames& device_names() {
  static DeviceNames* names = new DeviceNames();  // never destroyed: names outlive every tensor
  return *names;
}

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 32 || !(name[0] >= 'a' && name[0] <= 'z')) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

bool reserved_name(const std::string& name) {
  // "cpu" is built in, "any" is the kernel table's pseudo-device, "meta" is PyTorch's; the rest would shadow loom's
  // own Python modules (a backend's module is loom.<name>).
  static const char* reserved[] = {"cpu", "any", "meta", "nn", "optim", "utils", "backends", "autograd", "amp",
                                   "distributed", "compiler", "data", "models", "train", "device", "tensor"};
  for (const char* r : reserved)
    if (name == r) return true;
  return name.rfind("plugin", 0) == 0;
}

}  // namespace

const char* device_type_name(DeviceType type) {
  const int slot = static_cast<int>(type);
  if (slot < 0 || slot >= kNumDeviceTypes) return "invalid";
  return device_names().names[slot].c_str();
}

DeviceType register_device_type(const std::string& name) {
  LOOM_CHECK(valid_name(name), Value, "register_device_type: '", name,
             "' is not a valid device name (lowercase letters, digits and '_', starting with a letter, at most 32)");
  LOOM_CHECK(!reserved_name(name), Value, "register_device_type: the device name '", name, "' is reserved");
  DeviceNames& names = device_names();
  std::lock_guard<std::mutex> lock(names.mutex);
  if (name == "cuda") {
    names.named[static_cast<int>(DeviceType::CUDA)].store(true, std::memory_order_release);
    return DeviceType::CUDA;
  }
  for (int slot = kFirstPluginSlot; slot < kFirstPluginSlot + kNumPluginSlots; ++slot)
    if (names.named[slot].load(std::memory_order_acquire) && names.names[slot] == name)
      return static_cast<DeviceType>(slot);
  for (int slot = kFirstPluginSlot; slot < kFirstPluginSlot + kNumPluginSlots; ++slot) {
    if (names.named[slot].load(std::memory_order_acquire)) continue;
    names.names[slot] = name;
    names.named[slot].store(true, std::memory_order_release);
    return static_cast<DeviceType>(slot);
  }
  fail(ErrorKind::Runtime, "register_device_type: cannot register '", name, "': all ", kNumPluginSlots,
       " plugin device slots are taken");
}

bool find_device_type(const std::string& name, DeviceType* type) {
  if (name == "cpu" || name == "cuda") {
    *type = name == "cpu" ? DeviceType::CPU : DeviceType::CUDA;
    return true;
  }
  DeviceNames& names = device_names();
  for (int slot = kFirstPluginSlot; slot < kFirstPluginSlot + kNumPluginSlots; ++slot)
    if (names.named[slot].load(std::memory_order_acquire) && names.names[slot] == name) {
      *type = static_cast<DeviceType>(slot);
      return true;
    }
  return false;
}

namespace {
std::string known_device_names() {
  std::string out = "cpu, cuda";
  for (int slot = kFirstPluginSlot; slot < kFirstPluginSlot + kNumPluginSlots; ++slot)
    if (device_names().named[slot].load(std::memory_order_acquire)) out += std::string(", ") + device_names().names[slot];
  return out;
}
}  // namespace

Device::Device(const std::string& spec) {
  std::string name = spec;
  index = kCurrentIndex;
  auto colon = spec.find(':');
  if (colon != std::string::npos) {
    name = spec.substr(0, colon);
    std::string digits = spec.substr(colon + 1);
    LOOM_CHECK(!digits.empty() && digits.size() < 6 && digits.find_first_not_of("0123456789") == std::string::npos,
               Value, "device: invalid device string '", spec, "'");
    index = std::stoi(digits);
  }
  LOOM_CHECK(find_device_type(name, &type), Value, "device: unknown device type in '", spec, "' (expected one of ",
             known_device_names(), ")");
  // There is one host device: "cpu:1" means the CPU, as PyTorch's tensors on "cpu:1" end up on "cpu".
  if (type == DeviceType::CPU) index = 0;
}

std::string Device::str() const {
  if (type == DeviceType::CPU) return "cpu";
  if (index == kCurrentIndex) return device_type_name(type);
  return std::string(device_type_name(type)) + ":" + std::to_string(index);
}

}  // namespace loom
