// Convolution as im2col + GEMM over groups of images: a group's column matrices sit side by side
// in one [c_in*kh*kw, images*out_plane] matrix, so each group is one wide GEMM, however small the
// images; a large image is cut into bands of output rows instead, so buffers stay bounded.
// Forward and input-gradient groups are independent (spread over the pool). Weight-gradient groups
// accumulate into the gradient in order, or for a small weight, into per-group partials computed
// in parallel and summed in order.
#include "kernels/cpu/conv2d.hpp"

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>

#include "kernels/cpu/gemm.hpp"
#include "kernels/cpu/parallel.hpp"

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

// Group sizing (see group_size): the GEMM width aimed at, and the cap on a group's buffers in
// floats (4 MiB: measured faster than larger groups, whose columns fall out of cache).
constexpr int64_t kGroupColumns = 2048;
constexpr int64_t kGroupFloats = int64_t{1} << 20;
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

// Writes output rows [row0, row1) of one image's column matrix: row (c, ki, kj), column
// (oh - row0, ow) holds x[c, oh * stride_h - pad_h + ki, ow * stride_w - pad_w + kj], zero outside
// the image. Rows are `ld` floats apart.
void im2col(const Conv2dShape& s, const float* x, int64_t row0, int64_t row1, float* cols, int64_t ld) {
  const int64_t ow_count = s.out_w;
  for (int64_t c = 0; c < s.c_in; ++c) {
    const float* xc = x + c * s.h * s.w;
    for (int64_t ki = 0; ki < s.kh; ++ki) {
      const TapSpan rows = tap_span(s.out_h, s.h, s.stride_h, s.pad_h, ki);
      const int64_t valid0 = std::clamp(rows.begin, row0, row1), valid1 = std::clamp(rows.end, valid0, row1);
      for (int64_t kj = 0; kj < s.kw; ++kj) {
        const TapSpan cs = tap_span(ow_count, s.w, s.stride_w, s.pad_w, kj);
        const int64_t shift = kj - s.pad_w;
        float* row = cols + ((c * s.kh + ki) * s.kw + kj) * ld;
        std::fill(row, row + (valid0 - row0) * ow_count, 0.0f);
        for (int64_t oh = valid0; oh < valid1; ++oh) {
          const float* in = xc + (oh * s.stride_h - s.pad_h + ki) * s.w;
          float* out = row + (oh - row0) * ow_count;
          std::fill(out, out + cs.begin, 0.0f);
          if (s.stride_w == 1) {  // rows are short: a plain loop beats a memcpy call
            for (int64_t ow = cs.begin; ow < cs.end; ++ow) out[ow] = in[ow + shift];
          } else {
            for (int64_t ow = cs.begin; ow < cs.end; ++ow) out[ow] = in[ow * s.stride_w + shift];
          }
          std::fill(out + cs.end, out + ow_count, 0.0f);
        }
        std::fill(row + (valid1 - row0) * ow_count, row + (row1 - row0) * ow_count, 0.0f);
      }
    }
  }
}

// The adjoint of im2col: adds each entry of output rows [row0, row1) of a column matrix (rows
// `ld` floats apart) to the input position it was read from.
void col2im(const Conv2dShape& s, const float* cols, int64_t ld, int64_t row0, int64_t row1, float* dx) {
  const int64_t ow_count = s.out_w;
  for (int64_t c = 0; c < s.c_in; ++c) {
    float* dxc = dx + c * s.h * s.w;
    for (int64_t ki = 0; ki < s.kh; ++ki) {
      const TapSpan rows = tap_span(s.out_h, s.h, s.stride_h, s.pad_h, ki);
      const int64_t valid0 = std::clamp(rows.begin, row0, row1), valid1 = std::clamp(rows.end, valid0, row1);
      for (int64_t kj = 0; kj < s.kw; ++kj) {
        const TapSpan cs = tap_span(ow_count, s.w, s.stride_w, s.pad_w, kj);
        const int64_t shift = kj - s.pad_w;
        const float* row = cols + ((c * s.kh + ki) * s.kw + kj) * ld;
        for (int64_t oh = valid0; oh < valid1; ++oh) {
          float* out = dxc + (oh * s.stride_h - s.pad_h + ki) * s.w;
          const float* in = row + (oh - row0) * ow_count;
          if (s.stride_w == 1) {
            for (int64_t ow = cs.begin; ow < cs.end; ++ow) out[ow + shift] += in[ow];
          } else {
            for (int64_t ow = cs.begin; ow < cs.end; ++ow) out[ow * s.stride_w + shift] += in[ow];
          }
        }
      }
    }
  }
}

