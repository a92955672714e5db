// Dropout on a CUDA device. The elements are cut into tiles of kTileElements; a block takes a
// tile, generates the Philox blocks covering the tile's units once (one thread per block of four
// units) into shared memory as scale factors, then scales the tile's elements with coalesced
// accesses. Units are tracked per thread without a division per element, so one kernel serves
// dropout (one element per unit) and dropout2d (a channel per unit) at any unit size.
#include "kernels/cuda/dropout.hpp"

#include "kernels/cuda/stream.cuh"
#include "kernels/philox.hpp"

namespace flexnn::cuda {
namespace {

constexpr int kThreads = 256;
constexpr long long kTileElements = 2048;
// Philox blocks a tile can touch: one per four units, plus partial blocks at both ends.
constexpr long long kMaxTileBlocks = kTileElements / 4 + 2;

__global__ void dropout_kernel(const float* x, long long units, long long unit_size, float p, float scale,
                               unsigned long long seed, unsigned long long offset, float* y) {
  __shared__ float factors[4 * kMaxTileBlocks];
  const long long total = units * unit_size;
  const long long step_unit = blockDim.x / unit_size, step_rest = blockDim.x % unit_size;
  for (long long tile = blockIdx.x; tile * kTileElements < total; tile += gridDim.x) {
    const long long begin = tile * kTileElements, end = begin + kTileElements < total ? begin + kTileElements : total;
    const long long first_block = begin / unit_size / 4, last_block = (end - 1) / unit_size / 4;
    for (long long b = threadIdx.x; b <= last_block - first_block; b += blockDim.x) {
      const philox::Block block = philox::generate(seed, offset + static_cast<unsigned long long>(first_block + b));
      for (int k = 0; k < 4; ++k)
        factors[4 * b + k] = scale * static_cast<float>(philox::to_unit(block.x[k]) >= p);
    }
    __syncthreads();
    long long i = begin + threadIdx.x, unit = i / unit_size, rest = i % unit_size;
    for (; i < end; i += blockDim.x) {
      y[i] = x[i] * factors[unit - 4 * first_block];
      unit += step_unit;
      rest += step_rest;
      if (rest >= unit_size) {
        rest -= unit_size;
        ++unit;
      }
    }
    __syncthreads();  // the factors are free for the next tile
  }
}

}  // namespace

void dropout(const float* x, int64_t units, int64_t unit_size, float p, uint64_t seed, uint64_t offset, float* y) {
  const long long total = static_cast<long long>(units) * unit_size;
  if (total <= 0) return;
  const float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;  // at p = 1 nothing is kept (as on the CPU)
  const long long tiles = (total + kTileElements - 1) / kTileElements;
  FLEXNN_LAUNCH(dropout_kernel, dim3(blocks_for(tiles, 1)), dim3(kThreads), 0, stream(), x,
                static_cast<long long>(units), static_cast<long long>(unit_size), p, scale,
                static_cast<unsigned long long>(seed), static_cast<unsigned long long>(offset), y);
}

}  // namespace flexnn::cuda
