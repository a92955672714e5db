// Winograd convolution (Lavin & Gray, 2016). Forward, F(m x m, 3 x 3), with a = m + 2 and output
// tiles t of m x m, each reading an a x a input patch d, over a group of images:
//   v[t][e][ci] = (B^T d B)[e]      the input transform, e over the a x a transform points,
//   u[e][co][ci] = (G w G^T)[e]     the weight transform,
//   prod[co][e][t] = u[e] x v[.][e]^T   one GEMM per point e (cpu::gemm),
//   y[co][tile t] = A^T prod[co][.][t] A   the output transform.
// The weight transform writes u[e] straight into the GEMM's packed layout (a cpu::PackedA per
// point). Three ways through the batch:
// - tiled, where u is small enough to stay in the cache (VGG blocks 1 to 3): u is made once, then
//   each thread takes blocks of 32 tiles through all three steps, the block's v and products
//   staying in its cache; only the input and output planes go through memory;
// - fused, where v is small (few tiles, as on VGG block 5's 3x3 maps: u 26 MB, v 6 MB): block of
//   output channels by block, each block of u multiplied as soon as it is made, so that u never
//   goes through memory;
// - by groups of images otherwise: all of u once, then v, the products and the output per group.
// The input gradient is the same with dy as input and the flipped, transposed weight. The weight
// gradient is F(3 x 3, m x m) on the same points: v as above, z[t][e][co] from dy's m x m tiles,
// sum[co][e][ci] = sum over t of z[t][e][co] v[t][e][ci] (one GEMM per point, tiles as the inner
// dimension, groups accumulated in order), then A^T sum A per (co, ci) gives the 3 x 3 gradient.
// The transforms run 16 lanes at a time (16 channels of a tile, or 16 tiles of a channel), so
// they vectorise; channel and tile counts are padded to 16 with zeros. Outside the tiled path the
// transform-point index sits between tile and channel, so each tile's transformed values are one
// contiguous block and every GEMM reads them with a wider stride; the tiled path keeps 16 tiles of
// a channel together (v[e][c][t]), and, with AVX-512, cuts their patches out of whole rows of the
// planes with permutes and interleaves their output rows back the same way.
#include "kernels/cpu/winograd.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <numeric>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "engine/error.hpp"
#include "kernels/cpu/gemm.hpp"
#include "kernels/cpu/parallel.hpp"

namespace flexnn::cpu {
namespace {

constexpr int kLanes = 16;

// The transform matrices of F(m x m, 3 x 3) (modified Toom-Cook) with interpolation points 0, +-1
// (m = 2), 0, +-1, 2 (m = 3) and 0, +-1, +-2 (m = 4), plus the point at infinity; B^T's rows are
// scaled to integers and G carries the inverse scale. The weight gradient is F(3 x 3, m x m) on the
// same points, so it shares B^T: gw (for the m x m output-gradient tile) and atw (to the 3 x 3
// weight) are its G and A^T.
template <int M>
struct Transforms;

template <>
struct Transforms<2> {
  static constexpr float bt[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, -1, 0, 1}};
  static constexpr float g[4][3] = {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}};
  static constexpr float at[2][4] = {{1, 1, 1, 0}, {0, 1, -1, 1}};
  static constexpr float gw[4][2] = {{1, 0}, {0.5f, 0.5f}, {0.5f, -0.5f}, {0, 1}};
  static constexpr float atw[3][4] = {{1, 1, 1, 0}, {0, 1, -1, 0}, {0, 1, 1, 1}};
};

template <>
struct Transforms<3> {
  static constexpr float bt[5][5] = {
      {2, -1, -2, 1, 0}, {0, 2, 1, -1, 0}, {0, -2, 3, -1, 0}, {0, -1, 0, 1, 0}, {0, 2, -1, -2, 1}};
  static constexpr float g[5][3] = {{0.5f, 0, 0},
                                    {0.5f, 0.5f, 0.5f},
                                    {1.0f / 6, -1.0f / 6, 1.0f / 6},
                                    {1.0f / 6, 1.0f / 3, 2.0f / 3},
                                    {0, 0, 1}};
  static constexpr float at[3][5] = {{1, 1, 1, 1, 0}, {0, 1, -1, 2, 0}, {0, 1, 1, 4, 1}};
  static constexpr const auto& gw = g;  // m = 3: F(3 x 3, 3 x 3) both ways
  static constexpr const auto& atw = at;
};

