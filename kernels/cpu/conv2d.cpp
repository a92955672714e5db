// Convolution as im2col + GEMM over groups of images: a group's column matrices sit side by side
// in one [c_in*kh*kw, images*out_plane] matrix, so each group is one wide GEMM, however small the
// images; a large image is cut into bands of output rows instead, so buffers stay bounded.
// Forward and input-gradient groups are independent and share the weight, packed once per call
// for the GEMM (cpu::PackedA), read-only by every thread. im2col and col2im go through one
// channel's zero-padded band at a time, so no tap needs bounds checks. Weight-gradient groups
// accumulate into the gradient in order, or for a small weight, into per-group partials computed
// in parallel and summed in order. Small padded planes with many input channels (where im2col
// would multiply much zero padding) go tap by tap instead: for each kernel tap, one GEMM of the
// tap's weight slice with the input read at only the positions that tap sees inside the image.
// Deep 3x3 stride-1 convolutions go through Winograd (kernels/cpu/winograd.hpp) instead, forward
// and both gradients, where it needs clearly fewer products (see winograd_tile).
#include "kernels/cpu/conv2d.hpp"

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "kernels/cpu/conv2d_direct.hpp"
#include "kernels/cpu/gemm.hpp"
#include "kernels/cpu/parallel.hpp"
#include "kernels/cpu/winograd.hpp"

namespace flexnn::cpu {
namespace {

// A growable buffer of uninitialised floats, kept between calls.
class Scratch {
 public:
  float* get(int64_t size) {
    if (size > capacity_) {
      data_ = std::make_unique_for_overwrite<float[]>(static_cast<std::size_t>(size));
      capacity_ = size;
    }
    return data_.get();
  }

