// Convolution as im2col + GEMM over groups of images: a group's column matrices sit side by side
// in one [c_in*kh*kw, images*out_plane] matrix, so each group is one wide GEMM, however small the
// images. Forward and input-gradient groups are independent (spread over the pool); weight-gradient
// groups accumulate into the weight gradient one after another, in order.
#include "kernels/cpu/conv2d.hpp"

#include "kernels/cpu/gemm.hpp"
#include "kernels/cpu/parallel.hpp"

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>

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

thread_local Scratch scratch;  // a group's column matrix and its regrouped output or gradient

// Group sizing (see group_size): the GEMM width aimed at in the forward and input gradient, the
// longer reduction aimed at in the weight gradient, and the cap on a group's buffers, in floats.
constexpr int64_t kGemmColumns = 2048;
constexpr int64_t kWeightGradColumns = 8192;
constexpr int64_t kGroupFloats = int64_t{1} << 22;

// The output positions o in [0, out) whose input position o * stride - pad + k lies in [0, extent).
struct Span {
  int64_t begin, end;
};

Span valid_span(int64_t out, int64_t extent, int64_t stride, int64_t pad, int64_t k) {
  const int64_t first_input = k - pad;  // input position of output 0
  const int64_t begin = first_input >= 0 ? 0 : (-first_input + stride - 1) / stride;
  const int64_t end = first_input >= extent ? 0 : (extent - 1 - first_input) / stride + 1;
  const int64_t b = std::min(begin, out);
  return {b, std::clamp(end, b, out)};
}

// Writes the column matrix of one image: row (c, ki, kj), column (oh, ow) holds
// x[c, oh * stride_h - pad_h + ki, ow * stride_w - pad_w + kj], zero outside the image.
// Rows are `ld` floats apart.
void im2col(const Conv2dShape& s, const float* x, float* cols, int64_t ld) {
  const int64_t ow_count = s.out_w, plane = s.out_plane();
  for (int64_t c = 0; c < s.c_in; ++c) {
    const float* xc = x + c * s.h * s.w;
    for (int64_t ki = 0; ki < s.kh; ++ki) {
      const Span rows = valid_span(s.out_h, s.h, s.stride_h, s.pad_h, ki);
      for (int64_t kj = 0; kj < s.kw; ++kj) {
        const Span cs = valid_span(ow_count, s.w, s.stride_w, s.pad_w, kj);
        float* row = cols + ((c * s.kh + ki) * s.kw + kj) * ld;
        std::fill(row, row + rows.begin * ow_count, 0.0f);
        for (int64_t oh = rows.begin; oh < rows.end; ++oh) {
          const float* in = xc + (oh * s.stride_h - s.pad_h + ki) * s.w;
          float* out = row + oh * ow_count;
          std::fill(out, out + cs.begin, 0.0f);
          if (s.stride_w == 1) {
            std::memcpy(out + cs.begin, in + cs.begin + kj - s.pad_w, (cs.end - cs.begin) * sizeof(float));
          } else {
            for (int64_t ow = cs.begin; ow < cs.end; ++ow) out[ow] = in[ow * s.stride_w + kj - s.pad_w];
          }
          std::fill(out + cs.end, out + ow_count, 0.0f);
        }
        std::fill(row + rows.end * ow_count, row + plane, 0.0f);
      }
    }
  }
}