// Images per group: enough that the group's GEMM is kGroupColumns wide (small images then share
// one GEMM instead of each repacking the weight), no more than fit kGroupFloats of buffers, and
// chosen from the shape alone so that results never depend on the thread count.
int64_t group_size(const Conv2dShape& s) {
  const int64_t plane = s.out_plane();
  const int64_t wanted = (kGroupColumns + plane - 1) / plane;
  const int64_t affordable = kGroupFloats / ((s.col_rows() + s.c_out) * plane);
  return std::clamp(std::min(wanted, affordable), int64_t{1}, std::max<int64_t>(s.n, 1));
}

// Calls body(first, count) for the groups of images [first, first + count): groups spread over the
// pool when there are enough to occupy it, otherwise one after another so that the work inside
// each uses the pool. Each group's result is the same either way.
void for_each_group(int64_t n, int64_t group, const std::function<void(int64_t, int64_t)>& body) {
  const int64_t groups = (n + group - 1) / group;
  auto run = [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) body(g * group, std::min(group, n - g * group));
  };
  if (groups >= num_threads()) {
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
  const int64_t k = s.col_rows(), plane = s.out_plane(), out_image = s.c_out * plane;
  for_each_group(s.n, group_size(s), [&](int64_t first, int64_t count) {
    for_each_tile(s, first, count, [&](const Tile& t) {
      // out [c_out, columns] = weight [c_out, k] x cols [k, columns]; a lone image's output is
      // computed in place in y, a group's in the buffer and then moved to y.
      const int64_t columns = t.columns(s), width = t.image_columns(s);
      float* buffer = scratch.get((k + s.c_out) * columns);
      const Operand cols = tile_columns(s, x, t, buffer);
      float* out = t.count == 1 ? y + t.first * out_image + t.row0 * s.out_w : buffer + k * columns;
      const int64_t ld_out = t.count == 1 ? plane : columns;
      gemm(false, false, s.c_out, columns, k, 1.0f, weight, k, cols.data, cols.ld, 0.0f, out, ld_out);
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
  const int64_t k = s.col_rows(), plane = s.out_plane(), in_image = s.c_in * s.h * s.w;
  for_each_group(s.n, group_size(s), [&](int64_t first, int64_t count) {
    if (s.pointwise() && count == 1) {  // dx = weight^T x dy, in place
      const Tile t{first, 1, 0, s.out_h};
      const Operand grad = tile_gradient(s, dy, t, nullptr);
      gemm(true, false, k, plane, s.c_out, 1.0f, weight, k, grad.data, grad.ld, 0.0f, dx + first * in_image, plane);
      return;
    }
    std::fill(dx + first * in_image, dx + (first + count) * in_image, 0.0f);
    for_each_tile(s, first, count, [&](const Tile& t) {
      // cols [k, columns] = weight^T [k, c_out] x dy_tile [c_out, columns], then col2im image by image.
      const int64_t columns = t.columns(s), width = t.image_columns(s);
      float* buffer = scratch.get((k + s.c_out) * columns);
      const Operand grad = tile_gradient(s, dy, t, buffer + k * columns);
      gemm(true, false, k, columns, s.c_out, 1.0f, weight, k, grad.data, grad.ld, 0.0f, buffer, columns);
      for_each_in_tile(
          t, [&](int64_t g) { col2im(s, buffer + g * width, columns, t.row0, t.row1, dx + (t.first + g) * in_image); });
    });
  });
}

void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dweight) {
  const int64_t k = s.col_rows(), weight_size = s.c_out * k;
  if (s.n == 0) {
    std::fill(dweight, dweight + weight_size, 0.0f);
    return;
  }
  const int64_t group = group_size(s), groups = (s.n + group - 1) / group;
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
