// Winograd convolution for 3x3 stride-1 convolutions: the forward pass and the input gradient
// (itself a 3x3 stride-1 convolution of dy with the flipped, transposed weight) as F(m x m, 3 x 3),
// the weight gradient as F(3 x 3, m x m), m = 2, 3 or 4: tile transforms, one GEMM per point of
// the (m+2) x (m+2) transform domain through cpu::gemm, inverse transforms. On planes that are a
// multiple of m it spends 2.25x (m = 2), 3.24x (m = 3) or 4x (m = 4) fewer multiplications than the
// direct sum, at the price of rounding that grows with m (relative to the sum of |x| |w| products,
// about 1e-7, 1e-6 and 1e-5). Bit-identical for any thread count: the transforms write disjoint
// outputs, and cpu::gemm's sums depend on the shape alone; the weight gradient adds its groups of
// images in order.
#pragma once

#include "kernels/cpu/conv2d.hpp"

namespace flexnn::cpu {

// Whether a shape can go through Winograd: a 3x3 kernel, stride 1, padding 0, 1 or 2 each way.
bool winograd_fits(const Conv2dShape& s);

// Whether winograd_forward and winograd_backward_input of s with tiles of m take their tiles a
// block at a time through the cache (where the transformed weight is small) rather than whole
// groups of images at a time; both ways give the same bits.
bool winograd_tiled(const Conv2dShape& s, int m);

// y = conv(x, weight) + bias (bias may be null), with output tiles of m x m, m = 2, 3 or 4.
void winograd_forward(const Conv2dShape& s, int m, const float* x, const float* weight, const float* bias, float* y);
// dx = the gradient of the input given dy (overwrites dx), with input-gradient tiles of m x m.
void winograd_backward_input(const Conv2dShape& s, int m, const float* dy, const float* weight, float* dx);
// dweight = the gradient of the weight given x and dy (overwrites dweight), as F(3 x 3, m x m)
// over dy's m x m tiles, summed over tiles by the GEMMs and over groups of images in order.
void winograd_backward_weight(const Conv2dShape& s, int m, const float* x, const float* dy, float* dweight);

}  // namespace flexnn::cpu
