// The flexible layer's CUDA kernels (kernels/cuda/flexible.hpp).
//
// The blend alone (the CPU kernels' contract): the forward runs one thread per pooled unit
// (image, pooled plane, position), which max-pools its window once and blends every output channel
// that reads it. The backward runs one thread per gate unit (channel, position), looping over the
// images in order, so the thresholds' batch sum needs no second pass and adds in the CPU's order;
// the pool branch's input gradient is then a gather: each input element sums the pool gradients of
// the windows whose first maximum it is, in row-major window order (no atomics).
//
// The fused layer: the convolution is an implicit GEMM, out[co][(n, o)] = sum over k = (ci, tap) of
// weight[co][k] * x_col[k][(n, o)], staged through shared-memory tiles (Tile) with a register
// micro-tile per thread. The forward's epilogue adds the bias, max-pools the unit's window, gates and
// blends, and writes y plus what the backward reads: c (the convolution branch) and the pool's
// argmax (as int32). Everything else is recomputed there: m = x[argmax] and the gate (one exp).
// The backward is one kernel whose blocks take one of three roles, all reading only the forward's
// saved tensors, so that none waits for another:
// - weight blocks: dweight[co][k] = sum over (n, o) of dc[n][co][o] * x_col[k][(n, o)], dc recomputed
//   from dy and the gate as the A tile is staged; each block sums one chunk of images, its partial
//   tile goes to the workspace and the last block of each tile to finish (an integer counter) adds
//   the chunks' partials in chunk order. The blocks of the first k-tile also sum dbias the same way.
// - input blocks: dx[n][ci][i] = sum over (co, tap) of weight[co][ci][tap] * dc[n][co][o(i, tap)]
//   (the transposed convolution as an implicit GEMM, dc recomputed per gathered element), plus the
//   pool branch's share gathered as above.
// - gate blocks: dthreshold[co][o] = sum over images, in order, of the gate's derivative term.
// Nothing is summed by float atomics, and every sum has a fixed order: results are deterministic.
#include "kernels/cuda/flexible.hpp"

#include "kernels/cuda/error.hpp"
#include "kernels/cuda/stream.cuh"
#include "kernels/philox.hpp"

#include <algorithm>
#include <climits>
#include <initializer_list>
#include <string>

namespace flexnn::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ int imin(int a, int b) { return a < b ? a : b; }
__device__ __forceinline__ int imax(int a, int b) { return a > b ? a : b; }

// A max-pool window geometry, in int.
struct Window {
  int h, w;          // input plane
  int out_h, out_w;  // output plane
  int kh, kw, sh, sw, ph, pw;
};

Window window_of(const Pool2dShape& p) {
  return {static_cast<int>(p.h),        static_cast<int>(p.w),        static_cast<int>(p.out_h),
          static_cast<int>(p.out_w),    static_cast<int>(p.kh),       static_cast<int>(p.kw),
          static_cast<int>(p.stride_h), static_cast<int>(p.stride_w), static_cast<int>(p.pad_h),
          static_cast<int>(p.pad_w)};
}

struct PoolValue {
  float m;
  int at;  // position in the input plane
};

// The window (oh, ow) of one plane: its maximum and first maximum in row-major order, padding
// counting as −∞; a NaN wins, a later NaN replacing an earlier one (cpu::max_pool2d_plane's rule).
__device__ __forceinline__ PoolValue max_window(const float* plane, const Window& p, int oh, int ow) {
  const int h0 = oh * p.sh - p.ph, w0 = ow * p.sw - p.pw;
  const int r0 = imax(h0, 0), r1 = imin(h0 + p.kh, p.h), c0 = imax(w0, 0), c1 = imin(w0 + p.kw, p.w);
  PoolValue best{-INFINITY, r0 * p.w + c0};
  for (int r = r0; r < r1; ++r)
    for (int c = c0; c < c1; ++c) {
      const float v = plane[r * p.w + c];
      if (v > best.m || v != v) best = {v, r * p.w + c};
    }
  return best;
}

// The output windows (oh, ow) that contain input row `i` (or column): [first, last], in [0, out).
struct Span {
  int first, last;
};

__device__ __forceinline__ Span windows_containing(int i, int k, int stride, int pad, int out) {
  const int low = i + pad - k + 1;  // the window must start at or after this
  const int first = low <= 0 ? 0 : (low + stride - 1) / stride;
  return {first, imin(out - 1, (i + pad) / stride)};
}

// The soft gate of one unit: z = scale·(t − m), σ(z) and σ(−z) from e = exp(−|z|) (pool when z > 0).
struct Gate {
  float g, g_not;
};

__device__ __forceinline__ Gate soft_gate(float scale, float t, float m) {
  const float z = scale * (t - m);
  const float e = expf(-fabsf(z));
  const float high = 1.0f / (1.0f + e), low = e * high;  // σ(|z|), σ(−|z|)
  return z > 0.0f ? Gate{high, low} : Gate{low, high};
}

// One unit's blend; `pooled` counts the units that took the pool branch.
template <bool Mask>
__device__ __forceinline__ float blend_unit(float scale, float t, float m, float c, unsigned& pooled) {
  if (Mask) {
    pooled += t > 0.5f;
    return t * m + (1.0f - t) * c;
  }
  const Gate g = soft_gate(scale, t, m);
  pooled += scale * (t - m) > 0.0f;
  return g.g * m + g.g_not * c;
}

// One unit's gradients: of c, of m, and of its threshold (0 for the mask).
struct UnitGrad {
  float dc, dm, dt;
};

