// HMAX's kernels. The S2 units' gaussian tuning of a distance, as a map and as its maximum over
// positions (C2), for ops::hmax_s2 and ops::hmax_s2_max. The Toeplitz expansion of a convolution
// weight, for ops::conv2d_toeplitz (S2 on small C1 maps): a zero-padded convolution of an input
// [c_in, h, w] is the matrix product y = M x with M [c_out * out_h * out_w, c_in * h * w], whose
// row (co, oh, ow) holds, at input (ci, ih, iw), weight[co, ci, ih - oh * stride_h + pad_h,
// iw - ow * stride_w + pad_w] where that tap exists and 0 elsewhere. On an input plane smaller
// than the kernel window, M multiplies fewer zeros than im2col's columns do.
#pragma once

#include <cstdint>

#include "kernels/conv2d_shape.hpp"

namespace flexnn::cpu {

// S2 maps: cross [n, p, plane] (C1 patches . prototypes), patch_sq [n, plane] (each patch's sum of
// squares), weight_sq [p] (each prototype's). The distance is d = patch_sq - 2 cross + weight_sq
// and the response y = exp(coef d), coef = -1 / (2 sigma^2).
struct S2Shape {
  int64_t n, p, plane;
};

// y [n, p, plane] = exp(coef d).
void hmax_s2_forward(const S2Shape& s, float coef, const float* cross, const float* patch_sq, const float* weight_sq,
                     float* y);
// From y and its gradient dy, with e = coef dy y: dcross = -2 e, dpatch_sq[n, i] = sum over p of e,
// dweight_sq[p] = sum over n and i of e. Null outputs are skipped; all are overwritten.
void hmax_s2_backward(const S2Shape& s, float coef, const float* y, const float* dy, float* dcross, float* dpatch_sq,
                      float* dweight_sq);
// The maximum over positions: y [n, p] = exp(coef min_i d[n, p, i]), at [n, p] = the first i of the
// minimum (the response's maximum, computing one exp per unit).
void hmax_s2_max_forward(const S2Shape& s, float coef, const float* cross, const float* patch_sq,
                         const float* weight_sq, float* y, int64_t* at);
// Its backward: e = coef dy y flows to position at[n, p] only (dcross is zero elsewhere).
void hmax_s2_max_backward(const S2Shape& s, float coef, const float* y, const int64_t* at, const float* dy,
                          float* dcross, float* dpatch_sq, float* dweight_sq);

// m = M (overwritten). s.n is not used.
void toeplitz_expand(const Conv2dShape& s, const float* weight, float* m);
// dweight = the adjoint of toeplitz_expand applied to dm: each weight element receives the sum of
// its copies in dm, in a fixed order (bit-identical for any thread count). Overwrites dweight.
void toeplitz_fold(const Conv2dShape& s, const float* dm, float* dweight);

}  // namespace flexnn::cpu
