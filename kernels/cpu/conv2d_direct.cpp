// Direct one-input-channel, stride-1 convolution. Each image is copied into a zero-padded plane
// of width pw = w + 2*pad_w (with zero slack after it), so that output (oh, ow) of every tap
// (ki, kj) reads position q + ki*pw + kj, where q = oh*pw + ow is the output's "wide" position:
// outputs over all wide positions (the pw - out_w last of each row are discarded) are one
// contiguous run, cut into blocks of kBlockVectors vectors of 16 floats. For a block and up to
// kChannelBlock output channels, accumulators stay in registers while each tap loads its input
// vectors once and multiply-adds them into every channel. The valid lanes of a vector (those of
// wide positions with ow < out_w) are consecutive outputs, so each vector is stored by packing its
// valid lanes to the front (a register compress with AVX-512) and storing that many floats.
#include "kernels/cpu/conv2d_direct.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#if defined(__AVX512F__) || defined(__FMA__)
#include <immintrin.h>
#endif

#include "engine/error.hpp"
#include "kernels/cpu/parallel.hpp"

namespace flexnn::cpu {
namespace {

// One register of floats: 16 with AVX-512, 8 with AVX, else 4 (SSE). Output channels per
// register block: kChannelBlock x kBlockVectors accumulators + kBlockVectors inputs fit the 32
// AVX-512 registers or the 16 AVX or SSE ones.
#if defined(__AVX512F__)
constexpr int64_t kLanes = 16;
constexpr int kChannelBlock = 12;
#elif defined(__AVX__)
constexpr int64_t kLanes = 8;
constexpr int kChannelBlock = 6;
#else
constexpr int64_t kLanes = 4;
constexpr int kChannelBlock = 6;
#endif
using Vec = float __attribute__((vector_size(kLanes * sizeof(float))));
constexpr int kBlockVectors = 2;
constexpr int64_t kBlock = kBlockVectors * kLanes;  // wide positions per block
// Images per parallel chunk.
constexpr int64_t kImagesPerChunk = 4;

// Vectors pass by reference: by value, their ABI differs between builds with and without AVX-512.
void load(Vec& v, const float* p) { std::memcpy(&v, p, sizeof v); }

// acc += a * b, fused where FMA is compiled in (the build does not contract a * b + c itself).
void multiply_add(Vec& acc, const Vec& a, float b) {
#if defined(__AVX512F__)
  acc = _mm512_fmadd_ps(a, _mm512_set1_ps(b), acc);
#elif defined(__FMA__)
  acc = _mm256_fmadd_ps(a, _mm256_set1_ps(b), acc);
#else
  acc += a * b;
#endif
}

// The padded image plane's geometry.
struct Plane {
  int64_t pw, wide;  // row width, and out_h * pw wide output positions
  int64_t blocks() const { return (wide + kBlock - 1) / kBlock; }
};

// Where the vector of wide positions [q, q + kLanes) goes: lane l is valid (an output, not past
// the row's out_w or the plane's end) where bit l of mask is set; valid lanes go in order to
// consecutive outputs of the plane from index start.
struct VecStore {
  uint32_t mask;
  int64_t start;
};

std::vector<VecStore> vector_stores(const Conv2dShape& s, const Plane& pl) {
  std::vector<VecStore> stores(static_cast<std::size_t>(pl.blocks() * kBlockVectors));
  for (std::size_t k = 0; k < stores.size(); ++k) {
    const int64_t q = static_cast<int64_t>(k) * kLanes;
    stores[k] = {0, q / pl.pw * s.out_w + std::min(q % pl.pw, s.out_w)};
    for (int64_t l = 0; l < kLanes; ++l)
      if (q + l < pl.wide && (q + l) % pl.pw < s.out_w) stores[k].mask |= uint32_t{1} << l;
  }
  return stores;
}

// Stores the lanes of v selected by st.mask to the consecutive outputs y[st.start, ...).
void store_valid(const Vec& v, const VecStore& st, float* y) {
#ifdef __AVX512F__
  const __mmask16 m = static_cast<__mmask16>(st.mask);
  const __m512 packed = _mm512_maskz_compress_ps(m, v);
  const int count = __builtin_popcount(st.mask);
  _mm512_mask_storeu_ps(y + st.start, static_cast<__mmask16>((uint32_t{1} << count) - 1), packed);
#else
  int64_t k = st.start;
  for (int64_t l = 0; l < kLanes; ++l)
    if (st.mask >> l & 1) y[k++] = v[l];
#endif
}

// Output c, wide position q0 + p = bias[c] + sum over taps of plane[q0 + p + tap offset] *
// weight[c][tap], for the CB channels from weight / bias (planes of y) and the block of wide
// positions starting at q0, whose vectors go as stores says.
template <int CB>
void block_kernel(const Conv2dShape& s, const Plane& pl, const float* plane, int64_t q0, const float* weight,
                  const float* bias, const VecStore* stores, float* y) {
  Vec acc[CB][kBlockVectors];
#pragma GCC unroll 16
  for (int c = 0; c < CB; ++c)
#pragma GCC unroll 4
    for (int v = 0; v < kBlockVectors; ++v) acc[c][v] = Vec{} + (bias != nullptr ? bias[c] : 0.0f);
  const int64_t taps = s.kh * s.kw;
  for (int64_t ki = 0; ki < s.kh; ++ki) {
    const float* row = plane + q0 + ki * pl.pw;
    for (int64_t kj = 0; kj < s.kw; ++kj) {
      Vec in[kBlockVectors];
#pragma GCC unroll 4
      for (int v = 0; v < kBlockVectors; ++v) load(in[v], row + kj + v * kLanes);
      const float* w = weight + ki * s.kw + kj;
#pragma GCC unroll 16
      for (int c = 0; c < CB; ++c) {
        const float wc = w[c * taps];
#pragma GCC unroll 4
        for (int v = 0; v < kBlockVectors; ++v) multiply_add(acc[c][v], in[v], wc);
      }
    }
  }
#pragma GCC unroll 16
  for (int c = 0; c < CB; ++c)
#pragma GCC unroll 4
    for (int v = 0; v < kBlockVectors; ++v) store_valid(acc[c][v], stores[v], y + c * s.out_plane());
}

using BlockKernel = void (*)(const Conv2dShape&, const Plane&, const float*, int64_t, const float*, const float*,
                             const VecStore*, float*);

template <std::size_t... I>
constexpr std::array<BlockKernel, sizeof...(I)> make_kernels(std::index_sequence<I...>) {
  return {&block_kernel<static_cast<int>(I) + 1>...};
}
// kernels[cb - 1] serves a block of cb channels.
constexpr auto kKernels = make_kernels(std::make_index_sequence<kChannelBlock>{});

}  // namespace

bool conv2d_direct_fits(const Conv2dShape& s) {
  return s.c_in == 1 && s.stride_h == 1 && s.stride_w == 1 && s.kh <= kDirectMaxKernel &&
         s.kw <= kDirectMaxKernel && s.out_plane() > 0 && s.c_out > 0;
}

bool conv2d_direct_pays([[maybe_unused]] const Conv2dShape& s) {
#ifdef __AVX__
  return conv2d_direct_fits(s);
#else
  return false;
#endif
}

void conv2d_direct_forward(const Conv2dShape& s, const float* x, const float* weight, const float* bias, float* y) {
  FLEXNN_CHECK(conv2d_direct_fits(s),
               "direct convolution: expected 1 input channel, stride 1, a kernel of at most {}x{} and a non-empty "
               "output, found {} input channels, stride ({}, {}), a {}x{} kernel and a {}x{}x{} output",
               kDirectMaxKernel, kDirectMaxKernel, s.c_in, s.stride_h, s.stride_w, s.kh, s.kw, s.c_out, s.out_h,
               s.out_w);
  FLEXNN_CHECK(s.out_h == s.h + 2 * s.pad_h - s.kh + 1 && s.out_w == s.w + 2 * s.pad_w - s.kw + 1,
               "direct convolution: expected a {}x{} output for a {}x{} input, {}x{} kernel and padding ({}, {}), "
               "found {}x{}",
               s.h + 2 * s.pad_h - s.kh + 1, s.w + 2 * s.pad_w - s.kw + 1, s.h, s.w, s.kh, s.kw, s.pad_h, s.pad_w,
               s.out_h, s.out_w);
  const int64_t ph = s.h + 2 * s.pad_h;
  const Plane pl{s.w + 2 * s.pad_w, s.out_h * (s.w + 2 * s.pad_w)};
  // Every block reads up to (kh - 1) * pw + kw - 1 positions past its last wide position.
  const int64_t plane_size = std::max(ph * pl.pw, pl.blocks() * kBlock + (s.kh - 1) * pl.pw + s.kw - 1);
  const std::vector<VecStore> stores = vector_stores(s, pl);
  const int64_t taps = s.kh * s.kw, in_image = s.h * s.w, out_image = s.c_out * s.out_plane();
  parallel_for(0, s.n, kImagesPerChunk, [&](int64_t first, int64_t last) {
    std::vector<float> plane(static_cast<std::size_t>(plane_size), 0.0f);
    for (int64_t i = first; i < last; ++i) {
      const float* xi = x + i * in_image;
      for (int64_t r = 0; r < s.h; ++r)
        std::memcpy(plane.data() + (r + s.pad_h) * pl.pw + s.pad_w, xi + r * s.w, s.w * sizeof(float));
      float* yi = y + i * out_image;
      for (int64_t c0 = 0; c0 < s.c_out; c0 += kChannelBlock) {
        const int64_t cb = std::min<int64_t>(kChannelBlock, s.c_out - c0);
        const BlockKernel kernel = kKernels[cb - 1];
        for (int64_t b = 0; b < pl.blocks(); ++b)
          kernel(s, pl, plane.data(), b * kBlock, weight + c0 * taps, bias != nullptr ? bias + c0 : nullptr,
                 stores.data() + b * kBlockVectors, yi + c0 * s.out_plane());
      }
    }
  });
}

}  // namespace flexnn::cpu