template <bool Mask>
__device__ __forceinline__ UnitGrad unit_grad(float scale, float t, float m, float c, float dy) {
  if (Mask) return {dy * (1.0f - t), dy * t, 0.0f};
  const Gate g = soft_gate(scale, t, m);
  const float dt = scale * dy * g.g * g.g_not * (m - c);  // ∂g/∂T = scale·g·(1 − g)
  return {dy * g.g_not, dy * g.g - dt, dt};               // ∂g/∂m = −∂g/∂T
}

// dc alone (it does not need c).
template <bool Mask>
__device__ __forceinline__ float unit_dc(float scale, float t, float m, float dy) {
  if (Mask) return dy * (1.0f - t);
  return dy * soft_gate(scale, t, m).g_not;
}

// Adds this block's counts (one per thread, in counts[]) to *total: a tree in shared memory, then
// one integer atomic per block (exact, so the total is the same in any order).
__device__ __forceinline__ void add_block_count(unsigned* counts, unsigned count, unsigned long long* total) {
  counts[threadIdx.x] = count;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) counts[threadIdx.x] += counts[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0 && counts[0] != 0) atomicAdd(total, static_cast<unsigned long long>(counts[0]));
}

// The blend's geometry, by value in the kernels' parameters.
struct Blend {
  int n, channels, plane;   // output [n, channels, plane]
  int pool_channels;        // channels of x
  int in_plane;             // x's h * w
  bool broadcast;           // one pooled plane serves every channel
  float scale;              // ±sharpness
  Window pool;
};

Blend blend_of(const FlexibleShape& s, float scale) {
  return {static_cast<int>(s.n),
          static_cast<int>(s.channels),
          static_cast<int>(s.h * s.w),
          static_cast<int>(s.pool_channels),
          static_cast<int>(s.pool.h * s.pool.w),
          s.pool_channels != s.channels,
          scale,
          window_of(s.pool)};
}

template <bool Mask>
__global__ void blend_forward_kernel(Blend p, const float* x, const float* c, const float* gate, float* y,
                                     int64_t* argmax, unsigned long long* pool_units) {
  __shared__ unsigned counts[kThreads];
  unsigned pooled = 0;
  const long long units = static_cast<long long>(p.n) * p.pool_channels * p.plane;
  for (long long u = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; u < units;
       u += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long plane_index = u / p.plane;  // image * pool_channels + pooled channel
    const int o = static_cast<int>(u % p.plane);
    const PoolValue v = max_window(x + plane_index * p.in_plane, p.pool, o / p.pool.out_w, o % p.pool.out_w);
    if (argmax != nullptr) argmax[u] = v.at;
    const long long image = plane_index / p.pool_channels;
    const int first = p.broadcast ? 0 : static_cast<int>(plane_index % p.pool_channels);
    const int end = p.broadcast ? p.channels : first + 1;
    for (int co = first; co < end; ++co) {
      const long long k = (image * p.channels + co) * p.plane + o;
      y[k] = blend_unit<Mask>(p.scale, gate[static_cast<long long>(co) * p.plane + o], v.m, c[k], pooled);
    }
  }
  if (pool_units != nullptr) add_block_count(counts, pooled, pool_units);
}

// One thread per gate unit (channel, position), over the images in order: dc, dm (when wanted) and
// the threshold's batch sum (when wanted).
template <bool Mask>
__global__ void blend_backward_kernel(Blend p, const float* x, const float* c, const float* gate,
                                      const int64_t* argmax, const float* dy, float* dc, float* dm, float* dgate) {
  const long long units = static_cast<long long>(p.channels) * p.plane;
  for (long long u = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; u < units;
       u += static_cast<long long>(gridDim.x) * blockDim.x) {
    const int co = static_cast<int>(u / p.plane), o = static_cast<int>(u % p.plane);
    const int pc = p.broadcast ? 0 : co;
    const float t = gate[u];
    float dt = 0.0f;
    for (int i = 0; i < p.n; ++i) {
      const long long pooled_plane = static_cast<long long>(i) * p.pool_channels + pc;
      const float m = x[pooled_plane * p.in_plane + argmax[pooled_plane * p.plane + o]];
      const long long k = (static_cast<long long>(i) * p.channels + co) * p.plane + o;
      const UnitGrad g = unit_grad<Mask>(p.scale, t, m, c[k], dy[k]);
      dc[k] = g.dc;
      if (dm != nullptr) dm[k] = g.dm;
      dt += g.dt;
    }
    if (dgate != nullptr) dgate[u] = dt;
  }
}

// The pool branch's input gradient, one thread per input element: the sum, over the windows whose
// first maximum it is (row-major window order), of their dm summed over the channels they serve.
__global__ void pool_gradient_kernel(Blend p, const int64_t* argmax, const float* dm, float* dx) {
  const long long elements = static_cast<long long>(p.n) * p.pool_channels * p.in_plane;
  for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < elements;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long plane_index = e / p.in_plane;
    const int i = static_cast<int>(e % p.in_plane);
    const long long image = plane_index / p.pool_channels;
    const int first = p.broadcast ? 0 : static_cast<int>(plane_index % p.pool_channels);
    const int end = p.broadcast ? p.channels : first + 1;
    const Span rows = windows_containing(i / p.pool.w, p.pool.kh, p.pool.sh, p.pool.ph, p.pool.out_h);
    const Span cols = windows_containing(i % p.pool.w, p.pool.kw, p.pool.sw, p.pool.pw, p.pool.out_w);
    float sum = 0.0f;
    for (int oh = rows.first; oh <= rows.last; ++oh)
      for (int ow = cols.first; ow <= cols.last; ++ow) {
        const int o = oh * p.pool.out_w + ow;
        if (argmax[plane_index * p.plane + o] != i) continue;
        float share = 0.0f;
        for (int co = first; co < end; ++co) share += dm[(image * p.channels + co) * p.plane + o];
        sum += share;
      }
    dx[e] = sum;
  }
}