template <>
struct Transforms<4> {
  static constexpr float bt[6][6] = {{4, 0, -5, 0, 1, 0},  {0, 4, 4, -1, -1, 0}, {0, -4, 4, 1, -1, 0},
                                     {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
  static constexpr float g[6][3] = {{1.0f / 4, 0, 0},
                                    {1.0f / 6, 1.0f / 6, 1.0f / 6},
                                    {1.0f / 6, -1.0f / 6, 1.0f / 6},
                                    {1.0f / 24, 1.0f / 12, 1.0f / 6},
                                    {1.0f / 24, -1.0f / 12, 1.0f / 6},
                                    {0, 0, 1}};
  static constexpr float at[4][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
  static constexpr float gw[6][4] = {{1.0f / 4, 0, 0, 0},
                                     {1.0f / 6, 1.0f / 6, 1.0f / 6, 1.0f / 6},
                                     {1.0f / 6, -1.0f / 6, 1.0f / 6, -1.0f / 6},
                                     {1.0f / 24, 1.0f / 12, 1.0f / 6, 1.0f / 3},
                                     {1.0f / 24, -1.0f / 12, 1.0f / 6, -1.0f / 3},
                                     {0, 0, 0, 1}};
  static constexpr float atw[3][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 1}};
};

// out = p in q^T, each entry a vector of kLanes lanes: out[i][j] = sum_r sum_c p[i][r] in[r][c] q[j][c],
// the r sums first, each in index order (zero coefficients skipped; the tables are constants, so
// after unrolling only the nonzero terms remain).
template <int I, int R, int J, int C>
[[gnu::always_inline]] inline void sandwich(const float (&p)[I][R], const float (&q)[J][C], const float (&in)[R][C][kLanes],
                                            float (&out)[I][J][kLanes]) {
  float mid[I][C][kLanes];
#pragma GCC unroll 8
  for (int i = 0; i < I; ++i)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      float acc[kLanes] = {};
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const float k = p[i][r];
        if (k == 0.0f) continue;
        for (int l = 0; l < kLanes; ++l) acc[l] += k * in[r][c][l];
      }
      std::copy(acc, acc + kLanes, mid[i][c]);
    }
#pragma GCC unroll 8
  for (int i = 0; i < I; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < J; ++j) {
      float acc[kLanes] = {};
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) {
        const float k = q[j][c];
        if (k == 0.0f) continue;
        for (int l = 0; l < kLanes; ++l) acc[l] += k * mid[i][c][l];
      }
      std::copy(acc, acc + kLanes, out[i][j]);
    }
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// A 3x3 stride-1 convolution of `in_channels` planes [h, w] (padding pad_h, pad_w) into
// `out_channels` planes [out_h, out_w]: the forward pass (and its weight gradient), or the input
// gradient seen as one.
struct Problem {
  int64_t n, in_channels, h, w;
  int64_t out_channels, out_h, out_w;
  int64_t pad_h, pad_w;
};

// Buffers kept between calls: the calling thread's transformed weight (one packed GEMM operand
// per transform point), weight-gradient sums, transformed input, and products (or the weight
// gradient's z), and each thread's channel-last copy of an image. The fused forward path uses
// each thread's packed_points and product_buffer for its block of output channels, the tiled
// path each thread's block_input and block_product (64-byte aligned: whole cache lines).
thread_local std::vector<PackedA> packed_points;
thread_local std::vector<PackedB> packed_inputs;  // the fused path's v[.][e]^T, one per point
thread_local std::vector<float> weight_buffer, input_buffer, product_buffer, stage_buffer;
thread_local AlignedFloats block_input, block_product;

// Where a tile sits in the group's output: its top-left element, and its rows and columns inside
// the plane (fewer than m at the bottom and right edges).
struct TilePlace {
  int64_t offset;
  int rows, cols;
};
thread_local std::vector<TilePlace> tile_places;  // the calling thread's group's tiles

float* grow(std::vector<float>& buffer, int64_t size) {
  if (static_cast<int64_t>(buffer.size()) < size) buffer.resize(static_cast<std::size_t>(size));
  return buffer.data();
}

// A group's transformed input and products together stay under this many floats (64 MiB).
// Measured at batch 100, 2 threads: larger groups are faster (fewer passes over the transformed
// weight; VGG block 3, 256 channels, before it went through the tiled path: 115 ms at 32 MiB, 107
// at 64, 104 for the whole batch at 118 MiB), so this trades a little speed for memory.
constexpr int64_t kGroupFloats = int64_t{1} << 24;

// The fused forward path (fused_forward) serves a batch whose transformed input is at most this
// many floats (8 MiB: it is read once per block of output channels, from the cache).
constexpr int64_t kFusedInputFloats = int64_t{1} << 21;

// The tiled forward path (tiled_forward) serves shapes whose transformed weight, which every
// block of tiles reads, is at most this many floats (16 MiB, half the L3 cache). Measured at batch
// 100, 2 threads, against the other paths, forward / input gradient: VGG16's 32x32 (unpadded),
// 30x30 and 15x15 planes (transformed weights of 0.15 to 2.4 M floats) 1.35-1.9x / 1.3-1.9x; its
// 7x7 planes, 256 to 512 channels (4.7 M floats) 0.95-1.1x / 0.95-1.0x, 512 channels (9.4 M) 0.8x.
constexpr int64_t kTiledWeightFloats = int64_t{1} << 22;
// Tiles per block (measured on the shapes above: 16 is slower throughout; 64 up to 5 % faster on
// 30x30 planes, 5-15 % slower on 15x15 ones).
constexpr int64_t kTileBlock = 32;
constexpr int kBlockLanes = kTileBlock / kLanes;

// Whether the forward pass of F(m x m, 3 x 3) from `in_channels` to `out_channels` goes through
// the tiled path.
bool tiled(int m, int64_t in_channels, int64_t out_channels) {
  return int64_t{m + 2} * (m + 2) * in_channels * out_channels <= kTiledWeightFloats;
}

template <int M>
class Winograd {
 public:
  static constexpr int kA = M + 2;
  static constexpr int kPoints = kA * kA;
  using T = Transforms<M>;

