// Convolution on CUDA as im2col + cuBLAS, a group of images per GEMM (the group as large as the
// workspace limit allows, chosen from the shape and that limit alone):
//   forward       col_g = im2col(x_g); y_g = W col_g for every image g of the group (one strided-batched GEMM)
//   input grad    dcol_g = W^T dy_g (strided-batched), then col2im as a gather per input element
//   weight grad   dW += [dy_g ...] [col_g ...]^T: the group's columns side by side (one GEMM of
//                 depth group x plane), groups added in order
// A pointwise convolution's input is its own column matrix, so its forward and input gradient skip
// im2col. Inside a group every index fits in 32 bits (checked), which keeps the index arithmetic cheap.
#include "kernels/cuda/conv2d.hpp"

#include <algorithm>
#include <atomic>
#include <climits>
#include <string>

#include "kernels/cuda/error.hpp"
#include "kernels/cuda/gemm.hpp"
#include "kernels/cuda/memory.hpp"
#include "kernels/cuda/stream.cuh"

namespace flexnn::cuda {
namespace {

constexpr int kThreads = 256;
std::atomic<int64_t> workspace_limit{int64_t{1} << 24};  // floats (64 MiB)

// The window geometry in 32-bit ints, passed by value to the kernels.
struct Window {
  int c_in, h, w, kh, kw, stride_h, stride_w, pad_h, pad_w, out_h, out_w;
};

Window window_of(const Conv2dShape& s) {
  return {static_cast<int>(s.c_in),     static_cast<int>(s.h),        static_cast<int>(s.w),
          static_cast<int>(s.kh),       static_cast<int>(s.kw),       static_cast<int>(s.stride_h),
          static_cast<int>(s.stride_w), static_cast<int>(s.pad_h),    static_cast<int>(s.pad_w),
          static_cast<int>(s.out_h),    static_cast<int>(s.out_w)};
}

// col[g * image_stride + k * row_stride + p] = the input value under kernel tap k (c, ki, kj) of
// output position p (oh, ow) in image g, or 0 in the padding; `total` = images x taps x positions.
__global__ void im2col_kernel(Window s, const float* x, float* col, int total, int image_stride, int row_stride) {
  const int plane = s.out_h * s.out_w, taps = s.c_in * s.kh * s.kw;
  for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const int i = static_cast<int>(e);
    const int p = i % plane, k = (i / plane) % taps, g = i / plane / taps;
    const int kj = k % s.kw, ki = (k / s.kw) % s.kh, c = k / (s.kw * s.kh);
    const int ih = (p / s.out_w) * s.stride_h - s.pad_h + ki, iw = (p % s.out_w) * s.stride_w - s.pad_w + kj;
    const bool inside = ih >= 0 && ih < s.h && iw >= 0 && iw < s.w;
    col[g * image_stride + k * row_stride + p] = inside ? x[((g * s.c_in + c) * s.h + ih) * s.w + iw] : 0.0f;
  }
}

// dx[g, c, ih, iw] = the sum of dcol over the (tap, position) pairs that read it, taps in order;
// dcol is [images][taps][positions].
__global__ void col2im_kernel(Window s, const float* dcol, float* dx, int total) {
  const int plane = s.out_h * s.out_w, taps = s.c_in * s.kh * s.kw;
  for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const int i = static_cast<int>(e);
    const int iw = i % s.w, ih = (i / s.w) % s.h, gc = i / (s.w * s.h);  // gc = g * c_in + c
    const int c = gc % s.c_in, g = gc / s.c_in;
    const float* image = dcol + (g * taps + c * s.kh * s.kw) * plane;
    const int rh = ih + s.pad_h, rw = iw + s.pad_w;  // positions in the padded input
    float sum = 0.0f;
    for (int ki = rh % s.stride_h; ki < s.kh && ki <= rh; ki += s.stride_h) {
      const int oh = (rh - ki) / s.stride_h;
      if (oh >= s.out_h) continue;
      for (int kj = rw % s.stride_w; kj < s.kw && kj <= rw; kj += s.stride_w) {
        const int ow = (rw - kj) / s.stride_w;
        if (ow < s.out_w) sum += image[(ki * s.kw + kj) * plane + oh * s.out_w + ow];
      }
    }
    dx[i] = sum;
  }
}

// Images per GEMM: as many as the workspace limit allows (at least one), with every index of a
// group within 32 bits.
int64_t group_size(const Conv2dShape& s) {
  const int64_t taps = s.col_rows(), plane = s.out_plane();
  const int64_t per_image = std::max({s.c_in * s.h * s.w, taps * plane, s.c_out * plane});
  if (per_image > INT_MAX)
    raise_error("CUDA conv2d: one image needs " + std::to_string(per_image) +
                " elements of input, columns or output, more than 2^31 - 1");
  const int64_t by_budget = std::max<int64_t>(1, workspace_limit.load() / ((taps + s.c_out) * plane));
  return std::max<int64_t>(1, std::min({s.n, by_budget, INT_MAX / per_image}));
}