__global__ void random_mask_kernel(long long units, uint64_t seed, uint64_t offset, float* mask) {
  const long long blocks = static_cast<long long>(philox::uniform_blocks(static_cast<uint64_t>(units)));
  for (long long b = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; b < blocks;
       b += static_cast<long long>(gridDim.x) * blockDim.x) {
    const philox::Block r = philox::generate(seed, offset + static_cast<uint64_t>(b));
    for (int j = 0; j < 4; ++j) {
      const long long k = 4 * b + j;
      if (k < units) mask[k] = philox::to_unit(r.x[j]) < 0.5f ? 1.0f : 0.0f;
    }
  }
}

float gate_scale(FlexGate gate, float sharpness) { return gate == FlexGate::threshold ? sharpness : -sharpness; }

// Throws unless every extent the kernels index with int fits one.
void check_int_extents(const char* op, std::initializer_list<long long> extents) {
  for (long long e : extents)
    if (e > INT_MAX)
      raise_error(std::string(op) + ": an extent of " + std::to_string(e) +
                  " elements exceeds the CUDA kernels' 32-bit indexing");
}

// ---- The fused layer ----

// A block tile of the implicit GEMMs: BM x BN outputs, BK deep, each of the kThreads threads holding
// a TM x TN micro-tile (rows contiguous, columns strided by the tile's thread columns, so that
// consecutive threads write consecutive positions).
template <int BM_, int BN_, int BK_, int TM_, int TN_>
struct Tile {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, TM = TM_, TN = TN_;
  static constexpr int COLS = BN / TN;  // thread columns
  static_assert((BM / TM) * (BN / TN) == kThreads, "one micro-tile per thread");
  static_assert(kThreads % BN == 0 && kThreads % BK == 0, "fixed load columns per thread");
};
using WideTile = Tile<64, 64, 16, 4, 4>;    // channels > 16
using NarrowTile = Tile<16, 64, 16, 1, 4>;  // up to 16 channels (e.g. FMNIST's 1 -> 12)

// The convolution and the blend over its output, by value in the kernels' parameters.
struct Fused {
  int n, c_in, h, w, c_out, kh, kw, sh, sw, ph, pw, out_h, out_w;
  int taps;      // kh * kw
  int k;         // c_in * taps: the forward's depth, the weight gradient's width
  int plane;     // out_h * out_w
  int in_plane;  // h * w
  bool broadcast;  // a 1-channel input pooled for every output channel
  float scale;
  Window pool;
};

Fused fused_of(const Conv2dShape& s, const FlexibleShape& f, float scale) {
  return {static_cast<int>(s.n),        static_cast<int>(s.c_in),     static_cast<int>(s.h),
          static_cast<int>(s.w),        static_cast<int>(s.c_out),    static_cast<int>(s.kh),
          static_cast<int>(s.kw),       static_cast<int>(s.stride_h), static_cast<int>(s.stride_w),
          static_cast<int>(s.pad_h),    static_cast<int>(s.pad_w),    static_cast<int>(s.out_h),
          static_cast<int>(s.out_w),    static_cast<int>(s.kh * s.kw), static_cast<int>(s.c_in * s.kh * s.kw),
          static_cast<int>(s.out_h * s.out_w), static_cast<int>(s.h * s.w), f.pool_channels != f.channels,
          scale,                        window_of(f.pool)};
}

// acc += As^T·Bs over one staged depth tile.
template <typename T>
__device__ __forceinline__ void multiply_tile(const float (*as)[T::BM], const float (*bs)[T::BN],
                                              float (&acc)[T::TM][T::TN], int ty, int tx) {
#pragma unroll
  for (int kk = 0; kk < T::BK; ++kk) {
    float a[T::TM], b[T::TN];
#pragma unroll
    for (int i = 0; i < T::TM; ++i) a[i] = as[kk][ty * T::TM + i];
#pragma unroll
    for (int j = 0; j < T::TN; ++j) b[j] = bs[kk][tx + j * T::COLS];
#pragma unroll
    for (int i = 0; i < T::TM; ++i)
#pragma unroll
      for (int j = 0; j < T::TN; ++j) acc[i][j] += a[i] * b[j];
  }
}

// The pooled value of unit (image, pooled channel, position o), from the saved argmax.
__device__ __forceinline__ float saved_pool(const Fused& p, const float* x, const int32_t* argmax, int image, int pc,
                                            int o) {
  const long long plane_index = static_cast<long long>(image) * p.c_in + pc;
  return x[plane_index * p.in_plane + argmax[plane_index * p.plane + o]];
}

// dc of unit (image, co, o), recomputed from dy, the gate value and the saved pool.
template <bool Mask>
__device__ __forceinline__ float recompute_dc(const Fused& p, const float* x, const int32_t* argmax,
                                              const float* gate, const float* dy, int image, int co, int o) {
  const float m = saved_pool(p, x, argmax, image, p.broadcast ? 0 : co, o);
  const float t = gate[static_cast<long long>(co) * p.plane + o];
  return unit_dc<Mask>(p.scale, t, m, dy[(static_cast<long long>(image) * p.c_out + co) * p.plane + o]);
}