 private:
  std::unique_ptr<float[]> data_;
  int64_t capacity_ = 0;
};

thread_local Scratch scratch;          // a group's column matrix and its regrouped output or gradient
thread_local Scratch partial_scratch;  // per-group partial weight gradients (small weights)
thread_local PackedA packed_weight;    // the weight (or its transpose), packed once per call for every group

// Group sizing (see group_size): the GEMM width aimed at, and the cap on a group's buffers in
// floats (4 MiB: measured faster than larger groups, whose columns fall out of cache). Weight
// gradient groups may be four times larger (measured): each group's GEMM reads and writes the
// whole gradient, so fewer, deeper groups save passes over it.
constexpr int64_t kGroupColumns = 2048;
constexpr int64_t kGroupFloats = int64_t{1} << 20;
constexpr int64_t kWeightGradGroupFloats = 4 * kGroupFloats;
// Forward and input-gradient groups run in parallel (each with a serial GEMM) from this many
// groups on; fewer run one after another, each GEMM spread over the pool, which balances better.
constexpr int64_t kParallelGroups = 8;
// Weight gradients up to this many floats are summed from per-group partials computed in parallel.
constexpr int64_t kSmallWeight = int64_t{1} << 14;

// A GEMM's worth of work: output rows [row0, row1) of images [first, first + count). Several
// small images form one tile of all their rows; a large image is cut into bands of rows.
struct Tile {
  int64_t first, count, row0, row1;
  int64_t image_columns(const Conv2dShape& s) const { return (row1 - row0) * s.out_w; }
  int64_t columns(const Conv2dShape& s) const { return count * image_columns(s); }
};

// A matrix operand: its data and row stride.
struct Operand {
  const float* data;
  int64_t ld;
};

// The input rows and columns that output rows [row0, row1) read, as a zero-padded band: band
// row r is input row row0 * stride_h - pad_h + r, band column q input column q - pad_w, so that
// every tap of the window reads the band without bounds checks (small images are mostly border).
struct Band {
  int64_t rows, cols, top;  // top: the input row of band row 0
  Band(const Conv2dShape& s, int64_t row0, int64_t row1)
      : rows((row1 - 1 - row0) * s.stride_h + s.kh), cols((s.out_w - 1) * s.stride_w + s.kw),
        top(row0 * s.stride_h - s.pad_h) {}
  // The band's columns that hold input: [first, last).
  int64_t first(const Conv2dShape& s) const { return std::min(s.pad_w, cols); }
  int64_t last(const Conv2dShape& s) const { return std::clamp(s.w + s.pad_w, first(s), cols); }
  // The band's rows that hold input: [begin, end).
  int64_t begin() const { return std::clamp(-top, int64_t{0}, rows); }
  int64_t end(const Conv2dShape& s) const { return std::clamp(s.h - top, begin(), rows); }
};

thread_local Scratch band_scratch;  // one channel's padded band (im2col and col2im)

// Calls tap(offset, t, column) for every tap t = ki * kw + kj and output row row0 + r of the
// band: that row's out_w entries of tap t read band[offset + ow * stride_w] and sit in the tap's
// column matrix row from `column` on.
template <typename Tap>
void for_each_tap(const Conv2dShape& s, const Band& band, int64_t rows, Tap&& tap) {
  for (int64_t ki = 0; ki < s.kh; ++ki)
    for (int64_t kj = 0; kj < s.kw; ++kj)
      for (int64_t r = 0; r < rows; ++r) tap((r * s.stride_h + ki) * band.cols + kj, ki * s.kw + kj, r * s.out_w);
}

// Writes output rows [row0, row1) of one image's column matrix: row (c, ki, kj), column
// (oh - row0, ow) holds x[c, oh * stride_h - pad_h + ki, ow * stride_w - pad_w + kj], zero outside
// the image. Rows are `ld` floats apart.
void im2col(const Conv2dShape& s, const float* x, int64_t row0, int64_t row1, float* cols, int64_t ld) {
  const Band band(s, row0, row1);
  const int64_t first = band.first(s), last = band.last(s), taps = s.kh * s.kw;
  float* padded = band_scratch.get(band.rows * band.cols);
  std::fill(padded, padded + band.rows * band.cols, 0.0f);
  for (int64_t c = 0; c < s.c_in; ++c) {
    const float* xc = x + c * s.h * s.w;
    for (int64_t r = band.begin(); r < band.end(s); ++r)
      std::copy(xc + (band.top + r) * s.w + first - s.pad_w, xc + (band.top + r) * s.w + last - s.pad_w,
                padded + r * band.cols + first);
    float* cols_c = cols + c * taps * ld;
    for_each_tap(s, band, row1 - row0, [&](int64_t offset, int64_t t, int64_t column) {
      const float* in = padded + offset;
      float* out = cols_c + t * ld + column;
      if (s.stride_w == 1) {  // rows are short: a plain loop beats a memcpy call
        for (int64_t ow = 0; ow < s.out_w; ++ow) out[ow] = in[ow];
      } else {
        for (int64_t ow = 0; ow < s.out_w; ++ow) out[ow] = in[ow * s.stride_w];
      }
    });
  }
}

// The adjoint of im2col: adds each entry of output rows [row0, row1) of a column matrix (rows
// `ld` floats apart) to the input position it was read from (summed in the padded band first).
void col2im(const Conv2dShape& s, const float* cols, int64_t ld, int64_t row0, int64_t row1, float* dx) {
  const Band band(s, row0, row1);
  const int64_t first = band.first(s), last = band.last(s), taps = s.kh * s.kw;
  float* padded = band_scratch.get(band.rows * band.cols);
  for (int64_t c = 0; c < s.c_in; ++c) {
    std::fill(padded, padded + band.rows * band.cols, 0.0f);
    const float* cols_c = cols + c * taps * ld;
    for_each_tap(s, band, row1 - row0, [&](int64_t offset, int64_t t, int64_t column) {
      float* out = padded + offset;
      const float* in = cols_c + t * ld + column;
      if (s.stride_w == 1) {
        for (int64_t ow = 0; ow < s.out_w; ++ow) out[ow] += in[ow];
      } else {
        for (int64_t ow = 0; ow < s.out_w; ++ow) out[ow * s.stride_w] += in[ow];
      }
    });
    float* dxc = dx + c * s.h * s.w;
    for (int64_t r = band.begin(); r < band.end(s); ++r) {
      float* out = dxc + (band.top + r) * s.w - s.pad_w;
      for (int64_t q = first; q < last; ++q) out[q] += padded[r * band.cols + q];
    }
  }
}

// Images per group: enough that the group's GEMM is kGroupColumns wide, no more than fit `floats`
// of buffers, and chosen from the shape alone so that results never depend on the thread count.
int64_t group_size(const Conv2dShape& s, int64_t floats = kGroupFloats) {
  const int64_t plane = s.out_plane();
  const int64_t wanted = (kGroupColumns + plane - 1) / plane;
  const int64_t affordable = floats / ((s.col_rows() + s.c_out) * plane);
  return std::clamp(std::min(wanted, affordable), int64_t{1}, std::max<int64_t>(s.n, 1));
}

// Calls body(first, count) for the groups of images [first, first + count): groups spread over the
// pool when there are at least kParallelGroups, otherwise one after another so that the work
// inside each uses the pool. Each group's result is the same either way.
void for_each_group(int64_t n, int64_t group, const std::function<void(int64_t, int64_t)>& body) {
  const int64_t groups = (n + group - 1) / group;
  auto run = [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) body(g * group, std::min(group, n - g * group));
  };
  if (groups >= kParallelGroups) {
    parallel_for(0, groups, 1, run);
  } else {
    run(0, groups);
  }
}

// Calls body(tile) for the tiles of a group, in order: the whole group, or for a lone image whose
// buffers would pass kGroupFloats, bands of its output rows.
void for_each_tile(const Conv2dShape& s, int64_t first, int64_t count, const std::function<void(const Tile&)>& body) {
  if (count > 1) {
    body(Tile{first, count, 0, s.out_h});
    return;
  }
  const int64_t band = std::clamp(kGroupFloats / ((s.col_rows() + s.c_out) * s.out_w), int64_t{1}, s.out_h);
  for (int64_t r0 = 0; r0 < s.out_h; r0 += band) body(Tile{first, 1, r0, std::min(r0 + band, s.out_h)});
}

// Calls body(g) for the images of a tile, spread over the pool unless already inside a chunk.
void for_each_in_tile(const Tile& t, const std::function<void(int64_t)>& body) {
  parallel_for(0, t.count, 1, [&](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) body(g);
  });
}

