// Generator: a counter-based Philox4x32-10 stream. Element i of a random fill depends only on
// (seed, offset, i), so a CUDA kernel or any thread split reproduces the CPU stream exactly.
#pragma once
#include <array>
#include <cstdint>
#include <mutex>

#include "loom/core/device.h"

namespace loom {

// One Philox4x32-10 block: four 32-bit outputs for a 128-bit counter and a 64-bit key.
std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> counter, uint64_t key);

class Generator {
 public:
  explicit Generator(uint64_t seed = 67280421310721ull) : seed_(seed) {}

  uint64_t seed() const { return seed_; }
  void manual_seed(uint64_t seed) {
    std::lock_guard<std::mutex> lock(mutex_);
    seed_ = seed;
    offset_ = 0;
  }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t offset) { offset_ = offset; }

  // Reserves `blocks` Philox blocks for one fill and returns the first block's counter.
  // The fill then reads block (first + i / 4) for element i.
  uint64_t reserve(uint64_t blocks) {
    std::lock_guard<std::mutex> lock(mutex_);
    uint64_t first = offset_;
    offset_ += blocks;
    return first;
  }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
  std::mutex mutex_;
};

// The process-wide default generator of the CPU (torch.default_generator).
Generator& default_generator();
// The default generator of a device (torch.cuda.default_generators[i]); the CPU's for the CPU. Each device draws from
// its own (seed, offset) stream, so random numbers on one device do not shift another's; the same seed and draws give
// the same values on every device (the stream is counter-based). Created on first use, seeded with the last seed
// manual_seed set.
Generator& default_generator(Device device);
// Seeds every device's default generator, including those created later (torch.manual_seed).
void manual_seed(uint64_t seed);

}  // namespace loom
