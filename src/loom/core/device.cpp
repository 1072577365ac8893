#include "loom/core/device.h"

#include "loom/core/error.h"

namespace loom {

namespace {
std::string& plugin_name() {
  static std::string name = "plugin";
  return name;
}
}  // namespace

void set_plugin_device_name(const std::string& name) { plugin_name() = name; }

const char* device_type_name(DeviceType type) {
  switch (type) {
    case DeviceType::CPU: return "cpu";
    case DeviceType::CUDA: return "cuda";
    case DeviceType::Plugin: return plugin_name().c_str();
    default: return "any";
  }
}

Device::Device(const std::string& spec) {
  std::string name = spec;
  auto colon = spec.find(':');
  if (colon != std::string::npos) {
    name = spec.substr(0, colon);
    std::string digits = spec.substr(colon + 1);
    LOOM_CHECK(!digits.empty() && digits.size() < 6 && digits.find_first_not_of("0123456789") == std::string::npos,
               Value, "device: invalid device string '", spec, "'");
    index = std::stoi(digits);
  }
  if (name == "cpu") type = DeviceType::CPU;
  else if (name == "cuda") type = DeviceType::CUDA;
  else if (name == plugin_name()) type = DeviceType::Plugin;
  else fail(ErrorKind::Value, "device: unknown device type in '", spec, "' (expected cpu, cuda or ", plugin_name(), ")");
}

std::string Device::str() const {
  if (type == DeviceType::CPU) return "cpu";
  return std::string(device_type_name(type)) + ":" + std::to_string(index);
}

}  // namespace loom