// Writes the columns of `images` images starting at x (element (g, k, p) at
// g * image_stride + k * row_stride + p) into col.
void im2col(const Conv2dShape& s, const float* x, int64_t images, float* col, int64_t image_stride,
            int64_t row_stride) {
  const int64_t total = images * s.col_rows() * s.out_plane();
  FLEXNN_LAUNCH(im2col_kernel, dim3(blocks_for(total, kThreads)), dim3(kThreads), 0, stream(), window_of(s), x, col,
                static_cast<int>(total), static_cast<int>(image_stride), static_cast<int>(row_stride));
}

}  // namespace

void set_conv2d_workspace_limit(int64_t floats) { workspace_limit.store(floats); }
int64_t conv2d_workspace_limit() { return workspace_limit.load(); }

int64_t conv2d_workspace_size(const Conv2dShape& s) {
  return s.n > 0 ? group_size(s) * (s.col_rows() + s.c_out) * s.out_plane() : 0;
}

void conv2d_forward(const Conv2dShape& s, const float* x, const float* weight, const float* bias, float* y,
                    float* workspace) {
  if (s.n <= 0) return;
  const int64_t taps = s.col_rows(), plane = s.out_plane(), group = group_size(s);
  const int64_t in_image = s.c_in * s.h * s.w, out_image = s.c_out * plane;
  if (bias != nullptr) broadcast_bias(bias, y, s.n, s.c_out, plane);
  for (int64_t g0 = 0; g0 < s.n; g0 += group) {
    const int64_t images = std::min(group, s.n - g0);
    const float* col = x + g0 * in_image;
    if (!s.pointwise()) {
      im2col(s, col, images, workspace, taps * plane, plane);
      col = workspace;
    }
    gemm_strided_batched(false, false, s.c_out, plane, taps, 1.0f, weight, taps, 0, col, plane, taps * plane,
                         bias != nullptr ? 1.0f : 0.0f, y + g0 * out_image, plane, out_image, images);
  }
}

void conv2d_backward_input(const Conv2dShape& s, const float* dy, const float* weight, float* dx, float* workspace) {
  if (s.n <= 0) return;
  const int64_t taps = s.col_rows(), plane = s.out_plane(), group = group_size(s);
  const int64_t in_image = s.c_in * s.h * s.w, out_image = s.c_out * plane;
  for (int64_t g0 = 0; g0 < s.n; g0 += group) {
    const int64_t images = std::min(group, s.n - g0);
    float* dcol = s.pointwise() ? dx + g0 * in_image : workspace;
    gemm_strided_batched(true, false, taps, plane, s.c_out, 1.0f, weight, taps, 0, dy + g0 * out_image, plane,
                         out_image, 0.0f, dcol, plane, taps * plane, images);
    if (s.pointwise()) continue;
    const int64_t total = images * in_image;
    FLEXNN_LAUNCH(col2im_kernel, dim3(blocks_for(total, kThreads)), dim3(kThreads), 0, stream(), window_of(s), dcol,
                  dx + g0 * in_image, static_cast<int>(total));
  }
}

void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dweight, float* workspace) {
  const int64_t taps = s.col_rows(), plane = s.out_plane();
  if (s.n <= 0) return set_zero(dweight, static_cast<std::size_t>(s.c_out * taps) * sizeof(float));
  const int64_t group = group_size(s), in_image = s.c_in * s.h * s.w, out_image = s.c_out * plane;
  // dy's group laid out as [c_out][images x plane]: the columns of a 1x1 convolution over dy.
  Conv2dShape dy_as_input = s;
  dy_as_input.c_in = s.c_out;
  dy_as_input.h = s.out_h;
  dy_as_input.w = s.out_w;
  dy_as_input.kh = dy_as_input.kw = dy_as_input.stride_h = dy_as_input.stride_w = 1;
  dy_as_input.pad_h = dy_as_input.pad_w = 0;
  for (int64_t g0 = 0; g0 < s.n; g0 += group) {
    const int64_t images = std::min(group, s.n - g0), depth = images * plane;
    const float* col = x + g0 * in_image;
    const float* dy_rows = dy + g0 * out_image;
    if (images > 1 || !s.pointwise()) {  // one image's [c_in][plane] input already is its columns
      im2col(s, col, images, workspace, plane, depth);
      col = workspace;
    }
    if (images > 1) {
      float* side_by_side = workspace + group * taps * plane;
      im2col(dy_as_input, dy_rows, images, side_by_side, plane, depth);
      dy_rows = side_by_side;
    }
    gemm(false, true, s.c_out, taps, depth, 1.0f, dy_rows, depth, col, depth, g0 == 0 ? 0.0f : 1.0f, dweight, taps);
  }
}

void conv2d_backward_bias(const Conv2dShape& s, const float* dy, float* dbias) {
  bias_gradient(dy, dbias, s.n, s.c_out, s.out_plane());
}

}  // namespace flexnn::cuda
