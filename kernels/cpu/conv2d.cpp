// Convolution as im2col + GEMM. Forward and input gradient work image by image (one GEMM each,
// images spread over the pool); the weight gradient gathers fixed-size groups of images into one
// wide column matrix so that each group is a single large GEMM.
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

thread_local Scratch image_scratch;  // one image's column matrix
thread_local Scratch group_scratch;  // a group's column matrix and gradient, for the weight gradient

// Column matrix size of one weight-gradient group, in floats: large enough for wide GEMMs,
// small enough to stay a modest buffer.
constexpr int64_t kGroupColumnFloats = int64_t{1} << 22;

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

// The adjoint of im2col: sums each column-matrix entry into the input position it was read from.
void col2im(const Conv2dShape& s, const float* cols, float* dx) {
  const int64_t ow_count = s.out_w, plane = s.out_plane();
  std::fill(dx, dx + s.c_in * s.h * s.w, 0.0f);
  for (int64_t c = 0; c < s.c_in; ++c) {
    float* dxc = dx + c * s.h * s.w;
    for (int64_t ki = 0; ki < s.kh; ++ki) {
      const Span rows = valid_span(s.out_h, s.h, s.stride_h, s.pad_h, ki);
      for (int64_t kj = 0; kj < s.kw; ++kj) {
        const Span cs = valid_span(ow_count, s.w, s.stride_w, s.pad_w, kj);
        const float* row = cols + ((c * s.kh + ki) * s.kw + kj) * plane;
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

// Runs body(i) for every image: spread over the pool when there are enough images to occupy it,
// otherwise one after another so that the GEMM inside uses the pool. The result is the same.
void for_each_image(int64_t n, const std::function<void(int64_t)>& body) {
  if (n >= num_threads()) {
    parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) body(i);
    });
  } else {
    for (int64_t i = 0; i < n; ++i) body(i);
  }
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
  for_each_image(s.n, [&](int64_t i) {
    const float* xi = x + i * s.c_in * s.h * s.w;
    float* yi = y + i * s.c_out * plane;
    const float* cols = xi;
    if (!s.pointwise()) {
      float* buffer = image_scratch.get(k * plane);
      im2col(s, xi, buffer, plane);
      cols = buffer;
    }
    if (bias != nullptr)
      for (int64_t co = 0; co < s.c_out; ++co) std::fill(yi + co * plane, yi + (co + 1) * plane, bias[co]);
    gemm(false, false, s.c_out, plane, k, 1.0f, weight, k, cols, plane, bias != nullptr ? 1.0f : 0.0f, yi, plane);
  });
}

void conv2d_backward_input(const Conv2dShape& s, const float* dy, const float* weight, float* dx) {
  const int64_t k = s.col_rows(), plane = s.out_plane();
  for_each_image(s.n, [&](int64_t i) {
    const float* dyi = dy + i * s.c_out * plane;
    float* dxi = dx + i * s.c_in * s.h * s.w;
    if (s.pointwise()) {
      gemm(true, false, k, plane, s.c_out, 1.0f, weight, k, dyi, plane, 0.0f, dxi, plane);
      return;
    }
    float* cols = image_scratch.get(k * plane);
    gemm(true, false, k, plane, s.c_out, 1.0f, weight, k, dyi, plane, 0.0f, cols, plane);
    col2im(s, cols, dxi);
  });
}

void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dweight) {
  const int64_t k = s.col_rows(), plane = s.out_plane();
  if (s.n == 0) {
    std::fill(dweight, dweight + s.c_out * k, 0.0f);
    return;
  }
  const int64_t group = std::clamp(kGroupColumnFloats / std::max<int64_t>(1, k * plane), int64_t{1}, s.n);
  float* cols = group_scratch.get((k + s.c_out) * group * plane);
  float* dy_group = cols + k * group * plane;
  for (int64_t first = 0; first < s.n; first += group) {
    const int64_t count = std::min(group, s.n - first);
    const int64_t ld = count * plane;
    // Image g of the group fills columns [g * plane, (g + 1) * plane) of cols [k, ld] and dy_group [c_out, ld].
    parallel_for(0, count, 1, [&](int64_t begin, int64_t end) {
      for (int64_t g = begin; g < end; ++g) {
        im2col(s, x + (first + g) * s.c_in * s.h * s.w, cols + g * plane, ld);
        const float* dyi = dy + (first + g) * s.c_out * plane;
        for (int64_t co = 0; co < s.c_out; ++co)
          std::memcpy(dy_group + co * ld + g * plane, dyi + co * plane, plane * sizeof(float));
      }
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