// The adjoint of im2col: sums each column-matrix entry (rows `ld` floats apart) into the input
// position it was read from; overwrites dx.
void col2im(const Conv2dShape& s, const float* cols, int64_t ld, float* dx) {
  const int64_t ow_count = s.out_w;
  std::fill(dx, dx + s.c_in * s.h * s.w, 0.0f);
  for (int64_t c = 0; c < s.c_in; ++c) {
    float* dxc = dx + c * s.h * s.w;
    for (int64_t ki = 0; ki < s.kh; ++ki) {
      const Span rows = valid_span(s.out_h, s.h, s.stride_h, s.pad_h, ki);
      for (int64_t kj = 0; kj < s.kw; ++kj) {
        const Span cs = valid_span(ow_count, s.w, s.stride_w, s.pad_w, kj);
        const float* row = cols + ((c * s.kh + ki) * s.kw + kj) * ld;
        for (int64_t oh = rows.begin; oh < rows.end; ++oh) {
          float* out = dxc + (oh * s.stride_h - s.pad_h + ki) * s.w;
          const float* in = row + oh * ow_count;
          const int64_t shift = kj - s.pad_w;
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

// Images per group: enough of them that the group's GEMM is `target_columns` wide (its column
// blocks then stay wide enough to be efficient), no more than fit kGroupFloats of buffers, and
// chosen from the shape alone so that results never depend on the thread count.
int64_t group_size(const Conv2dShape& s, int64_t target_columns) {
  const int64_t plane = s.out_plane();
  const int64_t wanted = (target_columns + plane - 1) / plane;
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

// Calls body(g) for the images of a group, spread over the pool unless already inside a chunk.
void for_each_in_group(int64_t count, const std::function<void(int64_t)>& body) {
  parallel_for(0, count, 1, [&](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) body(g);
  });
}

// Copies one image's [channels, plane] block into columns [0, plane) of a [channels, ld] matrix.
void gather_image(const float* image, int64_t channels, int64_t plane, float* dst, int64_t ld) {
  for (int64_t c = 0; c < channels; ++c) std::memcpy(dst + c * ld, image + c * plane, plane * sizeof(float));
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
  const int64_t k = s.col_rows(), plane = s.out_plane();
  const int64_t in_image = s.c_in * s.h * s.w, out_image = s.c_out * plane;
  for_each_group(s.n, group_size(s, kGemmColumns), [&](int64_t first, int64_t count) {
    // out [c_out, ld] = weight [c_out, k] x cols [k, ld]; image g owns columns [g * plane, (g + 1) * plane).
    // A lone image computes straight into y (and a pointwise one reads straight from x).
    const int64_t ld = count * plane;
    float* buffer = scratch.get((k + s.c_out) * ld);
    const float* cols = buffer;
    if (s.pointwise() && count == 1) {
      cols = x + first * in_image;
    } else {
      for_each_in_group(count, [&](int64_t g) { im2col(s, x + (first + g) * in_image, buffer + g * plane, ld); });
    }
    float* out = count == 1 ? y + first * out_image : buffer + k * ld;
    gemm(false, false, s.c_out, ld, k, 1.0f, weight, k, cols, ld, 0.0f, out, ld);
    if (count == 1 && bias == nullptr) return;
    for_each_in_group(count, [&](int64_t g) {
      for (int64_t co = 0; co < s.c_out; ++co) {
        const float* src = out + co * ld + g * plane;
        float* dst = y + (first + g) * out_image + co * plane;
        const float b = bias != nullptr ? bias[co] : 0.0f;
        for (int64_t p = 0; p < plane; ++p) dst[p] = src[p] + b;
      }
    });
  });
}

void conv2d_backward_input(const Conv2dShape& s, const float* dy, const float* weight, float* dx) {
  const int64_t k = s.col_rows(), plane = s.out_plane();
  const int64_t in_image = s.c_in * s.h * s.w, out_image = s.c_out * plane;
  for_each_group(s.n, group_size(s, kGemmColumns), [&](int64_t first, int64_t count) {
    // cols [k, ld] = weight^T [k, c_out] x dy_group [c_out, ld], then col2im image by image.
    // A lone image reads dy in place (and a pointwise one writes straight into dx).
    const int64_t ld = count * plane;
    float* buffer = scratch.get((k + s.c_out) * ld);
    const float* dy_group = dy + first * out_image;
    if (count > 1) {
      float* gathered = buffer + k * ld;
      for_each_in_group(count, [&](int64_t g) {
        gather_image(dy + (first + g) * out_image, s.c_out, plane, gathered + g * plane, ld);
      });
      dy_group = gathered;
    }
    if (s.pointwise() && count == 1) {
      gemm(true, false, k, plane, s.c_out, 1.0f, weight, k, dy_group, plane, 0.0f, dx + first * in_image, plane);
      return;
    }
    gemm(true, false, k, ld, s.c_out, 1.0f, weight, k, dy_group, ld, 0.0f, buffer, ld);
    for_each_in_group(count, [&](int64_t g) { col2im(s, buffer + g * plane, ld, dx + (first + g) * in_image); });
  });
}

void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dweight) {
  const int64_t k = s.col_rows(), plane = s.out_plane();
  const int64_t in_image = s.c_in * s.h * s.w, out_image = s.c_out * plane;
  if (s.n == 0) {
    std::fill(dweight, dweight + s.c_out * k, 0.0f);
    return;
  }
  // Groups in order, each one GEMM: dweight (+)= dy_group [c_out, ld] x cols [k, ld]^T.
  const int64_t group = group_size(s, kWeightGradColumns);
  float* cols = scratch.get((k + s.c_out) * group * plane);
  float* dy_group = cols + k * group * plane;
  for (int64_t first = 0; first < s.n; first += group) {
    const int64_t count = std::min(group, s.n - first);
    const int64_t ld = count * plane;
    for_each_in_group(count, [&](int64_t g) {
      im2col(s, x + (first + g) * in_image, cols + g * plane, ld);
      gather_image(dy + (first + g) * out_image, s.c_out, plane, dy_group + g * plane, ld);
    });
    gemm(false, true, s.c_out, k, ld, 1.0f, dy_group, ld, cols, ld, first == 0 ? 0.0f : 1.0f, dweight, k);
  }
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
