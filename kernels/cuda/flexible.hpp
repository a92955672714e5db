// The flexible layer on a CUDA device. Two sets of kernels:
// - the blend alone, with the CPU kernels' signatures (kernels/cpu/flexible.hpp), for the composition
//   conv2d then flexible_blend;
// - the fused layer: one forward kernel computes the convolution (implicit GEMM, shared-memory tiles)
//   and, in its epilogue, the max-pool, the gate and the blend; one backward kernel yields the
//   gradients of the input (through the convolution and through the pool's first maxima), the
//   weight, the bias and the thresholds.
// Every pointer is a device pointer (pool_units included: it receives the count on the device, so
// that reading it is the caller's choice); the work is queued on the backend's stream. Results are
// deterministic: no float atomics, partial sums reduced in a fixed order.
#pragma once

#include "kernels/conv2d_shape.hpp"
#include "kernels/flexible_gate.hpp"
#include "kernels/flexible_shape.hpp"

#include <cstdint>

namespace flexnn::cuda {

// As cpu::flexible_forward. pool_units (a device int64, may be null) is overwritten with the count.
void flexible_forward(const FlexibleShape& s, FlexGate gate, float sharpness, const float* x, const float* c,
                      const float* gate_values, float* y, int64_t* argmax, int64_t* pool_units);

// As cpu::flexible_backward (workspace: n * channels * h * w floats, used when dx is wanted). The
// thresholds' gradient is summed over the batch in image order, as on the CPU.
void flexible_backward(const FlexibleShape& s, FlexGate gate, float sharpness, const float* x, const float* c,
                       const float* gate_values, const int64_t* argmax, const float* dy, float* dc, float* dx,
                       float* dgate, float* workspace);

// As cpu::flexible_random_mask: the same Philox values, so the same mask bit for bit.
void flexible_random_mask(int64_t units, uint64_t seed, uint64_t offset, float* mask);

// The fused layer: y = blend(conv(x, weight) + bias, maxpool(x)). conv.out_h/out_w equal flex.h/w,
// conv.c_out = flex.channels, conv.c_in = flex.pool_channels. bias may be null. For the backward,
// c ([n, channels, h, w], may be null) receives the convolution branch (bias included) and argmax
// ([n, pool_channels, h, w], may be null) each window's first maximum (flat position in its plane).
void flexible_conv2d_forward(const Conv2dShape& conv, const FlexibleShape& flex, FlexGate gate, float sharpness,
                             const float* x, const float* weight, const float* bias, const float* gate_values,
                             float* y, float* c, int32_t* argmax, int64_t* pool_units);

// Floats of workspace flexible_conv2d_backward needs (partial sums of the batch chunks, counters).
int64_t flexible_conv2d_backward_workspace(const Conv2dShape& conv, const FlexibleShape& flex);

// From the forward's c and argmax and dy: dx (overwritten; the convolution's share plus the pool's),
// dweight, dbias, dgate (the thresholds' gradient; never for the mask), each overwritten and each may
// be null when not wanted.
void flexible_conv2d_backward(const Conv2dShape& conv, const FlexibleShape& flex, FlexGate gate, float sharpness,
                              const float* x, const float* weight, const float* gate_values, const float* c,
                              const int32_t* argmax, const float* dy, float* dx, float* dweight, float* dbias,
                              float* dgate, float* workspace);

}  // namespace flexnn::cuda
