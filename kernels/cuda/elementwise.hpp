// Element-wise kernels on a CUDA device, with the CPU kernels' signatures (kernels/cpu/elementwise.hpp):
// unary maps with their backward, and broadcasting binary arithmetic. Pointers are device pointers;
// the work is queued on the backend's stream.
#pragma once

#include "kernels/elementwise_ops.hpp"

namespace flexnn::cuda {

void unary_forward(UnaryOp op, const float* x, float* y, int64_t n, float p0 = 0, float p1 = 0);
void unary_backward(UnaryOp op, const float* x, const float* y, const float* dy, float* dx, int64_t n, float p0 = 0,
                    float p1 = 0);
// At most kMaxBroadcastRank dimensions after coalescing (flexnn::Error beyond).
void binary_forward(BinaryOp op, const float* a, const float* b, float* out, const BroadcastShape& s);

}  // namespace flexnn::cuda
