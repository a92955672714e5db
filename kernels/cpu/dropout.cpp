// Dropout on the CPU: chunks of units aligned to Philox blocks, each block generated once for its
// four units.
#include "kernels/cpu/dropout.hpp"

#include "kernels/cpu/parallel.hpp"
#include "kernels/philox.hpp"

#include <algorithm>

namespace flexnn::cpu {

void dropout(const float* x, int64_t units, int64_t unit_size, float p, uint64_t seed, uint64_t offset, float* y) {
  const float scale = 1.0f / (1.0f - p);
  const int64_t grain = std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(1, unit_size) / 4) * 4;
  parallel_for(0, units, grain, [&](int64_t begin, int64_t end) {  // begin is a multiple of 4
    for (int64_t first = begin; first < end; first += 4) {
      const philox::Block block = philox::generate(seed, offset + static_cast<uint64_t>(first) / 4);
      const int64_t last = std::min<int64_t>(end, first + 4);
      for (int64_t u = first; u < last; ++u) {
        const float factor = philox::to_unit(block.x[u - first]) >= p ? scale : 0.0f;
        const float* xu = x + u * unit_size;
        float* yu = y + u * unit_size;
        for (int64_t j = 0; j < unit_size; ++j) yu[j] = xu[j] * factor;
      }
    }
  });
}

}  // namespace flexnn::cpu
