// 2-D convolution (cross-correlation, zero padding) on NCHW float buffers, forward and backward,
// as im2col + GEMM (for small padded planes, one GEMM per kernel tap; for deep 3x3 stride-1
// convolutions, Winograd: kernels/cpu/winograd.hpp). Every result is
// bit-identical for any thread count: images are independent, and the weight gradient is one GEMM
// per fixed-size group of images, accumulated in group order.
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/conv2d_shape.hpp"

namespace flexnn::cpu {

using flexnn::Conv2dShape;  // kernels/conv2d_shape.hpp

// For one kernel tap k of a sliding window (stride, padding) over an input of `extent`: the
// output positions [begin, end) among [0, out) whose tap reads inside the input, i.e.
// 0 <= o * stride - pad + k < extent. Shared by convolution and pooling.
struct TapSpan {
  int64_t begin, end;
};

inline TapSpan tap_span(int64_t out, int64_t extent, int64_t stride, int64_t pad, int64_t k) {
  const int64_t first_input = k - pad;  // input position of output 0
  const int64_t begin = first_input >= 0 ? 0 : (-first_input + stride - 1) / stride;
  const int64_t end = first_input >= extent ? 0 : (extent - 1 - first_input) / stride + 1;
  const int64_t b = std::min(begin, out);
  return {b, std::clamp(end, b, out)};
}

// y = conv(x, weight) + bias; bias may be null.
void conv2d_forward(const Conv2dShape& s, const float* x, const float* weight, const float* bias, float* y);
// dx = the gradient of the input given dy (overwrites dx).
void conv2d_backward_input(const Conv2dShape& s, const float* dy, const float* weight, float* dx);
// dweight = the gradient of the weight given x and dy (overwrites dweight).
void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dweight);
// dbias[c] = the sum of dy over images and positions of channel c (overwrites dbias).
void conv2d_backward_bias(const Conv2dShape& s, const float* dy, float* dbias);

}  // namespace flexnn::cpu
