// Axis reductions on a CUDA device, with the CPU kernels' signatures (kernels/cpu/reduce.hpp): the
// tensor is viewed as [outer, reduced, inner] and reduced over the middle axis. Pointers are device
// pointers; the work is queued on the backend's stream. Results depend only on the shape (a fixed
// partition of the work and fixed summation trees, never float atomics), so they are reproducible.
#pragma once

#include "kernels/reduce_shape.hpp"

namespace flexnn::cuda {

// out[o, i] = sum_r x[o, r, i]. A long reduced axis with few outputs is cut into chunks summed by
// separate blocks, then the chunks' partial sums are added in order by a second pass (through a
// small workspace the backend allocates once).
void sum_axis(const float* x, float* out, ReduceShape s);
// out[o, i] = max_r x[o, r, i], index[o, i] = the first r reaching it (NaN counts as the maximum).
void max_axis(const float* x, float* out, int64_t* index, ReduceShape s);
// dx[o, r, i] = dy[o, i] for every r.
void expand_axis(const float* dy, float* dx, ReduceShape s);
// dx = 0 except dx[o, index[o, i], i] = dy[o, i].
void max_axis_backward(const float* dy, const int64_t* index, float* dx, ReduceShape s);

}  // namespace flexnn::cuda
