// ExampleRandom: the random numbers one example draws in one epoch (a random crop's position, a
// flip), taken from the Philox stream of the loader's seed at blocks that only (epoch, index) own.
// An example is therefore augmented the same way whatever the batch order, batch size, number of
// loader threads or what ran before, and a resumed run sees exactly the augmentations an
// uninterrupted run would.
//
// Layout: epoch e owns blocks [e << 32, (e + 1) << 32) of the seed's stream. The DataLoader's
// shuffle draws from the lower half (one block per example); example i draws from the
// kBlocks blocks at (e << 32) + 2^31 + kBlocks * i, i.e. at most kMaxDraws uniforms.
#pragma once

#include "engine/error.hpp"
#include "kernels/philox.hpp"

#include <algorithm>
#include <cstdint>

namespace flexnn::datasets {

class ExampleRandom {
 public:
  static constexpr uint64_t kBlocks = 16;
  static constexpr int64_t kMaxDraws = 4 * kBlocks;
  static constexpr int64_t kMaxIndex = int64_t{1} << 27;  // kBlocks * kMaxIndex == 2^31
  static constexpr int64_t kMaxEpoch = (int64_t{1} << 32) - 1;

  ExampleRandom(uint64_t seed, int64_t epoch, int64_t index) : seed_(seed) {
    FLEXNN_CHECK(epoch >= 0 && epoch <= kMaxEpoch, "ExampleRandom: epoch {} is outside [0, {}]", epoch, kMaxEpoch);
    FLEXNN_CHECK(index >= 0 && index < kMaxIndex, "ExampleRandom: example index {} is outside [0, {})", index,
                 kMaxIndex);
    offset_ = (static_cast<uint64_t>(epoch) << 32) + (uint64_t{1} << 31) + kBlocks * static_cast<uint64_t>(index);
  }

  // The next uniform value in [0, 1) (24 random bits).
  float uniform() {
    FLEXNN_CHECK(draws_ < kMaxDraws, "ExampleRandom: an example may draw at most {} random numbers per epoch",
                 kMaxDraws);
    return philox::uniform(seed_, offset_, static_cast<uint64_t>(draws_++));
  }
  // A uniform integer in [0, n), n >= 1.
  int64_t below(int64_t n) {
    FLEXNN_CHECK(n >= 1, "ExampleRandom::below: n must be >= 1, got {}", n);
    return std::min(n - 1, static_cast<int64_t>(static_cast<double>(uniform()) * static_cast<double>(n)));
  }
  int64_t draws() const { return draws_; }

 private:
  uint64_t seed_;
  uint64_t offset_;
  int64_t draws_ = 0;
};

}  // namespace flexnn::datasets
