// Device: where a tensor's storage lives (a device type and an index).
#pragma once
#include <cstdint>
#include <string>

namespace loom {

// Device types are slots in every per-device table (kernels, allocators, backends, autocast). CPU and CUDA have fixed
// slots; an out-of-tree backend (a vendor GPU) takes a Plugin slot under its own name when it registers
// (register_device_type, docs/backends.md), so several can be loaded at once.
// Any is used only in the kernel table, for device-independent kernels such as views; it is never a tensor's device.
enum class DeviceType : uint8_t { CPU, CUDA, Plugin0, Plugin1, Plugin2, Plugin3, Any };
inline constexpr int kNumDeviceTypes = 7;
inline constexpr int kFirstPluginSlot = 2;
inline constexpr int kNumPluginSlots = 4;

struct Device {
  DeviceType type = DeviceType::CPU;
  // -1 (kCurrentIndex) means "the backend's current device", as `cuda` without an index does in PyTorch; it is
  // resolved when memory is allocated or an op dispatches, so a tensor's device always has a concrete index.
  int index = 0;
  static constexpr int kCurrentIndex = -1;

  Device() = default;
  Device(DeviceType t, int i = 0) : type(t), index(t == DeviceType::CPU ? 0 : i) {}  // NOLINT
  // Parses "cpu", "cuda", "cuda:1" and the names backends registered ("cuda" alone is the current CUDA device).
  explicit Device(const std::string& spec);

  bool operator==(const Device& other) const = default;
  bool is_cpu() const { return type == DeviceType::CPU; }
  std::string str() const;
};

// The name of a device type ("cpu", "cuda", a registered plugin's name; "any" for the Any slot). Unregistered plugin
// slots are named "plugin0".."plugin3". The pointer stays valid for the life of the process.
const char* device_type_name(DeviceType type);

// Gives `name` a device type: "cuda" gets the CUDA slot, any other name the next free Plugin slot; registering a name
// twice returns its slot. Names are lowercase identifiers; "cpu", "any", "meta" and names of loom's own Python
// attributes are refused, as is a fifth plugin name. Thread-safe; a name, once given, is never changed or removed.
DeviceType register_device_type(const std::string& name);
// The registered slot of a name; false when no backend registered it.
bool find_device_type(const std::string& name, DeviceType* type);

}  // namespace loom
