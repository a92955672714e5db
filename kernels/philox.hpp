// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11), the one
// counter-based generator behind every random number in flexnn. Header-only and host/device
// neutral so the CPU and CUDA backends produce the same stream bit for bit.
//
// Stream layout (docs/rng.md): a generator has a 64-bit seed (the key) and a 64-bit offset (the
// block counter). A draw of n values reserves ceil(n / values_per_block) consecutive blocks
// starting at the offset. Block b is philox(counter = {lo(b), hi(b), 0, 0}, key = {lo(seed), hi(seed)})
// and yields four 32-bit words. Uniform value i uses word i % 4 of block offset + i / 4; normal
// value i uses words 0 and 1 of block offset + i / 2 (Box-Muller: cos for even i, sin for odd i).
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define FLEXNN_HOST_DEVICE __host__ __device__
#else
#define FLEXNN_HOST_DEVICE
#endif

namespace flexnn::philox {

struct Block {
  uint32_t x[4];
};

FLEXNN_HOST_DEVICE inline void mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t product = static_cast<uint64_t>(a) * b;
  hi = static_cast<uint32_t>(product >> 32);
  lo = static_cast<uint32_t>(product);
}

// Ten rounds of Philox4x32 on a 128-bit counter with a 64-bit key (Random123's philox4x32_10).
FLEXNN_HOST_DEVICE inline Block philox4x32_10(Block counter, uint32_t k0, uint32_t k1) {
  uint32_t c0 = counter.x[0], c1 = counter.x[1], c2 = counter.x[2], c3 = counter.x[3];
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(0xD2511F53u, c0, hi0, lo0);
    mulhilo(0xCD9E8D57u, c2, hi1, lo1);
    const uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Block{{c0, c1, c2, c3}};
}

// Block `block_index` of the stream keyed by `seed`.
FLEXNN_HOST_DEVICE inline Block generate(uint64_t seed, uint64_t block_index) {
  const Block counter{{static_cast<uint32_t>(block_index), static_cast<uint32_t>(block_index >> 32), 0u, 0u}};
  return philox4x32_10(counter, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// A word to a float in [0, 1): its top 24 bits times 2^-24 (exact in float32).
FLEXNN_HOST_DEVICE inline float to_unit(uint32_t word) { return static_cast<float>(word >> 8) * (1.0f / 16777216.0f); }

// Uniform value i of the stream at `offset`.
FLEXNN_HOST_DEVICE inline float uniform(uint64_t seed, uint64_t offset, uint64_t i) {
  return to_unit(generate(seed, offset + i / 4).x[i % 4]);
}

// Normal(0, 1) value i of the stream at `offset`, computed in double and rounded once.
FLEXNN_HOST_DEVICE inline float normal(uint64_t seed, uint64_t offset, uint64_t i) {
  const Block b = generate(seed, offset + i / 2);
  const double u1 = (static_cast<double>(b.x[0]) + 1.0) / 4294967296.0;  // (0, 1]
  const double u2 = static_cast<double>(b.x[1]) / 4294967296.0;          // [0, 1)
  const double radius = sqrt(-2.0 * log(u1));
  const double angle = 6.283185307179586 * u2;
  return static_cast<float>(i % 2 == 0 ? radius * cos(angle) : radius * sin(angle));
}

// Blocks a draw of n values reserves.
FLEXNN_HOST_DEVICE inline uint64_t uniform_blocks(uint64_t n) { return (n + 3) / 4; }
FLEXNN_HOST_DEVICE inline uint64_t normal_blocks(uint64_t n) { return (n + 1) / 2; }

}  // namespace flexnn::philox
