// 2-D convolution (cross-correlation, zero padding) on NCHW float buffers, forward and backward,
// as im2col + GEMM. Every result is bit-identical for any thread count: images are independent,
// and the weight gradient is one GEMM per fixed-size group of images, accumulated in group order.
#pragma once

#include <cstdint>

namespace flexnn::cpu {

struct Conv2dShape {
  int64_t n, c_in, h, w;         // input [n, c_in, h, w]
  int64_t c_out, kh, kw;         // weight [c_out, c_in, kh, kw]
  int64_t stride_h, stride_w;
  int64_t pad_h, pad_w;
  int64_t out_h, out_w;          // output [n, c_out, out_h, out_w]

  int64_t col_rows() const { return c_in * kh * kw; }
  int64_t out_plane() const { return out_h * out_w; }
  // A 1x1 kernel, stride 1, no padding: the input image already is its own column matrix.
  bool pointwise() const {
    return kh == 1 && kw == 1 && stride_h == 1 && stride_w == 1 && pad_h == 0 && pad_w == 0;
  }
};

// y = conv(x, weight) + bias; bias may be null.
void conv2d_forward(const Conv2dShape& s, const float* x, const float* weight, const float* bias, float* y);
// dx = the gradient of the input given dy (overwrites dx).
void conv2d_backward_input(const Conv2dShape& s, const float* dy, const float* weight, float* dx);
// dweight = the gradient of the weight given x and dy (overwrites dweight).
void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dweight);
// dbias[c] = the sum of dy over images and positions of channel c (overwrites dbias).
void conv2d_backward_bias(const Conv2dShape& s, const float* dy, float* dbias);

}  // namespace flexnn::cpu