  explicit Winograd(const Problem& p)
      : p_(p), tiles_h_(ceil_div(p.out_h, M)), tiles_w_(ceil_div(p.out_w, M)),
        in_padded_(ceil_div(p.in_channels, kLanes) * kLanes), out_padded_(ceil_div(p.out_channels, kLanes) * kLanes) {}

  // out = conv(in, weight) (+ bias); `flip` takes the input gradient's weight, u[o][i] = weight[i][o]
  // turned by 180 degrees. Per group: v[t][e][c], then prod[o][e][t] = u[e] x v[.][e]^T per point e.
  void forward(const float* in, const float* weight, bool flip, const float* bias, float* out) {
    if (tiled(M, p_.in_channels, p_.out_channels)) {
      tiled_forward(transform_weight(weight, flip), in, bias, out);
      return;
    }
    // The fused path for one group whose transformed input is small.
    const int64_t group = group_size(in_padded_ + p_.out_channels);
    const bool fused = group >= p_.n && kPoints * in_padded_ * padded_tiles(p_.n) <= kFusedInputFloats;
    const PackedA* u = fused ? nullptr : transform_weight(weight, flip);
    for_each_group(group, [&](int64_t first, int64_t count, int64_t padded) {
      float* v = grow(input_buffer, padded * kPoints * in_padded_);
      transform_tiles<kA, T::bt>(in + first * p_.in_channels * p_.h * p_.w, p_.in_channels, p_.h, p_.w, p_.pad_h,
                                 p_.pad_w, count, padded, v);
      const int64_t tiles = count * tiles_h_ * tiles_w_;
      const TilePlace* places = place_tiles(count);
      float* y = out + first * p_.out_channels * p_.out_h * p_.out_w;
      if (fused) {
        fused_forward(weight, flip, v, tiles, padded, places, bias, y);
        return;
      }
      float* prod = grow(product_buffer, p_.out_channels * kPoints * padded);
      for (int e = 0; e < kPoints; ++e)
        gemm(u[e], true, padded, 1.0f, v + e * in_padded_, kPoints * in_padded_, 0.0f, prod + e * padded,
             kPoints * padded);
      parallel_for(0, p_.out_channels, 4, [&](int64_t o0, int64_t o1) {
        transform_output(prod + o0 * kPoints * padded, o0, o1, tiles, padded, places, bias, y);
      });
    });
  }