// The forward: block (bx, by) computes output channels [by·BM, +BM) at flattened positions
// (image, o) [bx·BN, +BN), then blends them.
template <typename T, bool Mask>
__global__ void fused_forward_kernel(Fused p, const float* x, const float* weight, const float* bias,
                                     const float* gate, float* y, float* c_saved, int32_t* argmax,
                                     unsigned long long* pool_units) {
  __shared__ float as[T::BK][T::BM];
  __shared__ float bs[T::BK][T::BN];
  __shared__ float pool_m[T::BN];
  __shared__ int pool_at[T::BN];
  __shared__ unsigned counts[kThreads];
  const int tid = threadIdx.x, tx = tid % T::COLS, ty = tid / T::COLS;
  const int co0 = blockIdx.y * T::BM;
  const long long q0 = static_cast<long long>(blockIdx.x) * T::BN;
  const long long positions = static_cast<long long>(p.n) * p.plane;

  // This thread's column of the x_col tile, the same at every depth step: its image and the
  // top-left input position of its window.
  const int load_col = tid % T::BN, load_row0 = tid / T::BN;
  const long long q = q0 + load_col;
  const bool q_valid = q < positions;
  const int q_image = q_valid ? static_cast<int>(q / p.plane) : 0, q_o = q_valid ? static_cast<int>(q % p.plane) : 0;
  const int ih0 = (q_o / p.out_w) * p.sh - p.ph, iw0 = (q_o % p.out_w) * p.sw - p.pw;
  const float* x_image = x + static_cast<long long>(q_image) * p.c_in * p.in_plane;

  float acc[T::TM][T::TN] = {};
  for (int k0 = 0; k0 < p.k; k0 += T::BK) {
    for (int e = tid; e < T::BM * T::BK; e += kThreads) {
      const int row = e / T::BK, kk = e % T::BK, co = co0 + row, k = k0 + kk;
      as[kk][row] = co < p.c_out && k < p.k ? weight[static_cast<long long>(co) * p.k + k] : 0.0f;
    }
    for (int kk = load_row0; kk < T::BK; kk += kThreads / T::BN) {
      const int k = k0 + kk;
      float v = 0.0f;
      if (q_valid && k < p.k) {
        const int ci = k / p.taps, tap = k % p.taps;
        const int ih = ih0 + tap / p.kw, iw = iw0 + tap % p.kw;
        if (ih >= 0 && ih < p.h && iw >= 0 && iw < p.w) v = x_image[ci * p.in_plane + ih * p.w + iw];
      }
      bs[kk][load_col] = v;
    }
    __syncthreads();
    multiply_tile<T>(as, bs, acc, ty, tx);
    __syncthreads();
  }

  // A broadcast input's pool serves every channel: pooled once per position, by the block.
  if (p.broadcast) {
    for (int j = tid; j < T::BN; j += kThreads) {
      const long long qj = q0 + j;
      if (qj >= positions) continue;
      const int image = static_cast<int>(qj / p.plane), o = static_cast<int>(qj % p.plane);
      const PoolValue v = max_window(x + static_cast<long long>(image) * p.in_plane, p.pool, o / p.out_w, o % p.out_w);
      pool_m[j] = v.m;
      pool_at[j] = v.at;
      if (argmax != nullptr && blockIdx.y == 0) argmax[qj] = v.at;
    }
    __syncthreads();
  }

  unsigned pooled = 0;
#pragma unroll
  for (int j = 0; j < T::TN; ++j) {
    const int col = tx + j * T::COLS;
    const long long qe = q0 + col;
    if (qe >= positions) continue;
    const int image = static_cast<int>(qe / p.plane), o = static_cast<int>(qe % p.plane);
#pragma unroll
    for (int i = 0; i < T::TM; ++i) {
      const int co = co0 + ty * T::TM + i;
      if (co >= p.c_out) continue;
      PoolValue v;
      if (p.broadcast) {
        v = {pool_m[col], pool_at[col]};
      } else {
        const long long plane_index = static_cast<long long>(image) * p.c_in + co;
        v = max_window(x + plane_index * p.in_plane, p.pool, o / p.out_w, o % p.out_w);
        if (argmax != nullptr) argmax[plane_index * p.plane + o] = v.at;
      }
      const float c = acc[i][j] + (bias != nullptr ? bias[co] : 0.0f);
      const long long k = (static_cast<long long>(image) * p.c_out + co) * p.plane + o;
      y[k] = blend_unit<Mask>(p.scale, gate[static_cast<long long>(co) * p.plane + o], v.m, c, pooled);
      if (c_saved != nullptr) c_saved[k] = c;
    }
  }
  if (pool_units != nullptr) add_block_count(counts, pooled, pool_units);
}

// How the backward's blocks split the work (a function of the shape alone, so that the sums'
// order, hence every result, is the same on every device).
struct Plan {
  int co_tiles, k_tiles;     // weight tiles: output channels x weight columns (ci, tap)
  int chunks, chunk_images;  // image chunks summed by separate weight blocks
  int weight_blocks;         // co_tiles * k_tiles * chunks (0 when no weight or bias gradient)
  int input_blocks;          // (c_in tiles) x (positions tiles) (0 when no input gradient)
  int gate_blocks;           // c_out * plane / kThreads (0 when no threshold gradient)
  long long partial_weight, partial_bias;  // workspace offsets (floats)
  long long counters;                      // workspace offset of co_tiles * k_tiles counters
  long long workspace;                     // floats in all
};

constexpr int kWeightBlocksTarget = 512;  // enough weight blocks to fill a large GPU

