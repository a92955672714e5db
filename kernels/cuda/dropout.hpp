// The dropout kernel on a CUDA device, with the CPU kernel's signature and stream use
// (kernels/cpu/dropout.hpp): unit i is kept when philox::uniform(seed, offset, i) >= p, so a mask
// is bit-identical to the CPU's for the same generator state. Pointers are device pointers.
#pragma once

#include <cstdint>

namespace flexnn::cuda {

// y = x * (kept ? 1 / (1 - p) : 0) per unit of unit_size contiguous elements; x and y may alias.
void dropout(const float* x, int64_t units, int64_t unit_size, float p, uint64_t seed, uint64_t offset, float* y);

}  // namespace flexnn::cuda
