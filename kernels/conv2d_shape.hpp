// The shape of a 2-D convolution on NCHW buffers, shared by the CPU and CUDA kernels (and the
// engine op that fills it in): plain C++, so nvcc and the C++ compiler both read it.
#pragma once

#include <cstdint>

namespace flexnn {

struct Conv2dShape {
  int64_t n, c_in, h, w;  // input [n, c_in, h, w]
  int64_t c_out, kh, kw;  // weight [c_out, c_in, kh, kw]
  int64_t stride_h, stride_w;
  int64_t pad_h, pad_w;
  int64_t out_h, out_w;  // output [n, c_out, out_h, out_w]

  int64_t col_rows() const { return c_in * kh * kw; }
  int64_t out_plane() const { return out_h * out_w; }
  // A 1x1 kernel, stride 1, no padding: the input image already is its own column matrix.
  bool pointwise() const { return kh == 1 && kw == 1 && stride_h == 1 && stride_w == 1 && pad_h == 0 && pad_w == 0; }
};

}  // namespace flexnn