template <typename T>
Plan plan_for(const Fused& p, bool weight, bool bias, bool input, bool gate) {
  Plan plan{};
  plan.co_tiles = (p.c_out + T::BM - 1) / T::BM;
  const int all_k_tiles = (p.k + T::BN - 1) / T::BN;
  // The chunks do not depend on which gradients are wanted: the workspace for all of them fits any.
  const int images = std::max(p.n, 1);
  const int wanted_chunks =
      std::clamp((kWeightBlocksTarget + plan.co_tiles * all_k_tiles - 1) / (plan.co_tiles * all_k_tiles), 1, images);
  plan.chunk_images = (images + wanted_chunks - 1) / wanted_chunks;
  plan.chunks = (images + plan.chunk_images - 1) / plan.chunk_images;
  plan.k_tiles = weight ? all_k_tiles : 1;
  const int groups = plan.co_tiles * plan.k_tiles;
  plan.weight_blocks = weight || bias ? groups * plan.chunks : 0;
  const long long input_positions = static_cast<long long>(p.n) * p.in_plane;
  plan.input_blocks =
      input ? static_cast<int>(((p.c_in + T::BM - 1) / T::BM) * ((input_positions + T::BN - 1) / T::BN)) : 0;
  plan.gate_blocks = gate ? (p.c_out * p.plane + kThreads - 1) / kThreads : 0;
  plan.partial_weight = 0;
  plan.partial_bias = weight ? static_cast<long long>(plan.chunks) * p.c_out * p.k : 0;
  plan.counters = plan.partial_bias + static_cast<long long>(plan.chunks) * p.c_out;
  plan.workspace = plan.counters + groups;
  return plan;
}

// Shared memory of the backward's roles.
template <typename T>
struct BackwardShared {
  float (*as)[T::BM];
  float (*bs)[T::BN];
  float* bias_rows;  // BM x BK
  int* last;
};

// The weight role: block `wb` of plan.weight_blocks.
template <typename T, bool Mask>
__device__ void weight_role(const Fused& p, const Plan& plan, int wb, const BackwardShared<T>& sh, const float* x,
                            const float* gate, const int32_t* argmax, const float* dy, float* dweight, float* dbias,
                            float* workspace) {
  const int tid = threadIdx.x, tx = tid % T::COLS, ty = tid / T::COLS;
  const int group = wb / plan.chunks, chunk = wb % plan.chunks;
  const int co_tile = group % plan.co_tiles, k_tile = group / plan.co_tiles;
  const int co0 = co_tile * T::BM, k0 = k_tile * T::BN;
  const int first_image = chunk * plan.chunk_images, end_image = imin(p.n, first_image + plan.chunk_images);
  const bool weight = dweight != nullptr, bias = dbias != nullptr && k_tile == 0;

  // A tile (dc) loads: column kk fixed per thread, rows strided. B tile (x_col) loads: the weight
  // column (ci, tap) fixed per thread, depth rows strided.
  constexpr int kARows = T::BM * T::BK / kThreads;
  const int a_kk = tid % T::BK, a_row0 = tid / T::BK;
  float bias_sum[kARows] = {};
  const int b_col = tid % T::BN, b_row0 = tid / T::BN;
  const int b_k = k0 + b_col;
  const bool b_valid = b_k < p.k;
  const int b_ci = b_valid ? b_k / p.taps : 0, b_tap = b_valid ? b_k % p.taps : 0;
  const int b_dh = b_tap / p.kw - p.ph, b_dw = b_tap % p.kw - p.pw;

  float acc[T::TM][T::TN] = {};
  for (int o0 = 0; o0 < p.plane; o0 += T::BK) {
    for (int image = first_image; image < end_image; ++image) {
#pragma unroll
      for (int r = 0; r < kARows; ++r) {
        const int row = a_row0 + r * (kThreads / T::BK), co = co0 + row, o = o0 + a_kk;
        const float dc = co < p.c_out && o < p.plane ? recompute_dc<Mask>(p, x, argmax, gate, dy, image, co, o) : 0.0f;
        sh.as[a_kk][row] = dc;
        bias_sum[r] += dc;
      }
      if (weight) {
        const float* x_plane = x + (static_cast<long long>(image) * p.c_in + b_ci) * p.in_plane;
        for (int kk = b_row0; kk < T::BK; kk += kThreads / T::BN) {
          const int o = o0 + kk;
          float v = 0.0f;
          if (b_valid && o < p.plane) {
            const int ih = (o / p.out_w) * p.sh + b_dh, iw = (o % p.out_w) * p.sw + b_dw;
            if (ih >= 0 && ih < p.h && iw >= 0 && iw < p.w) v = x_plane[ih * p.w + iw];
          }
          sh.bs[kk][b_col] = v;
        }
      }
      __syncthreads();
      if (weight) multiply_tile<T>(sh.as, sh.bs, acc, ty, tx);
      __syncthreads();
    }
  }

  // This chunk's partial sums.
  float* partial_weight = workspace + plan.partial_weight;
  float* partial_bias = workspace + plan.partial_bias;
  if (weight) {
#pragma unroll
    for (int i = 0; i < T::TM; ++i) {
      const int co = co0 + ty * T::TM + i;
#pragma unroll
      for (int j = 0; j < T::TN; ++j) {
        const int k = k0 + tx + j * T::COLS;
        if (co < p.c_out && k < p.k)
          partial_weight[(static_cast<long long>(chunk) * p.c_out + co) * p.k + k] = acc[i][j];
      }
    }
  }
  if (bias) {
#pragma unroll
    for (int r = 0; r < kARows; ++r) sh.bias_rows[(a_row0 + r * (kThreads / T::BK)) * T::BK + a_kk] = bias_sum[r];
    __syncthreads();
    if (tid < T::BM && co0 + tid < p.c_out) {
      float sum = 0.0f;
      for (int kk = 0; kk < T::BK; ++kk) sum += sh.bias_rows[tid * T::BK + kk];
      partial_bias[static_cast<long long>(chunk) * p.c_out + co0 + tid] = sum;
    }
  }

  // The last block of this tile to finish adds the chunks' partials, in chunk order.
  __threadfence();
  __syncthreads();
  if (tid == 0) {
    unsigned* counters = reinterpret_cast<unsigned*>(workspace + plan.counters);
    *sh.last = atomicAdd(&counters[group], 1u) == static_cast<unsigned>(plan.chunks - 1);
  }
  __syncthreads();
  if (!*sh.last) return;
  __threadfence();
  const volatile float* partial_weight_v = partial_weight;
  const volatile float* partial_bias_v = partial_bias;
  if (weight) {
    for (int e = tid; e < T::BM * T::BN; e += kThreads) {
      const int co = co0 + e / T::BN, k = k0 + e % T::BN;
      if (co >= p.c_out || k >= p.k) continue;
      float sum = 0.0f;
      for (int ch = 0; ch < plan.chunks; ++ch)
        sum += partial_weight_v[(static_cast<long long>(ch) * p.c_out + co) * p.k + k];
      dweight[static_cast<long long>(co) * p.k + k] = sum;
    }
  }
  if (bias && tid < T::BM && co0 + tid < p.c_out) {
    float sum = 0.0f;
    for (int ch = 0; ch < plan.chunks; ++ch) sum += partial_bias_v[static_cast<long long>(ch) * p.c_out + co0 + tid];
    dbias[co0 + tid] = sum;
  }
}

