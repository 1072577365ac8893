// Generator: a counter-based Philox4x32-10 stream. Element i of a random fill depends only on
// (seed, offset, i), so a CUDA kernel or any thread split reproduces the CPU stream exactly.
#pragma once
#include <array>
#include <cstdint>
#include <mutex>

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

// The process-wide default generator (torch.default_generator).
Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace loom
