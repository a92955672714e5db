// Dropout kernels. A mask is a draw from the Philox stream (kernels/philox.hpp): the caller
// reserves philox::uniform_blocks(units) blocks of its generator at `offset`, and unit i is kept
// when philox::uniform(seed, offset, i) >= p. A unit is one element (dropout) or one (n, c)
// channel of unit_size contiguous elements (dropout2d). Kept values are scaled by 1 / (1 - p);
// dropped values are multiplied by 0 (so NaN stays NaN, as in torch). Applying the same call
// (same seed, offset, p) to the output gradient gives the backward. The CUDA backend reproduces
// this stream use bit for bit.
#pragma once

#include <cstdint>

namespace flexnn::cpu {

// y = x * (kept ? 1 / (1 - p) : 0) per unit; x and y hold units * unit_size elements (may alias).
void dropout(const float* x, int64_t units, int64_t unit_size, float p, uint64_t seed, uint64_t offset, float* y);

}  // namespace flexnn::cpu