// The input role: block `ib` of plan.input_blocks computes input channels [ci0, +BM) at flattened
// input positions (image, i) [q0, +BN).
template <typename T, bool Mask>
__device__ void input_role(const Fused& p, int ib, const BackwardShared<T>& sh, const float* x, const float* weight,
                           const float* gate, const float* c, const int32_t* argmax, const float* dy, float* dx) {
  const int tid = threadIdx.x, tx = tid % T::COLS, ty = tid / T::COLS;
  const int ci_tiles = (p.c_in + T::BM - 1) / T::BM;
  const int ci0 = (ib % ci_tiles) * T::BM;
  const long long q0 = static_cast<long long>(ib / ci_tiles) * T::BN;
  const long long positions = static_cast<long long>(p.n) * p.in_plane;
  const int depth = p.c_out * p.taps;  // (co, tap)

  // This thread's column of the gathered dc tile: its image and input position.
  const int load_col = tid % T::BN, load_row0 = tid / T::BN;
  const long long q = q0 + load_col;
  const bool q_valid = q < positions;
  const int q_image = q_valid ? static_cast<int>(q / p.in_plane) : 0;
  const int q_i = q_valid ? static_cast<int>(q % p.in_plane) : 0;
  const int ih = q_i / p.w + p.ph, iw = q_i % p.w + p.pw;  // padded coordinates

  float acc[T::TM][T::TN] = {};
  for (int k0 = 0; k0 < depth; k0 += T::BK) {
    for (int e = tid; e < T::BM * T::BK; e += kThreads) {
      const int row = e / T::BK, kk = e % T::BK, ci = ci0 + row, k = k0 + kk;
      float v = 0.0f;
      if (ci < p.c_in && k < depth) {
        const int co = k / p.taps, tap = k % p.taps;
        v = weight[(static_cast<long long>(co) * p.c_in + ci) * p.taps + tap];
      }
      sh.as[kk][row] = v;
    }
    for (int kk = load_row0; kk < T::BK; kk += kThreads / T::BN) {
      const int k = k0 + kk;
      float v = 0.0f;
      if (q_valid && k < depth) {
        const int co = k / p.taps, tap = k % p.taps;
        const int oh_s = ih - tap / p.kw, ow_s = iw - tap % p.kw;  // output position times the stride
        if (oh_s >= 0 && ow_s >= 0 && oh_s % p.sh == 0 && ow_s % p.sw == 0 && oh_s / p.sh < p.out_h &&
            ow_s / p.sw < p.out_w)
          v = recompute_dc<Mask>(p, x, argmax, gate, dy, q_image, co, (oh_s / p.sh) * p.out_w + ow_s / p.sw);
      }
      sh.bs[kk][load_col] = v;
    }
    __syncthreads();
    multiply_tile<T>(sh.as, sh.bs, acc, ty, tx);
    __syncthreads();
  }

#pragma unroll
  for (int j = 0; j < T::TN; ++j) {
    const long long qe = q0 + tx + j * T::COLS;
    if (qe >= positions) continue;
    const int image = static_cast<int>(qe / p.in_plane), i = static_cast<int>(qe % p.in_plane);
    const Span rows = windows_containing(i / p.w, p.pool.kh, p.pool.sh, p.pool.ph, p.out_h);
    const Span cols = windows_containing(i % p.w, p.pool.kw, p.pool.sw, p.pool.pw, p.out_w);
#pragma unroll
    for (int r = 0; r < T::TM; ++r) {
      const int ci = ci0 + ty * T::TM + r;
      if (ci >= p.c_in) continue;
      // The pool branch's share: the windows whose first maximum is this element.
      const long long plane_index = static_cast<long long>(image) * p.c_in + ci;
      const float m = x[plane_index * p.in_plane + i];
      const int first = p.broadcast ? 0 : ci, end = p.broadcast ? p.c_out : ci + 1;
      float pool_share = 0.0f;
      for (int oh = rows.first; oh <= rows.last; ++oh)
        for (int ow = cols.first; ow <= cols.last; ++ow) {
          const int o = oh * p.out_w + ow;
          if (argmax[plane_index * p.plane + o] != i) continue;
          float share = 0.0f;
          for (int co = first; co < end; ++co) {
            const long long k = (static_cast<long long>(image) * p.c_out + co) * p.plane + o;
            share += unit_grad<Mask>(p.scale, gate[static_cast<long long>(co) * p.plane + o], m, c[k], dy[k]).dm;
          }
          pool_share += share;
        }
      dx[plane_index * p.in_plane + i] = acc[r][j] + pool_share;
    }
  }
}