  // dweight[o][i] = sum over images and positions of grad[o] (the output gradient) times in[i]
  // around them: F(3 x 3, m x m). Per group: v[t][e][i] from in, z[t][e][o] from grad's m x m
  // tiles, then sum[o][e][i] (+)= z[.][e]^T x v[.][e] per point e, groups added in order.
  void weight_gradient(const float* in, const float* grad, float* dweight) {
    float* sum = grow(weight_buffer, p_.out_channels * kPoints * in_padded_);
    bool first_group = true;
    for_each_group(group_size(in_padded_ + out_padded_), [&](int64_t first, int64_t count, int64_t padded) {
      float* v = grow(input_buffer, padded * kPoints * in_padded_);
      float* z = grow(product_buffer, padded * kPoints * out_padded_);
      transform_tiles<kA, T::bt>(in + first * p_.in_channels * p_.h * p_.w, p_.in_channels, p_.h, p_.w, p_.pad_h,
                                 p_.pad_w, count, padded, v);
      transform_tiles<M, T::gw>(grad + first * p_.out_channels * p_.out_h * p_.out_w, p_.out_channels, p_.out_h,
                                p_.out_w, 0, 0, count, padded, z);
      for (int e = 0; e < kPoints; ++e)
        gemm(true, false, p_.out_channels, in_padded_, padded, 1.0f, z + e * out_padded_, kPoints * out_padded_,
             v + e * in_padded_, kPoints * in_padded_, first_group ? 0.0f : 1.0f, sum + e * in_padded_,
             kPoints * in_padded_);
      first_group = false;
    });
    parallel_for(0, p_.out_channels, 4, [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o)
        for (int64_t i0 = 0; i0 < in_padded_; i0 += kLanes) {
          float m[kA][kA][kLanes], g[3][3][kLanes];
          for (int e = 0; e < kPoints; ++e)
            std::copy_n(sum + (o * kPoints + e) * in_padded_ + i0, kLanes, m[e / kA][e % kA]);
          sandwich(T::atw, T::atw, m, g);
          for (int64_t l = 0; l < std::min<int64_t>(kLanes, p_.in_channels - i0); ++l)
            for (int k = 0; k < 9; ++k) dweight[(o * p_.in_channels + i0 + l) * 9 + k] = g[k / 3][k % 3][l];
        }
    });
  }

 private:
  // Images per group: as many as keep kPoints * tiles * channel_floats under kGroupFloats.
  int64_t group_size(int64_t channel_floats) const {
    return std::clamp<int64_t>(kGroupFloats / (kPoints * tiles_h_ * tiles_w_ * channel_floats), 1,
                               std::max<int64_t>(p_.n, 1));
  }

  // The tiles of `count` images rounded up to kLanes.
  int64_t padded_tiles(int64_t count) const { return ceil_div(count * tiles_h_ * tiles_w_, kLanes) * kLanes; }

  // Calls body(first, count, padded) for groups of `group` images [first, first + count) in
  // order; padded = padded_tiles(count).
  template <typename Body>
  void for_each_group(int64_t group, Body&& body) const {
    for (int64_t first = 0; first < p_.n; first += group) {
      const int64_t count = std::min(group, p_.n - first);
      body(first, count, padded_tiles(count));
    }
  }

  // The transformed weight, one GEMM operand per point e: u[e][o][i] for o < out_channels, i <
  // in_channels, written straight into the GEMM's packed layout (no matrix to pack again).
  const PackedA* transform_weight(const float* weight, bool flip) const {
    if (packed_points.size() < kPoints) packed_points.resize(kPoints);
    PackedA* u = packed_points.data();  // the pool's threads write the caller's
    for (int e = 0; e < kPoints; ++e) u[e].reset(p_.out_channels, p_.in_channels);
    parallel_for(0, ceil_div(p_.out_channels, kLanes), 1, [&](int64_t b0, int64_t b1) {
      transform_weight_rows(weight, flip, b0 * kLanes, std::min(b1 * kLanes, p_.out_channels), 0, u);
    });
    return u;
  }

  // Rows [o0, o1) of the transformed weight into rows [o0 - row0, o1 - row0) of u[e], e <
  // kPoints. The lanes run over 16 output channels, so that each column of u[e] gets 16
  // contiguous rows.
  void transform_weight_rows(const float* weight, bool flip, int64_t o0, int64_t o1, int64_t row0, PackedA* u) const {
    const int64_t rows = p_.out_channels, cols = p_.in_channels;
    for (; o0 < o1; o0 += kLanes) {
      const int64_t lanes = std::min<int64_t>(kLanes, o1 - o0);
      for (int64_t i0 = 0; i0 < cols; i0 += kLanes) {
        const int64_t width = std::min<int64_t>(kLanes, cols - i0);
        // The block's taps first (all stored before the transforms load them as vectors), each
        // run of 16 x 9 taps prefetched a block ahead: the weight comes from memory.
        float g[kLanes][3][3][kLanes];  // [i - i0][tap][o - o0]
        if (lanes < kLanes) std::fill_n(&g[0][0][0][0], kLanes * 9 * kLanes, 0.0f);
        const auto prefetch = [](const float* run) {
          for (int j = 0; j < kLanes * 9; j += 16) __builtin_prefetch(run + j);
        };
        if (flip) {
          for (int64_t i = 0; i < width; ++i) {
            const float* src = weight + ((i0 + i) * rows + o0) * 9;  // lanes x 9, contiguous
            prefetch(src + kLanes * rows * 9);
            for (int64_t l = 0; l < lanes; ++l)
              for (int k = 0; k < 9; ++k) g[i][k / 3][k % 3][l] = src[l * 9 + 8 - k];
          }
        } else {
          for (int64_t l = 0; l < lanes; ++l) {
            const float* src = weight + ((o0 + l) * cols + i0) * 9;  // width x 9, contiguous
            prefetch(src + kLanes * 9);
            for (int64_t i = 0; i < width; ++i)
              for (int k = 0; k < 9; ++k) g[i][k / 3][k % 3][l] = src[i * 9 + k];
          }
        }
        float block[kLanes][kA][kA][kLanes];  // [i - i0][e][o - o0]
        for (int64_t i = 0; i < width; ++i) sandwich(T::g, T::g, g[i], block[i]);
        for (int e = 0; e < kPoints; ++e)
          u[e].write(o0 - row0, lanes, i0, width, block[0][e / kA][e % kA], kPoints * kLanes);
      }
    }
  }

  // The group's output when its transformed input is small (one pass over a batch of few
  // tiles): each v[.][e]^T is packed once; then each thread, for a block of output channels at a
  // time, transforms their weight into its own packed operands, multiplies them into its own
  // products and transforms those to the output, all within its cache: neither the transformed
  // weight nor the products go through memory. Each product element is the same sum as with the
  // whole weight (cpu::gemm's sums depend on K alone), so the same bits.
  void fused_forward(const float* weight, bool flip, const float* v, int64_t tiles, int64_t padded,
                     const TilePlace* places, const float* bias, float* out) const {
    if (packed_inputs.size() < kPoints) packed_inputs.resize(kPoints);
    PackedB* b = packed_inputs.data();  // the pool's threads pack and read the caller's
    parallel_for(0, kPoints, 1, [&](int64_t e0, int64_t e1) {
      for (int64_t e = e0; e < e1; ++e)
        b[e].pack(true, p_.in_channels, padded, v + e * in_padded_, kPoints * in_padded_);
    });
    // Blocks of whole transform lanes and whole GEMM panels, as few rows as that allows: 16 with
    // AVX-512, 48 with AVX2 (measured at VGG block 5, 512 channels: 16 rows, whose 25 packed
    // operands take 0.8 MiB and stay in L2, beat 32 and 64 by 5-8 %).
    const int64_t rows = std::lcm(int64_t{kLanes}, PackedA::panel_rows());
    parallel_for(0, ceil_div(p_.out_channels, rows), 1, [&](int64_t b0, int64_t b1) {
      if (packed_points.size() < kPoints) packed_points.resize(kPoints);
      PackedA* u = packed_points.data();  // this thread's
      float* prod = grow(product_buffer, rows * kPoints * padded);
      for (int64_t o0 = b0 * rows; o0 < std::min(b1 * rows, p_.out_channels); o0 += rows) {
        const int64_t o1 = std::min(o0 + rows, p_.out_channels);
        for (int e = 0; e < kPoints; ++e) u[e].reset(o1 - o0, p_.in_channels);
        transform_weight_rows(weight, flip, o0, o1, o0, u);
        for (int e = 0; e < kPoints; ++e) gemm(u[e], b[e], 1.0f, 0.0f, prod + e * padded, kPoints * padded);
        transform_output(prod, o0, o1, tiles, padded, places, bias, out);
      }
    });
  }

  // Tiles per segment: a segment's input columns (and output columns) fit two vectors.
  static constexpr int kSegmentTiles = 2 * kLanes / M;

  // A run of a lane group's lanes [lane, lane + count) whose tiles lie side by side in one tile
  // row: their input patches start at row in_row, columns in_col + M * (l - lane) (of the planes
  // of the image at `in`, possibly in the padding), their output tiles at out_row, out_col +
  // M * (l - lane) (of the image at `out`); in_cols[q] has bit k set where column in_col + q M + k
  // lies inside the plane, out_cols where column out_col + k holds one of the run's outputs.
  struct Segment {
    int lane, count;
    int64_t in, out, in_row, in_col, out_row, out_col;
    uint32_t in_cols[2], out_cols;
  };

  // A block's kLanes tiles, one to a vector lane (none past the last tile), as segments.
  struct LaneGroup {
    int segments = 0;
    Segment segment[kLanes];
  };

  // Bits [begin, end) of 32 (none if end <= begin).
  static uint32_t bit_range(int64_t begin, int64_t end) {
    begin = std::clamp<int64_t>(begin, 0, 32);
    end = std::clamp<int64_t>(end, 0, 32);
    if (end <= begin) return 0;
    return static_cast<uint32_t>(((uint64_t{1} << end) - 1) & ~((uint64_t{1} << begin) - 1));
  }

  // The lane group of the batch's tiles [t0, t0 + kLanes) (those below `tiles`, its tile count).
  LaneGroup lane_group(int64_t t0, int64_t tiles) const {
    const int64_t per_image = tiles_h_ * tiles_w_;
    LaneGroup g;
    for (int l = 0; l < kLanes && t0 + l < tiles; ++l) {
      const int64_t t = t0 + l, image = t / per_image, ty = t % per_image / tiles_w_, tx = t % tiles_w_;
      // The tile after the last lane's in its tile row (tx > 0) extends that lane's segment.
      if (tx > 0 && g.segments > 0 && g.segment[g.segments - 1].count < kSegmentTiles) {
        ++g.segment[g.segments - 1].count;
        continue;
      }
      Segment& sg = g.segment[g.segments++];
      sg.lane = l;
      sg.count = 1;
      sg.in = image * p_.in_channels * p_.h * p_.w;
      sg.out = image * p_.out_channels * p_.out_h * p_.out_w;
      sg.in_row = ty * M - p_.pad_h;
      sg.in_col = tx * M - p_.pad_w;
      sg.out_row = ty * M;
      sg.out_col = tx * M;
    }
    for (int i = 0; i < g.segments; ++i) {
      Segment& sg = g.segment[i];
      for (int q = 0; q < 2; ++q) sg.in_cols[q] = bit_range(-sg.in_col - q * M, p_.w - sg.in_col - q * M);
      sg.out_cols = bit_range(0, std::min<int64_t>(M * sg.count, p_.out_w - sg.out_col));
    }
    return g;
  }

  // The forward pass block by block of kTileBlock tiles, each thread its own blocks: the
  // block's transformed input v[e][c][t] (a vector holds 16 tiles), one GEMM per point into
  // prod[o][e][t], the output transform into the planes. Only the input, the transformed weight
  // and the output go through memory; the rest stays in the thread's cache.
  void tiled_forward(const PackedA* u, const float* in, const float* bias, float* out) const {
    const int64_t tiles = p_.n * tiles_h_ * tiles_w_, k = p_.in_channels;
    parallel_for(0, ceil_div(tiles, kTileBlock), 1, [&](int64_t b0, int64_t b1) {
      float* v = block_input.reserve(kPoints * k * kTileBlock);
      float* prod = block_product.reserve(p_.out_channels * kPoints * kTileBlock);
      for (int64_t b = b0; b < b1; ++b) {
        LaneGroup groups[kBlockLanes];
        for (int g = 0; g < kBlockLanes; ++g) groups[g] = lane_group(b * kTileBlock + g * kLanes, tiles);
        transform_block_input(in, groups, v);
        for (int e = 0; e < kPoints; ++e)
          gemm(u[e], false, kTileBlock, 1.0f, v + e * k * kTileBlock, kTileBlock, 0.0f, prod + e * kTileBlock,
               kPoints * kTileBlock);
        transform_block_output(prod, groups, bias, out);
      }
    });
  }

  // d[r][c][l] = the element (r, c) of lane l's patch of the plane at x (0 in the padding and
  // for lanes without a tile). With AVX-512, per segment and patch row, the two vectors of
  // columns from in_col + q M hold every column q M + phase of the segment's patches, which a
  // permute takes out.
  void load_patches(const float* x, const LaneGroup& g, float (&d)[kA][kA][kLanes]) const {
#if defined(__AVX512F__)
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int s = 0; s < g.segments; ++s) {
      const Segment& sg = g.segment[s];
      const __mmask16 lanes = static_cast<__mmask16>(((1u << sg.count) - 1) << sg.lane);
      __m512i at[M];  // lane l of the segment reads column M (l - lane) + phase of the two vectors
      for (int phase = 0; phase < M; ++phase)
        at[phase] = _mm512_add_epi32(_mm512_mullo_epi32(iota, _mm512_set1_epi32(M)),
                                     _mm512_set1_epi32(phase - M * sg.lane));
      for (int r = 0; r < kA; ++r) {
        const int64_t row = sg.in_row + r;
        const bool inside = row >= 0 && row < p_.h;  // else no lanes read, and the patch row is 0
        for (int c = 0; c < kA; c += M) {
          const uint32_t cols = inside ? sg.in_cols[c / M] : 0;
          const float* src = x + sg.in + (inside ? row * p_.w : 0) + sg.in_col + c;
          const __m512 lo = _mm512_maskz_loadu_ps(static_cast<__mmask16>(cols), src);
          const __m512 hi = _mm512_maskz_loadu_ps(static_cast<__mmask16>(cols >> 16), src + kLanes);
          for (int phase = 0; phase < M && c + phase < kA; ++phase) {
            const __m512 picked = _mm512_permutex2var_ps(lo, at[phase], hi);
            float* dst = d[r][c + phase];
            _mm512_storeu_ps(dst, s == 0 ? _mm512_maskz_mov_ps(lanes, picked)
                                         : _mm512_mask_blend_ps(lanes, _mm512_loadu_ps(dst), picked));
          }
        }
      }
    }
    if (g.segments == 0) std::fill_n(&d[0][0][0], kA * kA * kLanes, 0.0f);
