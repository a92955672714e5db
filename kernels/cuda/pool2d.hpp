// 2-D max and average pooling on NCHW device buffers, forward and backward, with the CPU kernels'
// signatures and results (kernels/cpu/pool2d.hpp): the same first maximum, NaN rule, indices
// (int64, flat within the plane) and divisors. The backwards gather, for each input element, over
// the windows that cover it, in the CPU's order: no atomics, deterministic, and bit-identical to it.
#pragma once

#include <cstdint>

#include "kernels/pool2d_shape.hpp"

namespace flexnn::cuda {

// y = the maximum of each window; indices (may be null) the flat position within the h x w plane
// of the first maximum in row-major window order (a NaN beats every number, a later NaN an earlier one).
void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int64_t* indices);
// dx = dy routed to the saved positions (overwrites dx).
void max_pool2d_backward(const Pool2dShape& s, const float* dy, const int64_t* indices, float* dx);

// y = the mean of each window, torch's divisor (see kernels/cpu/pool2d.hpp).
void avg_pool2d_forward(const Pool2dShape& s, bool count_include_pad, const float* x, float* y);
// dx = each dy spread evenly over its window with the forward's divisor (overwrites dx).
void avg_pool2d_backward(const Pool2dShape& s, bool count_include_pad, const float* dy, float* dx);

}  // namespace flexnn::cuda
