// The shape of a 2-D pooling on NCHW buffers (window, stride, padding, output extent), shared by
// the CPU and CUDA kernels and the engine ops: plain C++, so nvcc and the C++ compiler both read it.
#pragma once

#include <cstdint>

namespace flexnn {

struct Pool2dShape {
  int64_t planes;  // images x channels
  int64_t h, w;
  int64_t out_h, out_w;
  int64_t kh, kw;
  int64_t stride_h, stride_w;
  int64_t pad_h, pad_w;
};

}  // namespace flexnn