// A tile's column matrix [k, columns]: read in place from x for a lone pointwise image, otherwise
// built by im2col in `buffer`.
Operand tile_columns(const Conv2dShape& s, const float* x, const Tile& t, float* buffer) {
  const int64_t in_image = s.c_in * s.h * s.w;
  if (s.pointwise() && t.count == 1) return {x + t.first * in_image + t.row0 * s.out_w, s.out_plane()};
  const int64_t ld = t.columns(s), width = t.image_columns(s);
  for_each_in_tile(t,
                   [&](int64_t g) { im2col(s, x + (t.first + g) * in_image, t.row0, t.row1, buffer + g * width, ld); });
  return {buffer, ld};
}

// A tile's output gradient as a matrix [c_out, columns]: read in place for a lone image,
// otherwise gathered image by image into `buffer`.
Operand tile_gradient(const Conv2dShape& s, const float* dy, const Tile& t, float* buffer) {
  const int64_t plane = s.out_plane(), out_image = s.c_out * plane;
  if (t.count == 1) return {dy + t.first * out_image + t.row0 * s.out_w, plane};
  const int64_t ld = t.columns(s);
  for_each_in_tile(t, [&](int64_t g) {
    for (int64_t co = 0; co < s.c_out; ++co)
      std::memcpy(buffer + co * ld + g * plane, dy + (t.first + g) * out_image + co * plane, plane * sizeof(float));
  });
  return {buffer, ld};
}