// The gate role: one thread per threshold, its gradient summed over the images in order.
__device__ void gate_role(const Fused& p, int gb, const float* x, const float* gate, const float* c,
                          const int32_t* argmax, const float* dy, float* dgate) {
  const int u = gb * kThreads + static_cast<int>(threadIdx.x);
  if (u >= p.c_out * p.plane) return;
  const int co = u / p.plane, o = u % p.plane;
  const float t = gate[u];
  float dt = 0.0f;
  for (int image = 0; image < p.n; ++image) {
    const float m = saved_pool(p, x, argmax, image, p.broadcast ? 0 : co, o);
    const long long k = (static_cast<long long>(image) * p.c_out + co) * p.plane + o;
    dt += unit_grad<false>(p.scale, t, m, c[k], dy[k]).dt;
  }
  dgate[u] = dt;
}

// The backward: blocks [0, weight) weight role, then input role, then gate role.
template <typename T, bool Mask>
__global__ void fused_backward_kernel(Fused p, Plan plan, const float* x, const float* weight, const float* gate,
                                      const float* c, const int32_t* argmax, const float* dy, float* dx,
                                      float* dweight, float* dbias, float* dgate, float* workspace) {
  __shared__ float as[T::BK][T::BM];
  __shared__ float bs[T::BK][T::BN];
  __shared__ float bias_rows[T::BM * T::BK];
  __shared__ int last;
  const BackwardShared<T> sh{as, bs, bias_rows, &last};
  const int b = blockIdx.x;
  if (b < plan.weight_blocks) {
    weight_role<T, Mask>(p, plan, b, sh, x, gate, argmax, dy, dweight, dbias, workspace);
  } else if (b < plan.weight_blocks + plan.input_blocks) {
    input_role<T, Mask>(p, b - plan.weight_blocks, sh, x, weight, gate, c, argmax, dy, dx);
  } else {
    gate_role(p, b - plan.weight_blocks - plan.input_blocks, x, gate, c, argmax, dy, dgate);
  }
}

// Calls f.template operator()<Tile, Mask>() with the tile for the layer's channel counts.
template <typename F>
void with_tile(const Conv2dShape& s, FlexGate gate, F&& f) {
  const bool narrow = std::max(s.c_in, s.c_out) <= NarrowTile::BM;
  const bool mask = gate == FlexGate::mask;
  if (narrow && mask) return f.template operator()<NarrowTile, true>();
  if (narrow) return f.template operator()<NarrowTile, false>();
  if (mask) return f.template operator()<WideTile, true>();
  f.template operator()<WideTile, false>();
}

// p[0, n) = 0 (nothing when p is null).
void zero(float* p, long long n) {
  if (p != nullptr && n > 0) FLEXNN_CUDA_CHECK(cudaMemsetAsync(p, 0, static_cast<size_t>(n) * sizeof(float), stream()));
}

void check_fused(const Conv2dShape& s, const FlexibleShape& f) {
  check_int_extents("flexible_conv2d", {s.n * s.out_h * s.out_w, s.n * s.h * s.w, s.c_in * s.h * s.w,
                                        s.c_out * s.out_h * s.out_w, s.c_out * s.c_in * s.kh * s.kw});
  if (f.channels != s.c_out || f.pool_channels != s.c_in || f.h != s.out_h || f.w != s.out_w || f.n != s.n)
    raise_error("flexible_conv2d: the blend's shape does not match the convolution's output");
}

}  // namespace

void flexible_forward(const FlexibleShape& s, FlexGate gate, float sharpness, const float* x, const float* c,
                      const float* gate_values, float* y, int64_t* argmax, int64_t* pool_units) {
  check_int_extents("flexible_blend", {s.h * s.w, s.pool.h * s.pool.w, s.channels});
  unsigned long long* count = reinterpret_cast<unsigned long long*>(pool_units);
  if (count != nullptr) FLEXNN_CUDA_CHECK(cudaMemsetAsync(count, 0, sizeof(*count), stream()));
  const long long units = s.n * s.pool_channels * s.h * s.w;
  if (units == 0) return;
  const Blend p = blend_of(s, gate_scale(gate, sharpness));
  if (gate == FlexGate::mask)
    FLEXNN_LAUNCH(blend_forward_kernel<true>, dim3(blocks_for(units, kThreads)), dim3(kThreads), 0, stream(), p, x, c,
                  gate_values, y, argmax, count);
  else
    FLEXNN_LAUNCH(blend_forward_kernel<false>, dim3(blocks_for(units, kThreads)), dim3(kThreads), 0, stream(), p, x,
                  c, gate_values, y, argmax, count);
}

