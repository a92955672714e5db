// The flexible layer's fused CPU kernels: given the input x and the convolution branch's output c,
// one pass per (image, pooled plane) max-pools x, gates and blends (kernels/flexible_gate.hpp);
// only the pool's argmax is saved for the backward, which recomputes m and the gate from it. The
// backward pass yields the gradients of c, of x through the pool branch and of the gate values
// (thresholds) in one pass, the thresholds' batch sum then reduced in a fixed order, so results
// are bit-identical for any thread count.
#pragma once

#include "kernels/cpu/pool2d.hpp"
#include "kernels/flexible_gate.hpp"
#include "kernels/flexible_shape.hpp"

#include <cstdint>

namespace flexnn::cpu {

using flexnn::FlexibleShape;  // kernels/flexible_shape.hpp

// y = the blend of c and the max-pool of x under gate_values ([channels, h, w]: thresholds, or
// the 0/1 mask). argmax ([n, pool_channels, h, w], may be null) receives each window's first
// maximum (flat position in its plane). pool_units (may be null) receives the number of output
// units that took the pool branch.
void flexible_forward(const FlexibleShape& s, FlexGate gate, float sharpness, const float* x, const float* c,
                      const float* gate_values, float* y, int64_t* argmax, int64_t* pool_units);

// Given dy and the forward's argmax: dc (overwritten), dx (the pool branch's share of the input
// gradient, overwritten; may be null) and dgate (the thresholds' gradient summed over the batch,
// overwritten; may be null; never for the mask), which needs a workspace of n * channels * h * w.
void flexible_backward(const FlexibleShape& s, FlexGate gate, float sharpness, const float* x, const float* c,
                       const float* gate_values, const int64_t* argmax, const float* dy, float* dc, float* dx,
                       float* dgate, float* workspace);

// A random mode mask of `units` values in {0, 1} (see kernels/flexible_gate.hpp).
void flexible_random_mask(int64_t units, uint64_t seed, uint64_t offset, float* mask);

}  // namespace flexnn::cpu