// The weight gradient of images [first, first + count), tile by tile:
// out = beta * out + dy_tile [c_out, columns] x cols_tile [k, columns]^T.
void weight_grad_group(const Conv2dShape& s, const float* x, const float* dy, int64_t first, int64_t count, float beta,
                       float* out) {
  const int64_t k = s.col_rows();
  for_each_tile(s, first, count, [&](const Tile& t) {
    const int64_t columns = t.columns(s);
    float* buffer = scratch.get((k + s.c_out) * columns);
    const Operand cols = tile_columns(s, x, t, buffer);
    const Operand grad = tile_gradient(s, dy, t, buffer + k * columns);
    gemm(false, true, s.c_out, k, columns, 1.0f, grad.data, grad.ld, cols.data, cols.ld, t.row0 == 0 ? beta : 1.0f, out,
         k);
  });
}

// Per-tap convolution: the forward pass and input gradient of shapes whose windows are much
// padding (see per_tap_pays), as one GEMM per kernel tap over the output positions that read
// inside the image. Each output sums its taps in tap order, so results depend on the shape only.

// The path is taken when fewer than this fraction of the window taps read inside the image, with
// at least this many input channels. Measured with 3x3 pad 1: faster on a 3x3 plane (0.60 of the
// taps real) and a 7x7 one (0.907), no faster on 15x15 (0.913).
constexpr double kPerTapMaxRealFraction = 0.91;
constexpr int64_t kPerTapMinChannels = 64;

// The output positions [r.begin, r.end) x [c.begin, c.end) of a tap that read inside the image.
struct TapRect {
  TapSpan r, c;
  int64_t cols() const { return c.end - c.begin; }
  int64_t size() const { return (r.end - r.begin) * cols(); }
};

TapRect tap_rect(const Conv2dShape& s, int64_t ki, int64_t kj) {
  return {tap_span(s.out_h, s.h, s.stride_h, s.pad_h, ki), tap_span(s.out_w, s.w, s.stride_w, s.pad_w, kj)};
}

// The (output position, tap) pairs that read inside the image.
int64_t real_taps(const Conv2dShape& s) {
  int64_t real = 0;
  for (int64_t ki = 0; ki < s.kh; ++ki)
    for (int64_t kj = 0; kj < s.kw; ++kj) real += tap_rect(s, ki, kj).size();
  return real;
}

bool per_tap_pays(const Conv2dShape& s) {
  if (s.c_in < kPerTapMinChannels || s.pointwise() || s.out_plane() == 0) return false;
  return static_cast<double>(real_taps(s)) <
         kPerTapMaxRealFraction * static_cast<double>(s.kh * s.kw * s.out_plane());
}

// Winograd (kernels/cpu/winograd.hpp) serves 3x3 stride-1 convolutions with at least this many
// input and output channels (its transforms cost about as much per channel as a GEMM step with
// few channels), when its transform-domain products per channel pair are at most this fraction of
// the direct path's (im2col's every tap, or per-tap's real taps). Measured at batch 100, 2 threads
// (VGG16's shapes), forward / input gradient / weight gradient against the direct path: 30x30
// planes 1.9-2.4x / 1.6-2.1x / 1.9-2.4x (F(4x4)), 15x15 2.7-3.2x / 2.4-2.6x / 2.3-2.7x, 7x7
// 2.3x / 2.1x / 2.5x, 3x3 1.5x / 1.3x / 2.3x (F(3x3): 25 products against 49 real taps); 64
// channels at 32x32 unpadded 1.8x / 1.5x / 1.9x. (Measured before Winograd's tiled path, which
// makes the forward pass and input gradient of the 32x32, 30x30 and 15x15 planes another
// 1.3-1.9x faster.)
constexpr int64_t kWinogradMinChannels = 64;
constexpr double kWinogradMaxCostFraction = 0.75;

