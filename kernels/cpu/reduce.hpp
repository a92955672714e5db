// Reductions over the middle axis of a tensor viewed as [outer, reduced, inner]: any reduction
// over one dimension (or a run of adjacent ones) takes this form. Sums accumulate in double in a
// fixed order, so they do not depend on the thread count.
#pragma once

#include "kernels/reduce_shape.hpp"

namespace flexnn::cpu {

// out[o, i] = sum_r x[o, r, i]
void sum_axis(const float* x, float* out, ReduceShape s);
// out[o, i] = max_r x[o, r, i], index[o, i] = the first r reaching it (NaN counts as the maximum).
void max_axis(const float* x, float* out, int64_t* index, ReduceShape s);
// dx[o, r, i] = dy[o, i] for every r (the backward of sum_axis; also broadcasting a reduced result).
void expand_axis(const float* dy, float* dx, ReduceShape s);
// dx = 0 except dx[o, index[o, i], i] = dy[o, i] (the backward of max_axis).
void max_axis_backward(const float* dy, const int64_t* index, float* dx, ReduceShape s);

}  // namespace flexnn::cpu
