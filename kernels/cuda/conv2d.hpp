// 2-D convolution (cross-correlation, zero padding) on NCHW device buffers, forward and backward,
// with the CPU kernels' signatures (kernels/cpu/conv2d.hpp) plus a scratch buffer: im2col into the
// workspace, then cuBLAS over a group of images at a time. Deterministic: the group size depends
// only on the shape, col2im gathers (no atomics), and the weight gradient adds the groups in order.
#pragma once

#include <cstdint>

#include "kernels/conv2d_shape.hpp"

namespace flexnn::cuda {

// The scratch a convolution may use, in floats (default 2^24, 64 MiB): images are grouped so that
// a group's columns fit (one image at least); a smaller limit means more, smaller GEMMs. Process-wide;
// change it only while no convolution runs.
void set_conv2d_workspace_limit(int64_t floats);
int64_t conv2d_workspace_limit();

// Floats of device scratch every function below needs for shape s (the caller allocates it).
int64_t conv2d_workspace_size(const Conv2dShape& s);

// y = conv(x, weight) + bias; bias may be null.
void conv2d_forward(const Conv2dShape& s, const float* x, const float* weight, const float* bias, float* y,
                    float* workspace);
// dx = the gradient of the input given dy (overwrites dx).
void conv2d_backward_input(const Conv2dShape& s, const float* dy, const float* weight, float* dx, float* workspace);
// dweight = the gradient of the weight given x and dy (overwrites dweight).
void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dweight, float* workspace);
// dbias[c] = the sum of dy over images and positions of channel c (overwrites dbias).
void conv2d_backward_bias(const Conv2dShape& s, const float* dy, float* dbias);

}  // namespace flexnn::cuda