// The Winograd output tile m (3 or 4, whichever needs fewer products to cover an out_h x out_w
// plane: s's output for the forward pass and weight gradient, s's input for the input gradient),
// or 0 where the direct path is faster.
int winograd_tile(const Conv2dShape& s, int64_t out_h, int64_t out_w) {
  if (!winograd_fits(s) || std::min(s.c_in, s.c_out) < kWinogradMinChannels || s.out_plane() == 0) return 0;
  auto products = [&](int64_t m) { return ((out_h + m - 1) / m) * ((out_w + m - 1) / m) * (m + 2) * (m + 2); };
  const int m = products(3) < products(4) ? 3 : 4;
  const int64_t direct = per_tap_pays(s) ? real_taps(s) : s.kh * s.kw * s.out_plane();
  return static_cast<double>(products(m)) <= kWinogradMaxCostFraction * static_cast<double>(direct) ? m : 0;
}

// Where a tap's positions lie in a plane: position (oh, ow) of the rect sits at
// start + (oh - r.begin) * row_step + (ow - c.begin) * col_step.
struct TapPlace {
  int64_t start, row_step, col_step;
};

// In the input plane (the pixels the tap reads) and in the output plane.
TapPlace input_place(const Conv2dShape& s, const TapRect& t, int64_t ki, int64_t kj) {
  return {(t.r.begin * s.stride_h - s.pad_h + ki) * s.w + t.c.begin * s.stride_w - s.pad_w + kj, s.stride_h * s.w,
          s.stride_w};
}
TapPlace output_place(const Conv2dShape& s, const TapRect& t) {
  return {t.r.begin * s.out_w + t.c.begin, s.out_w, 1};
}

// Planes of `count` images, `channels` each, laid out `image` and `plane` floats apart.
struct Planes {
  int64_t count, channels, image, plane;
};

// dst[c, g * size + position] = src plane (g, c) at the tap's positions; dst rows are ld apart.
void gather_tap(const float* src, const Planes& p, const TapRect& t, const TapPlace& at, float* dst, int64_t ld) {
  const int64_t rows = t.r.end - t.r.begin, cols = t.cols(), size = t.size();
  parallel_for(0, p.count, 1, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g)
      for (int64_t c = 0; c < p.channels; ++c) {
        const float* in = src + g * p.image + c * p.plane + at.start;
        float* out = dst + c * ld + g * size;
        for (int64_t i = 0; i < rows; ++i, out += cols)
          for (int64_t j = 0; j < cols; ++j) out[j] = in[i * at.row_step + j * at.col_step];
      }
  });
}

// The adjoint of gather_tap: adds src[c, g * size + position] into plane (g, c) at the tap's positions.
void scatter_add_tap(const float* src, int64_t ld, const TapRect& t, const TapPlace& at, const Planes& p, float* dst) {
  const int64_t rows = t.r.end - t.r.begin, cols = t.cols(), size = t.size();
  parallel_for(0, p.count, 1, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g)
      for (int64_t c = 0; c < p.channels; ++c) {
        const float* in = src + c * ld + g * size;
        float* out = dst + g * p.image + c * p.plane + at.start;
        for (int64_t i = 0; i < rows; ++i, in += cols)
          for (int64_t j = 0; j < cols; ++j) out[i * at.row_step + j * at.col_step] += in[j];
      }
  });
}

thread_local std::vector<PackedA> packed_taps;  // each tap's weight slice, packed once per call
thread_local Scratch tap_weight_scratch;        // the slices, contiguous [c_out, c_in] each