#else
    std::fill_n(&d[0][0][0], kA * kA * kLanes, 0.0f);
    for (int s = 0; s < g.segments; ++s) {
      const Segment& sg = g.segment[s];
      for (int r = 0; r < kA; ++r) {
        const int64_t row = sg.in_row + r;
        if (row < 0 || row >= p_.h) continue;
        for (int c = 0; c < kA; ++c)
          for (int l = 0; l < sg.count; ++l) {
            const int64_t col = sg.in_col + M * l + c;
            if (col >= 0 && col < p_.w) d[r][c][sg.lane + l] = x[sg.in + row * p_.w + col];
          }
      }
    }
#endif
  }

  // The output tiles of the plane at y0 from y[i][j][l] (lane l's tile) plus b. With AVX-512,
  // per segment and tile row, permutes interleave the M vectors of a row's columns into the two
  // vectors of the segment's output row.
  void store_tiles(const float (&y)[M][M][kLanes], float b, const LaneGroup& g, float* y0) const {
#if defined(__AVX512F__)
    // Output column k of a segment is column k mod M of lane k / M's tile.
    constexpr auto columns = [](int first, int j) {
      uint32_t bits = 0;
      for (int k = 0; k < kLanes; ++k) bits |= uint32_t{(first + k) % M == j} << k;
      return static_cast<__mmask16>(bits);
    };
    static constexpr auto tile_of = [] {  // k / M for the segment's output columns k
      std::array<int32_t, 2 * kLanes> at{};
      for (int k = 0; k < 2 * kLanes; ++k) at[k] = k / M;
      return at;
    }();
    const __m512 add = _mm512_set1_ps(b);
    for (int s = 0; s < g.segments; ++s) {
      const Segment& sg = g.segment[s];
      const __m512i lane = _mm512_set1_epi32(sg.lane);
      const __m512i at_lo = _mm512_add_epi32(_mm512_loadu_si512(tile_of.data()), lane);
      const __m512i at_hi = _mm512_add_epi32(_mm512_loadu_si512(tile_of.data() + kLanes), lane);
      for (int i = 0; i < M && sg.out_row + i < p_.out_h; ++i) {
        __m512 lo = _mm512_setzero_ps(), hi = _mm512_setzero_ps();
        for (int j = 0; j < M; ++j) {
          lo = _mm512_mask_permutexvar_ps(lo, columns(0, j), at_lo, _mm512_loadu_ps(y[i][j]));
          hi = _mm512_mask_permutexvar_ps(hi, columns(kLanes, j), at_hi, _mm512_loadu_ps(y[i][j]));
        }
        float* dst = y0 + sg.out + (sg.out_row + i) * p_.out_w + sg.out_col;
        _mm512_mask_storeu_ps(dst, static_cast<__mmask16>(sg.out_cols), _mm512_add_ps(lo, add));
        _mm512_mask_storeu_ps(dst + kLanes, static_cast<__mmask16>(sg.out_cols >> 16), _mm512_add_ps(hi, add));
      }
    }
#else
    for (int s = 0; s < g.segments; ++s) {
      const Segment& sg = g.segment[s];
      for (int i = 0; i < M && sg.out_row + i < p_.out_h; ++i)
        for (int k = 0; k < M * sg.count && sg.out_col + k < p_.out_w; ++k)
          y0[sg.out + (sg.out_row + i) * p_.out_w + sg.out_col + k] = y[i][k % M][sg.lane + k / M] + b;
    }
#endif
  }

  // v[e][c][t] = (B^T d B)[e] for the block's tiles t, d each tile's patch of plane c.
  void transform_block_input(const float* in, const LaneGroup* groups, float* v) const {
    const int64_t plane = p_.h * p_.w, k = p_.in_channels;
    for (int64_t c = 0; c < k; ++c)
      for (int g = 0; g < kBlockLanes; ++g) {
        float d[kA][kA][kLanes], t[kA][kA][kLanes];
        load_patches(in + c * plane, groups[g], d);
        sandwich(T::bt, T::bt, d, t);
        for (int e = 0; e < kPoints; ++e)
          std::copy_n(t[e / kA][e % kA], kLanes, v + (e * k + c) * kTileBlock + g * kLanes);
      }
  }

  // The block's output tiles from prod[o][e][t], plus bias.
  void transform_block_output(const float* prod, const LaneGroup* groups, const float* bias, float* out) const {
    const int64_t plane = p_.out_h * p_.out_w;
    for (int g = 0; g < kBlockLanes; ++g) {
      if (groups[g].segments == 0) continue;
      for (int64_t o = 0; o < p_.out_channels; ++o) {
        float m[kA][kA][kLanes], y[M][M][kLanes];
        for (int e = 0; e < kPoints; ++e)
          std::copy_n(prod + (o * kPoints + e) * kTileBlock + g * kLanes, kLanes, m[e / kA][e % kA]);
        sandwich(T::at, T::at, m, y);
        store_tiles(y, bias != nullptr ? bias[o] : 0.0f, groups[g], out + o * plane);
      }
    }
  }

  // v[t][e][c] = (p d p^T)[e] for the group's tiles t < padded and c < `channels` rounded up to
  // kLanes, d being the R x R patch of planes [h, w] (zero outside) at row ty * M - pad_h, column
  // tx * M - pad_w; zero for channels past `channels` and tiles past the `count` images'. Each
  // image is first laid out channel-last in a zero-bordered buffer that holds every tile's patch,
  // so that a patch point's 16 channels are one contiguous vector.
  // (p is a template argument so that its zero and unit coefficients fold away.)
  template <int R, const float (&p)[kA][R]>
  void transform_tiles(const float* in, int64_t channels, int64_t h, int64_t w, int64_t pad_h, int64_t pad_w,
                       int64_t count, int64_t padded, float* v) const {
    const int64_t per_image = tiles_h_ * tiles_w_, plane = h * w, cp = ceil_div(channels, kLanes) * kLanes;
    const int64_t rows = tiles_h_ * M + R - M, cols = tiles_w_ * M + R - M;
    parallel_for(0, count, 1, [&](int64_t i0, int64_t i1) {
      float* stage = grow(stage_buffer, rows * cols * cp);
      // The border (rows and columns outside the planes) is zero; the image's 16 x 16 blocks of
      // (channel, position) are copied transposed, zero past the last channel.
      std::fill(stage, stage + pad_h * cols * cp, 0.0f);
      std::fill(stage + (h + pad_h) * cols * cp, stage + rows * cols * cp, 0.0f);
      for (int64_t r = 0; r < h; ++r) {
        float* row = stage + (r + pad_h) * cols * cp;
        std::fill(row, row + pad_w * cp, 0.0f);
        std::fill(row + (w + pad_w) * cp, row + cols * cp, 0.0f);
      }
      for (int64_t image = i0; image < i1; ++image) {
        const float* x = in + image * channels * plane;
        for (int64_t c0 = 0; c0 < cp; c0 += kLanes)
          for (int64_t q0 = 0; q0 < plane; q0 += kLanes) {
            const int64_t lanes = std::min<int64_t>(kLanes, channels - c0), positions = std::min<int64_t>(kLanes, plane - q0);
            float block[kLanes][kLanes] = {};
            for (int64_t l = 0; l < lanes; ++l) {
              const float* src = x + (c0 + l) * plane + q0;
              if (positions == kLanes) {
                std::memcpy(block[l], src, sizeof(block[l]));
              } else {
                for (int64_t j = 0; j < positions; ++j) block[l][j] = src[j];
              }
            }
            for (int64_t j = 0; j < positions; ++j) {
              const int64_t r = (q0 + j) / w, c = (q0 + j) % w;
              float* dst = stage + ((r + pad_h) * cols + c + pad_w) * cp + c0;
              for (int l = 0; l < kLanes; ++l) dst[l] = block[l][j];
            }
          }
        for (int64_t t = 0; t < per_image; ++t) {
          const float* patch = stage + ((t / tiles_w_) * M * cols + (t % tiles_w_) * M) * cp;
          float* dst = v + (image * per_image + t) * kPoints * cp;
          for (int64_t c0 = 0; c0 < cp; c0 += kLanes) {
            float d[R][R][kLanes], out[kA][kA][kLanes];
            for (int r = 0; r < R; ++r)
              for (int c = 0; c < R; ++c) std::copy_n(patch + (r * cols + c) * cp + c0, kLanes, d[r][c]);
            sandwich(p, p, d, out);
            for (int e = 0; e < kPoints; ++e) std::copy_n(out[e / kA][e % kA], kLanes, dst + e * cp + c0);
          }
        }
      }
    });
    std::fill(v + count * per_image * kPoints * cp, v + padded * kPoints * cp, 0.0f);
  }

  // Where each of the group's `count` images' tiles goes in its output (the calling thread's
  // table, read by the pool's threads).
  const TilePlace* place_tiles(int64_t count) const {
    const int64_t per_image = tiles_h_ * tiles_w_, tiles = count * per_image, plane = p_.out_h * p_.out_w;
    if (static_cast<int64_t>(tile_places.size()) < tiles) tile_places.resize(static_cast<std::size_t>(tiles));
    TilePlace* places = tile_places.data();
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t image = t / per_image, ty = t % per_image / tiles_w_, tx = t % tiles_w_;
      places[t] = {image * p_.out_channels * plane + ty * M * p_.out_w + tx * M,
                   static_cast<int>(std::min<int64_t>(M, p_.out_h - ty * M)),
                   static_cast<int>(std::min<int64_t>(M, p_.out_w - tx * M))};
    }
    return places;
  }

  // Output channels [o0, o1) of the group's `tiles` tiles from their products prod[o - o0][e][t],
  // 16 tiles at a time, plus bias.
  void transform_output(const float* prod, int64_t o0, int64_t o1, int64_t tiles, int64_t padded,
                        const TilePlace* places, const float* bias, float* out) const {
    const int64_t plane = p_.out_h * p_.out_w;
    for (int64_t o = o0; o < o1; ++o) {
      const float b = bias != nullptr ? bias[o] : 0.0f;
      for (int64_t t0 = 0; t0 < tiles; t0 += kLanes) {
        float m[kA][kA][kLanes], y[M][M][kLanes];
        for (int e = 0; e < kPoints; ++e)
          std::copy_n(prod + ((o - o0) * kPoints + e) * padded + t0, kLanes, m[e / kA][e % kA]);
        sandwich(T::at, T::at, m, y);
        for (int64_t l = 0; l < std::min<int64_t>(kLanes, tiles - t0); ++l) {
          const TilePlace& at = places[t0 + l];
          float* dst = out + o * plane + at.offset;
          if (at.rows == M && at.cols == M) {
            for (int i = 0; i < M; ++i)
              for (int j = 0; j < M; ++j) dst[i * p_.out_w + j] = y[i][j][l] + b;
          } else {
            for (int i = 0; i < at.rows; ++i)
              for (int j = 0; j < at.cols; ++j) dst[i * p_.out_w + j] = y[i][j][l] + b;
          }
        }
      }
    }
  }

  Problem p_;
  int64_t tiles_h_, tiles_w_, in_padded_, out_padded_;
};

