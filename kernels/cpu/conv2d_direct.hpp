// Direct forward convolution for one input channel at stride 1 (e.g. the FMNIST flexible layer,
// 1 -> 12 channels, 5x5 on 28x28), where im2col + GEMM wastes most of its time on packing and
// on tiles sized for deep products: K = kh*kw and M = c_out are both tiny. See conv2d_direct.cpp.
#pragma once

#include "kernels/cpu/conv2d.hpp"

namespace flexnn::cpu {

// Whether conv2d_direct_forward serves s: one input channel, stride 1, a kernel of at most
// kDirectMaxKernel in each dimension and a non-empty output.
constexpr int64_t kDirectMaxKernel = 7;
bool conv2d_direct_fits(const Conv2dShape& s);
// Whether conv2d_forward takes this path for s: where it fits, in builds with AVX or AVX-512.
// Measured at the FMNIST layer (x [100, 1, 28, 28], 12 5x5 filters), 2 threads, against im2col +
// GEMM: 1.9x with AVX-512, 1.35x with AVX2; with SSE only, no faster.
bool conv2d_direct_pays(const Conv2dShape& s);

// y = conv(x, weight) + bias (bias may be null), for shapes where conv2d_direct_fits holds.
// Each output sums bias then taps in (ki, kj) order: bit-identical for any thread count.
void conv2d_direct_forward(const Conv2dShape& s, const float* x, const float* weight, const float* bias, float* y);

}  // namespace flexnn::cpu
