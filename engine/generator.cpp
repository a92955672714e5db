// Host draws from a Generator and the process-wide default generator.
#include "engine/generator.hpp"

#include "kernels/philox.hpp"

#include <numeric>

namespace flexnn {

std::vector<float> Generator::uniform(int64_t n) {
  const uint64_t offset = reserve(philox::uniform_blocks(n));
  std::vector<float> values(n);
  for (int64_t i = 0; i < n; ++i) values[i] = philox::uniform(seed_, offset, i);
  return values;
}

std::vector<int64_t> Generator::permutation(int64_t n) {
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  const uint64_t offset = reserve(n);  // one block (first word, full 32 bits) per swap
  for (int64_t i = n - 1; i > 0; --i) {
    const uint32_t word = philox::generate(seed_, offset + i).x[0];
    const int64_t j = static_cast<int64_t>((static_cast<uint64_t>(word) * static_cast<uint64_t>(i + 1)) >> 32);
    std::swap(order[i], order[j]);
  }
  return order;
}

Generator& default_generator() {
  static Generator generator(0);
  return generator;
}

void manual_seed(uint64_t seed) { default_generator().set_state(seed, 0); }

}  // namespace flexnn