void flexible_backward(const FlexibleShape& s, FlexGate gate, float sharpness, const float* x, const float* c,
                       const float* gate_values, const int64_t* argmax, const float* dy, float* dc, float* dx,
                       float* dgate, float* workspace) {
  check_int_extents("flexible_blend", {s.h * s.w, s.pool.h * s.pool.w, s.channels});
  const Blend p = blend_of(s, gate_scale(gate, sharpness));
  const long long units = s.channels * s.h * s.w;
  float* dm = dx != nullptr ? workspace : nullptr;
  if (units > 0 && s.n > 0) {
    if (gate == FlexGate::mask)
      FLEXNN_LAUNCH(blend_backward_kernel<true>, dim3(blocks_for(units, kThreads)), dim3(kThreads), 0, stream(), p, x,
                    c, gate_values, argmax, dy, dc, dm, nullptr);
    else
      FLEXNN_LAUNCH(blend_backward_kernel<false>, dim3(blocks_for(units, kThreads)), dim3(kThreads), 0, stream(), p,
                    x, c, gate_values, argmax, dy, dc, dm, dgate);
  } else {
    zero(dgate, units);
  }
  const long long elements = s.n * s.pool_channels * s.pool.h * s.pool.w;
  if (dx != nullptr && elements > 0)
    FLEXNN_LAUNCH(pool_gradient_kernel, dim3(blocks_for(elements, kThreads)), dim3(kThreads), 0, stream(), p, argmax,
                  dm, dx);
}

void flexible_random_mask(int64_t units, uint64_t seed, uint64_t offset, float* mask) {
  if (units <= 0) return;
  const long long blocks = static_cast<long long>(philox::uniform_blocks(static_cast<uint64_t>(units)));
  FLEXNN_LAUNCH(random_mask_kernel, dim3(blocks_for(blocks, kThreads)), dim3(kThreads), 0, stream(),
                static_cast<long long>(units), seed, offset, mask);
}

void flexible_conv2d_forward(const Conv2dShape& conv, const FlexibleShape& flex, FlexGate gate, float sharpness,
                             const float* x, const float* weight, const float* bias, const float* gate_values,
                             float* y, float* c, int32_t* argmax, int64_t* pool_units) {
  check_fused(conv, flex);
  unsigned long long* count = reinterpret_cast<unsigned long long*>(pool_units);
  if (count != nullptr) FLEXNN_CUDA_CHECK(cudaMemsetAsync(count, 0, sizeof(*count), stream()));
  const long long positions = conv.n * conv.out_h * conv.out_w;
  if (positions == 0) return;
  const Fused p = fused_of(conv, flex, gate_scale(gate, sharpness));
  with_tile(conv, gate, [&]<typename T, bool Mask>() {
    const dim3 grid(static_cast<unsigned>((positions + T::BN - 1) / T::BN),
                    static_cast<unsigned>((conv.c_out + T::BM - 1) / T::BM));
    constexpr auto flexible_conv2d_forward_kernel = &fused_forward_kernel<T, Mask>;
    FLEXNN_LAUNCH(flexible_conv2d_forward_kernel, grid, dim3(kThreads), 0, stream(), p, x, weight, bias, gate_values,
                  y, c, argmax, count);
  });
}

int64_t flexible_conv2d_backward_workspace(const Conv2dShape& conv, const FlexibleShape& flex) {
  check_fused(conv, flex);
  const Fused p = fused_of(conv, flex, 1.0f);
  long long floats = 0;
  with_tile(conv, FlexGate::threshold,
            [&]<typename T, bool>() { floats = plan_for<T>(p, true, true, true, true).workspace; });
  return std::max(floats, 1LL);
}

void flexible_conv2d_backward(const Conv2dShape& conv, const FlexibleShape& flex, FlexGate gate, float sharpness,
                              const float* x, const float* weight, const float* gate_values, const float* c,
                              const int32_t* argmax, const float* dy, float* dx, float* dweight, float* dbias,
                              float* dgate, float* workspace) {
  check_fused(conv, flex);
  if (gate == FlexGate::mask) dgate = nullptr;
  if (conv.n == 0) {  // no images: the parameters' gradients are zero sums
    zero(dweight, conv.c_out * conv.c_in * conv.kh * conv.kw);
    zero(dbias, conv.c_out);
    zero(dgate, conv.c_out * conv.out_h * conv.out_w);
    return;
  }
  const Fused p = fused_of(conv, flex, gate_scale(gate, sharpness));
  with_tile(conv, gate, [&]<typename T, bool Mask>() {
    const Plan plan = plan_for<T>(p, dweight != nullptr, dbias != nullptr, dx != nullptr, dgate != nullptr);
    const long long blocks = static_cast<long long>(plan.weight_blocks) + plan.input_blocks + plan.gate_blocks;
    if (blocks == 0) return;
    if (plan.weight_blocks > 0)
      FLEXNN_CUDA_CHECK(cudaMemsetAsync(workspace + plan.counters, 0,
                                        static_cast<size_t>(plan.co_tiles) * plan.k_tiles * sizeof(unsigned),
                                        stream()));
    constexpr auto flexible_conv2d_backward_kernel = &fused_backward_kernel<T, Mask>;
    FLEXNN_LAUNCH(flexible_conv2d_backward_kernel, dim3(static_cast<unsigned>(blocks)), dim3(kThreads), 0, stream(),
                  p, plan, x, weight, gate_values, c, argmax, dy, dx, dweight, dbias, dgate, workspace);
  });
}

}  // namespace flexnn::cuda
