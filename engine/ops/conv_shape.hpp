// conv_shape: the one validation of a convolution call (input, weight, bias, stride, padding) and
// its output size, shared by conv2d and the flexible layer's convolution branch.
#pragma once

#include "engine/ops.hpp"
#include "kernels/conv2d_shape.hpp"

namespace flexnn::ops {

// Validates a convolution of x [N, C_in, H, W] by weight [C_out, C_in, kH, kW] (+ bias [C_out]) and
// returns its shape; errors name `op`.
Conv2dShape conv_shape(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride,
                       Size2 padding);

}  // namespace flexnn::ops
