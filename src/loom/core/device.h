// Device: where a tensor's storage lives (a device type and an index).
#pragma once
#include <cstdint>
#include <string>

namespace loom {

// Plugin is the slot an out-of-tree backend (a vendor GPU) registers under; see docs/backends.md.
// Any is used only in the kernel table, for device-independent kernels such as views.
enum class DeviceType : uint8_t { CPU, CUDA, Plugin, Any };
inline constexpr int kNumDeviceTypes = 4;

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  Device() = default;
  Device(DeviceType t, int i = 0) : type(t), index(i) {}  // NOLINT
  // Parses "cpu", "cuda", "cuda:1", and the registered plugin name.
  explicit Device(const std::string& spec);

  bool operator==(const Device& other) const = default;
  std::string str() const;
};

const char* device_type_name(DeviceType type);
// The name a plugin backend registered ("plugin" until one does).
void set_plugin_device_name(const std::string& name);

}  // namespace loom