// Packs each tap's weight slice weight[:, :, ki, kj] (transposed for the input gradient).
const std::vector<PackedA>& pack_taps(const Conv2dShape& s, const float* weight, bool trans) {
  const int64_t taps = s.kh * s.kw, slice = s.c_out * s.c_in;
  float* slices = tap_weight_scratch.get(taps * slice);
  for (int64_t t = 0; t < taps; ++t)
    for (int64_t e = 0; e < slice; ++e) slices[t * slice + e] = weight[e * taps + t];
  packed_taps.resize(static_cast<std::size_t>(taps));
  for (int64_t t = 0; t < taps; ++t) {
    if (trans) {
      packed_taps[t].pack(true, s.c_in, s.c_out, slices + t * slice, s.c_in);
    } else {
      packed_taps[t].pack(false, s.c_out, s.c_in, slices + t * slice, s.c_in);
    }
  }
  return packed_taps;
}

// Images per per-tap group: kGroupColumns output columns, within kGroupFloats of buffers (the
// gathered operand, the product and the group's output or gradient; measured no slower than
// four times larger groups).
int64_t per_tap_group_size(const Conv2dShape& s) {
  const int64_t plane = s.out_plane();
  const int64_t wanted = (kGroupColumns + plane - 1) / plane;
  const int64_t affordable = kGroupFloats / ((2 * s.c_in + 2 * s.c_out) * plane);
  return std::clamp(std::min(wanted, affordable), int64_t{1}, std::max<int64_t>(s.n, 1));
}

void per_tap_forward(const Conv2dShape& s, const float* x, const float* weight, const float* bias, float* y) {
  const int64_t plane = s.out_plane(), out_image = s.c_out * plane, in_plane = s.h * s.w;
  const std::vector<PackedA>& w = pack_taps(s, weight, false);
  for_each_group(s.n, per_tap_group_size(s), [&](int64_t first, int64_t count) {
    // out [c_out, count * plane] sums the taps' products [c_out, count * size], each the tap's
    // weight [c_out, c_in] x the input at its positions [c_in, count * size].
    const int64_t columns = count * plane;
    float* out = scratch.get((2 * s.c_out + s.c_in) * columns);
    float* product = out + s.c_out * columns;
    float* gathered = product + s.c_out * columns;
    const Planes in{count, s.c_in, s.c_in * in_plane, in_plane}, outs{count, s.c_out, plane, columns};
    bool written = false;
    for (int64_t ki = 0; ki < s.kh; ++ki)
      for (int64_t kj = 0; kj < s.kw; ++kj) {
        const TapRect t = tap_rect(s, ki, kj);
        const int64_t ld = count * t.size();
        if (ld == 0) continue;
        gather_tap(x + first * in.image, in, t, input_place(s, t, ki, kj), gathered, ld);
        const PackedA& a = w[ki * s.kw + kj];
        if (t.size() == plane) {  // every position: accumulate in place
          gemm(a, false, ld, 1.0f, gathered, ld, written ? 1.0f : 0.0f, out, columns);
        } else {
          if (!written) std::fill(out, out + s.c_out * columns, 0.0f);
          gemm(a, false, ld, 1.0f, gathered, ld, 0.0f, product, ld);
          scatter_add_tap(product, ld, t, output_place(s, t), outs, out);
        }
        written = true;
      }
    if (!written) std::fill(out, out + s.c_out * columns, 0.0f);
    parallel_for(0, count, 1, [&](int64_t g0, int64_t g1) {
      for (int64_t g = g0; g < g1; ++g)
        for (int64_t co = 0; co < s.c_out; ++co) {
          const float* src = out + co * columns + g * plane;
          float* dst = y + (first + g) * out_image + co * plane;
          const float b = bias != nullptr ? bias[co] : 0.0f;
          for (int64_t p = 0; p < plane; ++p) dst[p] = src[p] + b;
        }
    });
  });
}

