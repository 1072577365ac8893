#include "loom/core/generator.h"

#include <atomic>

#include "loom/core/backend.h"
#include "loom/core/error.h"

namespace loom {

std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> ctr, uint64_t key) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = static_cast<uint64_t>(kMul0) * ctr[0];
    uint64_t p1 = static_cast<uint64_t>(kMul1) * ctr[2];
    ctr = {static_cast<uint32_t>(p1 >> 32) ^ ctr[1] ^ k0, static_cast<uint32_t>(p1),
           static_cast<uint32_t>(p0 >> 32) ^ ctr[3] ^ k1, static_cast<uint32_t>(p0)};
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return ctr;
}

Generator& default_generator() {
  static Generator generator;
  return generator;
}

namespace {

constexpr int kMaxDeviceIndex = 64;

// Device generators, created on first use and never destroyed (tensors' ops may draw during exit).
struct DeviceGenerators {
  std::mutex mutex;
  std::atomic<Generator*> slots[kNumDeviceTypes][kMaxDeviceIndex] = {};
  uint64_t last_seed = Generator().seed();  // what a generator created from now on starts with
};

DeviceGenerators& device_generators() {
  static DeviceGenerators* generators = new DeviceGenerators();
  return *generators;
}

}  // namespace

Generator& default_generator(Device device) {
  if (device.type == DeviceType::CPU) return default_generator();
  device = resolve_device_index(device);
  LOOM_CHECK(device.index < kMaxDeviceIndex, Value, "generator: device index ", device.index, " is too large");
  DeviceGenerators& all = device_generators();
  std::atomic<Generator*>& slot = all.slots[static_cast<int>(device.type)][device.index];
  if (Generator* g = slot.load(std::memory_order_acquire)) return *g;
  std::lock_guard<std::mutex> lock(all.mutex);
  if (Generator* g = slot.load(std::memory_order_acquire)) return *g;
  auto* g = new Generator(all.last_seed);
  slot.store(g, std::memory_order_release);
  return *g;
}

void manual_seed(uint64_t seed) {
  default_generator().manual_seed(seed);
  DeviceGenerators& all = device_generators();
  std::lock_guard<std::mutex> lock(all.mutex);
  all.last_seed = seed;
  for (auto& type : all.slots)
    for (auto& slot : type)
      if (Generator* g = slot.load(std::memory_order_acquire)) g->manual_seed(seed);
}

}  // namespace loom