// Calls body(winograd) with a Winograd<m> for p.
template <typename Body>
void with_tile(const Problem& p, int m, Body&& body) {
  if (m == 2) {
    Winograd<2> w(p);
    body(w);
  } else if (m == 3) {
    Winograd<3> w(p);
    body(w);
  } else {
    Winograd<4> w(p);
    body(w);
  }
}

void check(const Conv2dShape& s, int m) {
  FLEXNN_CHECK(winograd_fits(s),
               "winograd convolution: expected a 3x3 kernel, stride 1 and padding 0..2, found a {}x{} kernel, stride "
               "({}, {}), padding ({}, {})",
               s.kh, s.kw, s.stride_h, s.stride_w, s.pad_h, s.pad_w);
  FLEXNN_CHECK(m >= 2 && m <= 4, "winograd convolution: expected output tiles of 2, 3 or 4, found {}", m);
  const int64_t out_h = s.h + 2 * s.pad_h - 2, out_w = s.w + 2 * s.pad_w - 2;
  FLEXNN_CHECK(out_h > 0 && out_w > 0,
               "winograd convolution: expected an input at least as large as the 3x3 kernel once padded, found {}x{} "
               "with padding ({}, {})",
               s.h, s.w, s.pad_h, s.pad_w);
  FLEXNN_CHECK(s.out_h == out_h && s.out_w == out_w,
               "winograd convolution: expected a {}x{} output for a {}x{} input with padding ({}, {}), found {}x{}",
               out_h, out_w, s.h, s.w, s.pad_h, s.pad_w, s.out_h, s.out_w);
}

}  // namespace

