// Generator: the (seed, offset) state of a Philox4x32-10 stream. Draws reserve blocks of the
// stream by advancing the offset, so the same seed and the same sequence of draws give the same
// numbers on every device and thread count. manual_seed() reseeds the default generator, which
// module initialisation uses unless given another.
#pragma once

#include <cstdint>
#include <vector>

namespace flexnn {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) { seed_ = seed, offset_ = offset; }
  // Reserves `blocks` Philox blocks; returns the offset of the first.
  uint64_t reserve(uint64_t blocks) {
    const uint64_t start = offset_;
    offset_ += blocks;
    return start;
  }
  // Host draws (used for shuffling and small decisions).
  std::vector<float> uniform(int64_t n);
  // A uniformly random permutation of 0..n-1 (Fisher-Yates on the stream's uniforms).
  std::vector<int64_t> permutation(int64_t n);

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace flexnn
