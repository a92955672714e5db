// Dropout on the CPU: chunks of units aligned to Philox blocks; blocks are generated eight at a
// time (the compiler vectorises the rounds across them), each block serving four units.
#include "kernels/cpu/dropout.hpp"

#include "kernels/cpu/parallel.hpp"
#include "kernels/philox.hpp"

#include <algorithm>

namespace flexnn::cpu {
namespace {

constexpr int64_t kGroupBlocks = 8;
constexpr int64_t kGroupUnits = 4 * kGroupBlocks;

}  // namespace

void dropout(const float* x, int64_t units, int64_t unit_size, float p, uint64_t seed, uint64_t offset, float* y) {
  const float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;  // at p = 1 nothing is kept
  const int64_t grain =
      std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(1, unit_size) / kGroupUnits) * kGroupUnits;
  parallel_for(0, units, grain, [&](int64_t begin, int64_t end) {  // begin is a multiple of kGroupUnits
    for (int64_t first = begin; first < end; first += kGroupUnits) {
      uint32_t words[kGroupUnits];
      for (int64_t b = 0; b < kGroupBlocks; ++b) {
        const philox::Block block = philox::generate(seed, offset + static_cast<uint64_t>(first) / 4 + b);
        for (int k = 0; k < 4; ++k) words[4 * b + k] = block.x[k];
      }
      float factor[kGroupUnits];  // branch-free, so it vectorises
      for (int64_t k = 0; k < kGroupUnits; ++k) factor[k] = scale * static_cast<float>(philox::to_unit(words[k]) >= p);
      const int64_t count = std::min(end - first, kGroupUnits);
      if (unit_size == 1) {
        for (int64_t k = 0; k < count; ++k) y[first + k] = x[first + k] * factor[k];
        continue;
      }
      for (int64_t k = 0; k < count; ++k) {
        const float* xu = x + (first + k) * unit_size;
        float* yu = y + (first + k) * unit_size;
        for (int64_t j = 0; j < unit_size; ++j) yu[j] = xu[j] * factor[k];
      }
    }
  });
}

}  // namespace flexnn::cpu