bool winograd_fits(const Conv2dShape& s) {
  return s.kh == 3 && s.kw == 3 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h >= 0 && s.pad_h <= 2 &&
         s.pad_w >= 0 && s.pad_w <= 2;
}

bool winograd_tiled(const Conv2dShape& s, int m) { return tiled(m, s.c_in, s.c_out); }

void winograd_forward(const Conv2dShape& s, int m, const float* x, const float* weight, const float* bias, float* y) {
  check(s, m);
  if (s.n == 0) return;
  with_tile({s.n, s.c_in, s.h, s.w, s.c_out, s.out_h, s.out_w, s.pad_h, s.pad_w}, m,
            [&](auto& w) { w.forward(x, weight, false, bias, y); });
}

void winograd_backward_input(const Conv2dShape& s, int m, const float* dy, const float* weight, float* dx) {
  check(s, m);
  if (s.n == 0) return;
  with_tile({s.n, s.c_out, s.out_h, s.out_w, s.c_in, s.h, s.w, 2 - s.pad_h, 2 - s.pad_w}, m,
            [&](auto& w) { w.forward(dy, weight, true, nullptr, dx); });
}

void winograd_backward_weight(const Conv2dShape& s, int m, const float* x, const float* dy, float* dweight) {
  check(s, m);
  if (s.n == 0) {
    std::fill(dweight, dweight + s.c_out * s.c_in * 9, 0.0f);
    return;
  }
  with_tile({s.n, s.c_in, s.h, s.w, s.c_out, s.out_h, s.out_w, s.pad_h, s.pad_w}, m,
            [&](auto& w) { w.weight_gradient(x, dy, dweight); });
}

}  // namespace flexnn::cpu
