// 2-D max and average pooling on NCHW float buffers, forward and backward, with torch's window,
// padding, ceil_mode and divisor rules. Work is split over (image, channel) planes, each plane
// written by one chunk in a fixed order, so results do not depend on the thread count.
#pragma once

#include <cstdint>

#include "kernels/pool2d_shape.hpp"

namespace flexnn::cpu {

using flexnn::Pool2dShape;  // kernels/pool2d_shape.hpp

// Output extent along one dimension, torch's rule: floor (or ceil) of (in + 2 pad - k) / stride,
// plus one; with ceil_mode the last window must start inside the input or its left padding.
// Returns a value < 1 when the kernel does not fit the padded input.
int64_t pool_output_size(int64_t in, int64_t k, int64_t stride, int64_t pad, bool ceil_mode);

// y = the maximum of each window. indices (may be null) receives the flat position within the
// h x w plane of the first maximum in row-major window order; as in torch, a NaN beats every
// number, and a later NaN in the window replaces an earlier one.
void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int64_t* indices);
// max_pool2d_forward on one plane: x is h x w, y and indices (may be null) out_h x out_w.
void max_pool2d_plane(const Pool2dShape& s, const float* x, float* y, int64_t* indices);
// dx = dy scattered to the saved positions (overwrites dx).
void max_pool2d_backward(const Pool2dShape& s, const float* dy, const int64_t* indices, float* dx);

// y = the mean of each window; the divisor counts padding when count_include_pad, except the part
// of a window that ceil_mode pushes past the right / bottom padding.
void avg_pool2d_forward(const Pool2dShape& s, bool count_include_pad, const float* x, float* y);
// dx = each dy spread evenly over its window with the forward's divisor (overwrites dx).
void avg_pool2d_backward(const Pool2dShape& s, bool count_include_pad, const float* dy, float* dx);

}  // namespace flexnn::cpu