void per_tap_backward_input(const Conv2dShape& s, const float* dy, const float* weight, float* dx) {
  const int64_t plane = s.out_plane(), in_plane = s.h * s.w, in_image = s.c_in * in_plane;
  const std::vector<PackedA>& w_t = pack_taps(s, weight, true);
  for_each_group(s.n, per_tap_group_size(s), [&](int64_t first, int64_t count) {
    // Per tap: product [c_in, count * size] = weight^T [c_in, c_out] x dy at its positions
    // [c_out, count * size], added into dx where the tap read.
    const int64_t columns = count * plane;
    float* product = scratch.get((s.c_in + s.c_out) * columns);
    float* gathered = product + s.c_in * columns;
    const Planes grads{count, s.c_out, s.c_out * plane, plane}, ins{count, s.c_in, in_image, in_plane};
    float* dx_group = dx + first * in_image;
    std::fill(dx_group, dx_group + count * in_image, 0.0f);
    for (int64_t ki = 0; ki < s.kh; ++ki)
      for (int64_t kj = 0; kj < s.kw; ++kj) {
        const TapRect t = tap_rect(s, ki, kj);
        const int64_t ld = count * t.size();
        if (ld == 0) continue;
        gather_tap(dy + first * grads.image, grads, t, output_place(s, t), gathered, ld);
        gemm(w_t[ki * s.kw + kj], false, ld, 1.0f, gathered, ld, 0.0f, product, ld);
        scatter_add_tap(product, ld, t, input_place(s, t, ki, kj), ins, dx_group);
      }
  });
}

// Sum of a plane in eight fixed lanes (vectorisable, independent of threads), then in double.
double plane_sum(const float* p, int64_t size) {
  constexpr int64_t kLanes = 8;
  float lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= size; i += kLanes)
    for (int64_t j = 0; j < kLanes; ++j) lanes[j] += p[i + j];
  double total = 0;
  for (float lane : lanes) total += lane;
  for (; i < size; ++i) total += p[i];
  return total;
}

}  // namespace

void conv2d_forward(const Conv2dShape& s, const float* x, const float* weight, const float* bias, float* y) {
  if (conv2d_direct_pays(s)) {
    conv2d_direct_forward(s, x, weight, bias, y);
    return;
  }
  if (const int m = winograd_tile(s, s.out_h, s.out_w)) {
    winograd_forward(s, m, x, weight, bias, y);
    return;
  }
  if (per_tap_pays(s)) {
    per_tap_forward(s, x, weight, bias, y);
    return;
  }
  const int64_t k = s.col_rows(), plane = s.out_plane(), out_image = s.c_out * plane;
  const PackedA& w = packed_weight;
  packed_weight.pack(false, s.c_out, k, weight, k);
  for_each_group(s.n, group_size(s), [&](int64_t first, int64_t count) {
    for_each_tile(s, first, count, [&](const Tile& t) {
      // out [c_out, columns] = weight [c_out, k] x cols [k, columns]; a lone image's output is
      // computed in place in y, a group's in the buffer and then moved to y.
      const int64_t columns = t.columns(s), width = t.image_columns(s);
      float* buffer = scratch.get((k + s.c_out) * columns);
      const Operand cols = tile_columns(s, x, t, buffer);
      float* out = t.count == 1 ? y + t.first * out_image + t.row0 * s.out_w : buffer + k * columns;
      const int64_t ld_out = t.count == 1 ? plane : columns;
      gemm(w, false, columns, 1.0f, cols.data, cols.ld, 0.0f, out, ld_out);
      if (t.count == 1 && bias == nullptr) return;
      for_each_in_tile(t, [&](int64_t g) {
        for (int64_t co = 0; co < s.c_out; ++co) {
          const float* src = out + co * ld_out + g * width;
          float* dst = y + (t.first + g) * out_image + co * plane + t.row0 * s.out_w;
          const float b = bias != nullptr ? bias[co] : 0.0f;
          for (int64_t p = 0; p < width; ++p) dst[p] = src[p] + b;
        }
      });
    });
  });
}

