// The flexible blend's shape, shared by the CPU and CUDA kernels (kernels/cpu/flexible.hpp,
// kernels/cuda/flexible.hpp): the convolution branch's output, the input's channel mapping and
// the pool branch's window.
#pragma once

#include "kernels/pool2d_shape.hpp"

#include <cstdint>

namespace flexnn {

struct FlexibleShape {
  int64_t n, channels, h, w;  // output = convolution output = pool output: [n, channels, h, w]
  int64_t pool_channels;      // channels of x: `channels` (one to one) or 1 (broadcast to all)
  Pool2dShape pool;           // the max-pool of x (planes = n * pool_channels), out_h = h, out_w = w
};

}  // namespace flexnn
