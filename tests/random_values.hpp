// random_values: deterministic pseudo-random floats in [-1, 1) from a tiny LCG, for the kernel tests
// that are built without the engine (the GEMM's instruction-set variants) and those that want
// values independent of the Philox stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace flexnn::testing {

inline std::vector<float> random_values(int64_t count, uint32_t seed) {
  std::vector<float> v(static_cast<std::size_t>(count));
  uint32_t s = seed * 2654435761u + 12345u;
  for (float& x : v) {
    s = s * 1664525u + 1013904223u;
    x = static_cast<float>(s >> 8) / static_cast<float>(1u << 23) - 1.0f;
  }
  return v;
}

}  // namespace flexnn::testing