void conv2d_backward_input(const Conv2dShape& s, const float* dy, const float* weight, float* dx) {
  if (const int m = winograd_tile(s, s.h, s.w)) {
    winograd_backward_input(s, m, dy, weight, dx);
    return;
  }
  if (per_tap_pays(s)) {
    per_tap_backward_input(s, dy, weight, dx);
    return;
  }
  const int64_t k = s.col_rows(), plane = s.out_plane(), in_image = s.c_in * s.h * s.w;
  const PackedA& w_t = packed_weight;
  packed_weight.pack(true, k, s.c_out, weight, k);
  for_each_group(s.n, group_size(s), [&](int64_t first, int64_t count) {
    if (s.pointwise() && count == 1) {  // dx = weight^T x dy, in place
      const Tile t{first, 1, 0, s.out_h};
      const Operand grad = tile_gradient(s, dy, t, nullptr);
      gemm(w_t, false, plane, 1.0f, grad.data, grad.ld, 0.0f, dx + first * in_image, plane);
      return;
    }
    std::fill(dx + first * in_image, dx + (first + count) * in_image, 0.0f);
    for_each_tile(s, first, count, [&](const Tile& t) {
      // cols [k, columns] = weight^T [k, c_out] x dy_tile [c_out, columns], then col2im image by image.
      const int64_t columns = t.columns(s), width = t.image_columns(s);
      float* buffer = scratch.get((k + s.c_out) * columns);
      const Operand grad = tile_gradient(s, dy, t, buffer + k * columns);
      gemm(w_t, false, columns, 1.0f, grad.data, grad.ld, 0.0f, buffer, columns);
      for_each_in_tile(
          t, [&](int64_t g) { col2im(s, buffer + g * width, columns, t.row0, t.row1, dx + (t.first + g) * in_image); });
    });
  });
}

void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dweight) {
  if (const int m = winograd_tile(s, s.out_h, s.out_w)) {
    winograd_backward_weight(s, m, x, dy, dweight);
    return;
  }
  const int64_t k = s.col_rows(), weight_size = s.c_out * k;
  if (s.n == 0) {
    std::fill(dweight, dweight + weight_size, 0.0f);
    return;
  }
  const int64_t group = group_size(s, kWeightGradGroupFloats), groups = (s.n + group - 1) / group;
  if (weight_size > kSmallWeight || groups == 1) {
    // Groups in order, each GEMM spread over the pool, accumulating into dweight.
    for (int64_t g = 0; g < groups; ++g)
      weight_grad_group(s, x, dy, g * group, std::min(group, s.n - g * group), g == 0 ? 0.0f : 1.0f, dweight);
    return;
  }
  // A small weight's GEMM cannot use the pool: groups run in parallel, each into its own partial
  // gradient, and the partials are summed in group order.
  float* partials = partial_scratch.get(groups * weight_size);
  parallel_for(0, groups, 1, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g)
      weight_grad_group(s, x, dy, g * group, std::min(group, s.n - g * group), 0.0f, partials + g * weight_size);
  });
  parallel_for(0, weight_size, 1024, [&](int64_t e0, int64_t e1) {
    for (int64_t e = e0; e < e1; ++e) {
      float total = partials[e];
      for (int64_t g = 1; g < groups; ++g) total += partials[g * weight_size + e];
      dweight[e] = total;
    }
  });
}

void conv2d_backward_bias(const Conv2dShape& s, const float* dy, float* dbias) {
  const int64_t plane = s.out_plane();
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(1, s.n * plane));
  parallel_for(0, s.c_out, grain, [&](int64_t begin, int64_t end) {
    for (int64_t co = begin; co < end; ++co) {
      double total = 0;
      for (int64_t i = 0; i < s.n; ++i) total += plane_sum(dy + (i * s.c_out + co) * plane, plane);
      dbias[co] = static_cast<float>(total);
    }
  });
}

}  // namespace flexnn::cpu
